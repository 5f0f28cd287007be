"""essa-hpc on a real SLURM cluster: sbatch, preemption + requeue, time limit, submitit, a dying rank.

Every run ends on the same adapter as an uninterrupted `mpiexec -n 2` run.
"""
import json
import os
import signal

import pytest
from helpers import ROOT, TINY, cli_env, essa, metrics, mpiexec
from slurm_helpers import job_id_from, rank_pid, sh, wait_done, wait_generations

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]
GENS = 10
# Waits are generous: on a loaded 2-core machine a job's start-up alone (srun, MPI, torch import)
# has taken over a minute. They bound a hang; they do not time anything.
SLOW = 3
SBATCH = str(ROOT / "slurm" / "essa.sbatch")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)], ranks=2 if mpiexec() else None)
    return metrics(run)[-1]["adapter_sha256"]


def sbatch(run, tmp_path, *sbatch_args, slow_ckpt_s="0", extra=(), elastic=True):
    env = cli_env(ESSA_RUN_DIR=run, ESSA_TEST_SLOW_CKPT_S=slow_ckpt_s, ESSA_ELASTIC="1" if elastic else "0")
    out = sh("sbatch", f"--output={tmp_path}/%j.out", *sbatch_args, SBATCH, str(TINY),
             f"run.generations={GENS}", *extra, env=env)
    return job_id_from(out)


def job_log(tmp_path, job) -> str:
    return (tmp_path / f"{job}.out").read_text()


def test_sbatch_two_ranks_matches_mpiexec(reference, tmp_path):
    run = tmp_path / "run"
    job = sbatch(run, tmp_path)
    assert wait_done(job, 180 * SLOW)[-1] == "COMPLETED", job_log(tmp_path, job)
    assert "2 ranks" in job_log(tmp_path, job)
    assert metrics(run)[-1]["adapter_sha256"] == reference


def test_sbatch_preemption_requeues_and_resumes(reference, tmp_path):
    run = tmp_path / "run"
    job = sbatch(run, tmp_path, slow_ckpt_s="0.7")
    wait_generations(run, 3)
    sh("scancel", "--signal=USR1", job)  # the warning signal, to the srun step's ranks
    hist = wait_done(job, 240 * SLOW)
    log = job_log(tmp_path, job)
    assert "REQUEUED" in hist and hist[-1] == "COMPLETED", (hist, log)
    assert "requeueing job" in log and "resumed from ckpt_" in log
    assert [r["generation"] for r in metrics(run)] == list(range(GENS + 1))
    assert metrics(run)[-1]["adapter_sha256"] == reference


def test_time_limit_checkpoints_and_requeues(reference, tmp_path):
    run = tmp_path / "run"
    # 10 generations x ~12 s do not fit in 2 minutes; the USR1 warning (sent at most 60 s early)
    # makes each attempt checkpoint and requeue until the run is done.
    job = sbatch(run, tmp_path, "--time=2", "--signal=USR1@60", slow_ckpt_s="12")
    hist = wait_done(job, 900 * 2)
    log = job_log(tmp_path, job)
    assert "REQUEUED" in hist and hist[-1] == "COMPLETED", (hist, log)
    assert "TIMEOUT" not in hist
    assert "User defined signal" not in log, log  # a warning during a finished job's exit killed it
    assert metrics(run)[-1]["adapter_sha256"] == reference


def test_submitit_preemption_resumes_identically(reference, tmp_path):
    run = tmp_path / "run"
    env = cli_env(ESSA_TEST_SLOW_CKPT_S="0.7")
    out = essa(["submit", str(TINY), f"run.generations={GENS}", "--run-dir", str(run), "--tasks-per-node", "2",
                "--time", "10"], env=env)
    job = json.loads(out.stdout)["job_id"]
    assert json.loads((run / "job.json").read_text())["job_id"] == job
    wait_generations(run, 3)
    sh("scancel", "--signal=USR2", job)
    hist = wait_done(job, 240 * SLOW)
    assert "REQUEUED" in hist and hist[-1] == "COMPLETED", hist
    status = json.loads(essa(["status", str(run)]).stdout)
    assert status["finished"] and status["generation"] == GENS and status["job_state"] == "COMPLETED"
    assert metrics(run)[-1]["adapter_sha256"] == reference
    import submitit
    result = submitit.SlurmJob(run / "submitit", job).result()
    assert result["adapter_sha256"] == reference


def test_without_elastic_a_dying_rank_ends_the_job_and_resubmit_resumes(reference, tmp_path):
    """ESSA_ELASTIC=0: SLURM's own handling (the elastic relaunch is tested in test_two_nodes.py)."""
    run = tmp_path / "run"
    job = sbatch(run, tmp_path, "--no-kill=off", slow_ckpt_s="0.7", elastic=False)
    wait_generations(run, 3)
    os.kill(rank_pid(job, 1), signal.SIGKILL)
    hist = wait_done(job, 60 * SLOW)
    log = job_log(tmp_path, job)
    assert hist[-1] == "FAILED", (hist, log)
    assert "task 1" in log and "Killed" in log, log  # srun names the rank that died
    assert "resubmit with ESSA_RUN_DIR=" in log
    job2 = sbatch(run, tmp_path)
    assert wait_done(job2, 180 * SLOW)[-1] == "COMPLETED", job_log(tmp_path, job2)
    assert "resumed from ckpt_" in job_log(tmp_path, job2)
    assert metrics(run)[-1]["adapter_sha256"] == reference
