"""RankEnv: one read of each launcher's variables (hydra mpiexec, srun, Open MPI, submitit, torchrun),
through the table of launcher environments."""
from essa_hpc.runtime.rankenv import RankEnv


def test_no_launcher_is_one_rank():
    env = RankEnv.from_environ({})
    assert (env.rank, env.world, env.local_rank, env.local_world, env.launcher, env.job_id) == (0, 1, 0, 1, "none", None)
    assert env.is_root and env.device == "cpu" and env.node


def test_hydra_mpiexec():
    env = RankEnv.from_environ({"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"})
    assert (env.rank, env.world, env.local_rank, env.local_world, env.launcher) == (1, 2, 1, 2, "mpiexec")
    assert not env.is_root


def test_srun_with_pmi2_on_two_nodes():
    env = RankEnv.from_environ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
                                "SLURM_NTASKS_PER_NODE": "2(x2)", "SLURM_STEP_ID": "0", "SLURM_JOB_ID": "77",
                                "SLURM_RESTART_COUNT": "2", "SLURMD_NODENAME": "node2", "PMI_RANK": "3",
                                "PMI_SIZE": "4"})
    assert (env.rank, env.world, env.local_rank, env.local_world) == (3, 4, 1, 2)
    assert (env.launcher, env.job_id, env.restarts, env.node) == ("srun", "77", 2, "node2")


def test_open_mpi_and_submitit():
    ompi = RankEnv.from_environ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3",
                                 "OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": "1"})
    assert (ompi.rank, ompi.world, ompi.local_world, ompi.launcher) == (2, 3, 1, "openmpi")
    sub = RankEnv.from_environ({"SUBMITIT_EXECUTOR": "slurm", "SLURM_PROCID": "0", "SLURM_STEP_ID": "0",
                                "SLURM_JOB_ID": "9"})
    assert sub.launcher == "submitit" and sub.job_id == "9"


def test_nothing_outside_the_launcher_table_reads_launcher_variables():
    import re
    from pathlib import Path

    pkg = Path(__file__).resolve().parents[2] / "essa_hpc"
    pattern = re.compile(r"(PMI_|OMPI_COMM_WORLD|SLURM_PROCID|SLURM_JOB_ID|SLURM_NTASKS|MPI_LOCAL|SLURM_RESTART|SLURM_MPI_TYPE)")
    readers = [p.name for p in pkg.rglob("*.py") if pattern.search(p.read_text())]
    assert readers == ["launchers.py"], readers


def test_srun_pmi2_ranks_get_libfabric_unless_the_user_chose_a_netmod():
    """Slurm's pmi2 plugin cuts PMI-1 lines at 1,024 bytes; MPICH's UCX business card comes in
    lines up to about 1,080 bytes (two-node jobs failed in MPI_Init 4 times in a row in one CI run)."""
    from essa_hpc.runtime.launchers import mpi_env_defaults

    assert mpi_env_defaults({"SLURM_MPI_TYPE": "pmi2"}) == {"MPIR_CVAR_CH4_NETMOD": "ofi"}
    assert mpi_env_defaults({"SLURM_MPI_TYPE": "pmi2", "MPIR_CVAR_CH4_NETMOD": "ucx"}) == {}
    assert mpi_env_defaults({"SLURM_MPI_TYPE": "pmix"}) == {} and mpi_env_defaults({}) == {}


def test_a_launcher_world_that_mpi_does_not_see_is_a_one_line_error(tmp_path):
    """srun without a matching --mpi (or with ESSA_NO_MPI=1) starts N processes that each see a
    world of 1: each would run as rank 0 in the same run dir. Found on two nodes: the ranks fought
    over the run-dir lock and the step requeued itself without end."""
    from helpers import TINY, cli_env, essa

    env = cli_env(ESSA_NO_MPI="1", SLURM_PROCID="1", SLURM_NTASKS="2", SLURM_STEP_ID="0", SLURM_JOB_ID="5")
    proc = essa(["train", str(TINY), "--run-dir", str(tmp_path / "run")], env=env, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "srun started 2 processes but MPI sees a world of 1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "run").exists()  # refused before touching the run dir


def test_torchrun_comes_first_even_inside_srun():
    """The data-parallel baselines run under torchrun, possibly inside an srun step: torchrun's
    RANK/WORLD_SIZE name the process, not the srun task."""
    env = RankEnv.from_environ({"TORCHELASTIC_RUN_ID": "x", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                "LOCAL_WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1",
                                "SLURM_STEP_ID": "0"})
    assert (env.rank, env.world, env.local_rank, env.local_world, env.launcher) == (1, 2, 1, 2, "torchrun")
    plain = RankEnv.from_environ({"RANK": "1", "WORLD_SIZE": "2"})  # not torchrun: ignored
    assert (plain.rank, plain.world, plain.launcher) == (0, 1, "none")
