"""Where this process runs: its rank, its node, its job. Read once from the launcher's
environment (mpiexec/hydra, srun, Open MPI, submitit) and passed down, so no other
module reads launcher variables.

Reading it initialises nothing (no MPI, no torch): the CLI uses it to print a config
error once, before MPI starts. ``device`` is the torch device this rank computes on,
set by ``with_device`` from ``run.device`` once torch may be imported: ``cuda:<local_rank>``
when CUDA is present (or required), else ``cpu``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

# First match wins: hydra (mpiexec, and srun --mpi=pmi2), Open MPI, PMIx, then SLURM itself.
_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_WORLD = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")
_LOCAL_RANK = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
_LOCAL_WORLD = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
# torchrun (the data-parallel baselines): its own variables come first, since it may run inside srun.
_TORCHRUN = (("RANK",), ("WORLD_SIZE",), ("LOCAL_RANK",), ("LOCAL_WORLD_SIZE",))


def _first_int(environ, keys, default: int) -> int:
    for key in keys:
        value = environ.get(key, "").split("(")[0]  # SLURM_NTASKS_PER_NODE may read "2(x3)"
        if value.isdigit():
            return int(value)
    return default


@dataclass(frozen=True)
class RankEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1          # ranks on this node (threads per rank = cores / local_world)
    node: str = "localhost"
    job_id: str | None = None     # the SLURM job, when there is one
    restarts: int = 0             # SLURM_RESTART_COUNT: how often the job was requeued
    launcher: str = "none"        # srun | mpiexec | submitit | torchrun | none
    device: str = "cpu"

    @classmethod
    def from_environ(cls, environ=None) -> "RankEnv":
        env = os.environ if environ is None else environ
        keys = (_RANK, _WORLD, _LOCAL_RANK, _LOCAL_WORLD)
        if "TORCHELASTIC_RUN_ID" in env:
            launcher = "torchrun"
            keys = tuple(own + rest for own, rest in zip(_TORCHRUN, keys))
        elif "SUBMITIT_EXECUTOR" in env:
            launcher = "submitit"
        elif "SLURM_STEP_ID" in env and "SLURM_PROCID" in env:
            launcher = "srun"
        elif "PMI_RANK" in env or "OMPI_COMM_WORLD_RANK" in env:
            launcher = "mpiexec"
        else:
            launcher = "none"
        rank, world, local_rank, local_world = keys
        return cls(rank=_first_int(env, rank, 0), world=_first_int(env, world, 1),
                   local_rank=_first_int(env, local_rank, 0), local_world=max(1, _first_int(env, local_world, 1)),
                   node=env.get("SLURMD_NODENAME") or socket.gethostname(), job_id=env.get("SLURM_JOB_ID") or None,
                   restarts=_first_int(env, ("SLURM_RESTART_COUNT",), 0), launcher=launcher)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def with_device(self, requested: str) -> "RankEnv":
        """This environment with ``device`` resolved from ``run.device`` (imports torch). A rank takes
        the GPU of its local rank; ``cuda`` on a machine without one is a one-line ConfigError."""
        import dataclasses

        import torch

        from essa_hpc.errors import ConfigError

        has_cuda = torch.cuda.is_available()
        if requested == "cuda" and not has_cuda:
            raise ConfigError("run.device=cuda but torch sees no CUDA device here (torch.cuda.is_available() is "
                              "False); use run.device=cpu or auto")
        if requested == "cpu" or not has_cuda:
            return dataclasses.replace(self, device="cpu")
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise ConfigError(f"local rank {self.local_rank} has no GPU of its own (this node has {count}); "
                              f"start at most {count} ranks per node")
        return dataclasses.replace(self, device=f"cuda:{self.local_rank}")
