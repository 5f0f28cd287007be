"""Data-parallel baselines: GRPO on several processes started by ``torchrun``, through TRL/accelerate.

    torchrun --standalone --nproc_per_node 2 --no-python essa-hpc baseline grpo CONFIG ...

Each process generates, scores and backpropagates its share of a step's completions
(``per_device_train_batch_size = baseline.batch_size / world``, so the global batch, and with it the
optimisation, is the one-process run's); DDP averages the LoRA gradients every step (gloo on CPU,
nccl on GPUs). Rank 0 alone scores held-out and validation, writes ``metrics.jsonl`` and exports
the adapter; the other ranks wait for it at the next collective.

Anything that ends training must be decided identically on every process, or the ones still
training wait forever in the next allreduce. So rank 0's budget clock decides and is broadcast.
The process group is started here, before the model loads, so every rank knows its place from the
start; accelerate then uses the group that exists.
"""
from __future__ import annotations

from dataclasses import dataclass

from essa_hpc.errors import ConfigError

DATA_PARALLEL_METHODS = ("grpo",)  # TR-DPO samples its pairs up front and ESO has not been tried under DDP


def check(method: str, cfg, env) -> None:
    """One-line ConfigError for a multi-process launch this baseline cannot run; before any model loads."""
    if env.world == 1:
        return
    if env.launcher != "torchrun":
        raise ConfigError(f"baselines run data-parallel under torchrun only (torchrun --standalone --nproc_per_node "
                          f"{env.world} --no-python essa-hpc baseline ...); this is {env.launcher} with "
                          f"{env.world} processes")
    if method not in DATA_PARALLEL_METHODS:
        raise ConfigError(f"baseline {method} runs as one process; data-parallel: {', '.join(DATA_PARALLEL_METHODS)}")
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


@dataclass(frozen=True)
class Group:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "Group":
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def _tensor(self, values, dtype):
        import torch
        import torch.distributed as dist

        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
        return torch.tensor(values, dtype=dtype, device=device)

    def root_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (one int32 broadcast)."""
        if self.world == 1:
            return bool(flag)
        import torch
        import torch.distributed as dist

        t = self._tensor([int(bool(flag))], torch.int32)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def same_on_every_rank(self, value: float) -> bool:
        """Whether every rank holds the same ``value`` (an all-reduce of its min and max)."""
        if self.world == 1:
            return True
        import torch
        import torch.distributed as dist

        low, high = self._tensor([value], torch.float64), self._tensor([value], torch.float64)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(low.item() == high.item())

    def mean(self, value: float | None) -> float | None:
        """Mean over the ranks that have a value (equal shards, so the mean of the step's completions)."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = self._tensor([0.0 if value is None else float(value), 0.0 if value is None else 1.0], torch.float64)
        dist.all_reduce(t)
        return float(t[0] / t[1]) if t[1] > 0 else None
