"""The launcher environments a rank can be started in, and the batch schedulers that own jobs:
one declaration each, the way submitit has a ``JobEnvironment`` per scheduler.

A launcher environment says how to recognise it (variables that are all set) and which
variables hold the rank, world size, local rank and local world size; the first one set
wins, then the common chain below, so a launcher that nests another (srun with pmi2 also
sets PMI_RANK) reads the same numbers either way. ``RankEnv.from_environ`` tries the
environments in table order and falls back to a single process. A plug-in adds one through
the entry-point group ``essa_hpc.launchers`` (value: a ``LauncherEnv``).

A scheduler owns the job whatever started the ranks (``mpiexec`` inside ``sbatch`` is still a
SLURM job): it is recognised by its job-id variable, and ``job_state`` asks it how the job
stands, for ``essa-hpc status``. This module is the only place that knows launcher or
scheduler variables (a test holds this).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from essa_hpc.config.kinds import Kind

# When a launcher's own variables are absent: hydra (mpiexec, srun --mpi=pmi2), Open MPI, PMIx, SLURM.
COMMON_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
COMMON_WORLD = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")
COMMON_LOCAL_RANK = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
COMMON_LOCAL_WORLD = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")


@dataclass(frozen=True)
class LauncherEnv:
    name: str
    help: str
    requires: tuple = ()          # variables that must all be set for this environment to be the one
    rank: tuple = ()              # its own variables, read before the common chain
    world: tuple = ()
    local_rank: tuple = ()
    local_world: tuple = ()
    caps: dict = field(default_factory=dict)

    def detected(self, environ) -> bool:
        return bool(self.requires) and all(v in environ for v in self.requires)

    def variables(self) -> tuple[tuple, tuple, tuple, tuple]:
        """(rank, world, local rank, local world) variable chains, own first."""
        return (self.rank + COMMON_RANK, self.world + COMMON_WORLD, self.local_rank + COMMON_LOCAL_RANK,
                self.local_world + COMMON_LOCAL_WORLD)

    def get(self, capability: str):
        return self.caps.get(capability)


CAPABILITIES = {
    "torch_distributed": "it provides torch.distributed's env:// rendezvous (MASTER_ADDR, RANK, WORLD_SIZE): the "
                         "data-parallel baselines can run under it",
}

# Order matters: the first environment detected wins (torchrun may run inside an srun step,
# submitit's tasks are srun steps, srun with pmi2 also sets the hydra variables).
LAUNCHERS = Kind("launcher", "launcher environment", "essa_hpc.launchers", CAPABILITIES, [
    LauncherEnv("torchrun", "torch's elastic launcher (the data-parallel baselines)", ("TORCHELASTIC_RUN_ID",),
                ("RANK",), ("WORLD_SIZE",), ("LOCAL_RANK",), ("LOCAL_WORLD_SIZE",),
                caps={"torch_distributed": True}),
    LauncherEnv("submitit", "a submitit job (essa-hpc submit)", ("SUBMITIT_EXECUTOR",)),
    LauncherEnv("srun", "a SLURM job step", ("SLURM_STEP_ID", "SLURM_PROCID"), ("SLURM_PROCID",), ("SLURM_NTASKS",),
                ("SLURM_LOCALID",), ("SLURM_NTASKS_PER_NODE",)),
    LauncherEnv("mpiexec", "MPICH's hydra mpiexec", ("PMI_RANK",), ("PMI_RANK",), ("PMI_SIZE",), ("MPI_LOCALRANKID",),
                ("MPI_LOCALNRANKS",)),
    LauncherEnv("openmpi", "Open MPI's mpirun/mpiexec", ("OMPI_COMM_WORLD_RANK",), ("OMPI_COMM_WORLD_RANK",),
                ("OMPI_COMM_WORLD_SIZE",), ("OMPI_COMM_WORLD_LOCAL_RANK",), ("OMPI_COMM_WORLD_LOCAL_SIZE",)),
], spec_type=LauncherEnv)
SINGLE = LauncherEnv("none", "one process, no launcher")


# Set (unless the user set them) before MPI starts, by the PMI that srun was asked for
# (SLURM_MPI_TYPE). Slurm's pmi2 plugin reads a PMI-1 request with one 1024-byte read(), and
# MPICH 5 over UCX puts its business card (about 4 KB, unzeroed padding included) in 9 lines of
# up to about 1,080 bytes: a line past 1,024 bytes is cut, its tail is parsed as a new request
# ("mpi/pmi2: invalid client request") and MPI_Init fails, more often the denser the padding.
# libfabric's card is one 66-byte line. Only scalars cross the ranks, so the netmod's speed does
# not matter; MPIR_CVAR_CH4_NETMOD=ucx brings UCX back.
MPI_ENV_DEFAULTS = {"pmi2": {"MPIR_CVAR_CH4_NETMOD": "ofi"}}


def mpi_env_defaults(environ) -> dict[str, str]:
    """The MPI variables this process should get before MPI_Init, less those already set."""
    wanted = MPI_ENV_DEFAULTS.get(environ.get("SLURM_MPI_TYPE", ""), {})
    return {key: value for key, value in wanted.items() if key not in environ}


def detect(environ) -> LauncherEnv:
    """The launcher environment of this process (``SINGLE`` when none is detected)."""
    return next((spec for spec in LAUNCHERS.specs() if spec.detected(environ)), SINGLE)


# --- schedulers ---------------------------------------------------------------------------------

def slurm_job_state(job_id: str) -> str | None:
    """The job's state from sacct (None where SLURM accounting is not available)."""
    if not shutil.which("sacct"):
        return None
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State"], capture_output=True, text=True)
    states = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return states[-1] if out.returncode == 0 and states else None


@dataclass(frozen=True)
class Scheduler:
    name: str
    job_id: str                  # the variable holding the job id; set = this scheduler owns the job
    restarts: str | None = None  # the variable counting requeues
    node: str | None = None      # the variable naming this node, where the scheduler's name beats the hostname
    job_state: object = None     # job_id -> state string or None
    nodelist: str | None = None  # the variable holding the allocation's nodes (compressed, e.g. node[1-2])
    tasks_per_node: str | None = None  # the variable holding the tasks per node of the allocation


SCHEDULERS = [Scheduler("slurm", "SLURM_JOB_ID", "SLURM_RESTART_COUNT", "SLURMD_NODENAME", slurm_job_state,
                        "SLURM_JOB_NODELIST", "SLURM_NTASKS_PER_NODE")]


def allocation(environ) -> tuple[str, int]:
    """(the allocation's node list as the scheduler writes it, tasks per node) of this batch job."""
    scheduler = scheduler_of(environ)
    if scheduler is None or not scheduler.nodelist:
        raise RuntimeError("not inside a scheduler's allocation (no SLURM_JOB_ID)")
    per_node = (environ.get(scheduler.tasks_per_node or "", "") or "1").split("(")[0]
    return environ.get(scheduler.nodelist, ""), int(per_node) if per_node.isdigit() else 1


def scheduler_of(environ) -> Scheduler | None:
    return next((s for s in SCHEDULERS if environ.get(s.job_id)), None)


def job_state(backend: str, job_id: str) -> str | None:
    """How job ``job_id`` of ``backend`` (a scheduler's name, or e.g. ``local``) stands now."""
    scheduler = next((s for s in SCHEDULERS if s.name == backend), None)
    return scheduler.job_state(job_id) if scheduler else backend
