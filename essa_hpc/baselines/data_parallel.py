"""Data-parallel baselines: GRPO on several processes started by ``torchrun``, through TRL/accelerate.

    torchrun --standalone --nproc_per_node 2 --no-python essa-hpc baseline grpo CONFIG ...

Each process generates, scores and backpropagates its share of a step's completions
(``per_device_train_batch_size = baseline.batch_size / world``, so the global batch, and with it the
optimisation, is the one-process run's); DDP averages the LoRA gradients every step (gloo on CPU,
nccl on GPUs). Rank 0 alone scores held-out and validation, writes ``metrics.jsonl`` and exports
the adapter; the other ranks wait for it at the next collective.

Anything that ends training must be decided identically on every process, or the ones still
training wait forever in the next allreduce. So rank 0's budget clock decides (``runtime.budget``), over
the same ``Comm`` ES uses, here on torch.distributed's group (``runtime.comm.torch_distributed_comm``).
The process group is started here, before the model loads, so every rank knows its place from the
start; accelerate then uses the group that exists.
"""
from __future__ import annotations

from essa_hpc.config.baselines import BASELINES
from essa_hpc.errors import ConfigError


def check(method: str, cfg, env) -> None:
    """One-line ConfigError for a multi-process launch this baseline cannot run; before any model loads."""
    if env.world == 1:
        return
    if not env.launcher_env.get("torch_distributed"):
        raise ConfigError(f"baselines run data-parallel under torchrun only (torchrun --standalone --nproc_per_node "
                          f"{env.world} --no-python essa-hpc baseline ...); this is {env.launcher} with "
                          f"{env.world} processes")
    if not BASELINES.spec(method).get("data_parallel"):
        raise ConfigError(f"baseline {method} runs as one process; data-parallel: "
                          f"{', '.join(BASELINES.with_capability('data_parallel'))}")
    b = cfg.baseline
    if b.batch_size % env.world:
        raise ConfigError(f"baseline.batch_size={b.batch_size} completions must split evenly over "
                          f"{env.world} processes")


def start_group(env) -> None:
    """Join torchrun's process group (env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)."""
    if env.world == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if env.device.startswith("cuda") else "gloo")
