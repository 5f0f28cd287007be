"""Where this process runs: its rank, its node, its job. Read once from the launcher's
environment (the table in ``launchers.py``: torchrun, submitit, srun, MPICH's hydra, Open
MPI, or a single process) and passed down, so no other module reads launcher variables.

Reading it initialises nothing (no MPI, no torch): the CLI uses it to print a config
error once, before MPI starts. ``device`` is the torch device this rank computes on,
set by ``with_device`` from ``run.device`` once torch may be imported: ``cuda:<local_rank>``
when CUDA is present (or required), else ``cpu``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from essa_hpc.runtime import launchers
from essa_hpc.runtime.launchers import LAUNCHERS


def _first_int(environ, keys, default: int) -> int:
    for key in keys:
        value = environ.get(key, "").split("(")[0]  # a per-node task count may read "2(x3)"
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
    job_id: str | None = None     # the scheduler's job, when there is one
    restarts: int = 0             # how often the scheduler requeued the job
    launcher: str = "none"        # a name in launchers.LAUNCHERS, or none
    scheduler: str | None = None  # a name in launchers.SCHEDULERS (slurm), when a scheduler owns the job
    device: str = "cpu"
    relaunch: int = 0             # how often the elastic loop relaunched the step inside this job
    restart_cause: str | None = None  # why it did, the last time (runtime/elastic.py)

    @classmethod
    def from_environ(cls, environ=None) -> "RankEnv":
        env = os.environ if environ is None else environ
        launcher, scheduler = launchers.detect(env), launchers.scheduler_of(env)
        rank, world, local_rank, local_world = launcher.variables()
        node = (env.get(scheduler.node) if scheduler and scheduler.node else None) or socket.gethostname()
        return cls(rank=_first_int(env, rank, 0), world=_first_int(env, world, 1),
                   local_rank=_first_int(env, local_rank, 0), local_world=max(1, _first_int(env, local_world, 1)),
                   node=node, job_id=env.get(scheduler.job_id) if scheduler else None,
                   restarts=_first_int(env, (scheduler.restarts,), 0) if scheduler and scheduler.restarts else 0,
                   launcher=launcher.name, scheduler=scheduler.name if scheduler else None,
                   relaunch=_first_int(env, ("ESSA_ELASTIC_RESTART",), 0), restart_cause=env.get("ESSA_RESTART_CAUSE"))

    @property
    def launcher_env(self) -> launchers.LauncherEnv:
        """The declaration of the launcher that started this process."""
        return LAUNCHERS.spec(self.launcher) if self.launcher in LAUNCHERS else launchers.SINGLE

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
