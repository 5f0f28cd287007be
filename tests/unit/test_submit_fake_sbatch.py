"""`essa-hpc submit` against a faked sbatch (an extra to the real-SLURM tests in tests/slurm):
checks the job script submitit writes for us, on machines without SLURM."""
import json
import os
import stat

from helpers import TINY, cli_env, essa


def fake_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for exe in ("sbatch", "srun"):
        (bin_dir / exe).chmod((bin_dir / exe).stat().st_mode | stat.S_IEXEC)
    return bin_dir


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def submitted_job(tmp_path):
    import pickle
    [pkl] = (tmp_path / "run" / "submitit").glob("*_submitted.pkl")
    return pickle.loads(pkl.read_bytes()).function


def test_submit_writes_requeueable_mpi_job(tmp_path):
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    out = essa(["submit", str(TINY), "strategy.population=8", "--run-dir", str(tmp_path / "run"),
                "--tasks-per-node", "2", "--time", "30", "--partition", "debug", "--no-elastic"], env=env)
    assert json.loads(out.stdout) == {"job_id": "4242", "run_dir": str(tmp_path / "run")}
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --ntasks-per-node=2", "#SBATCH --signal=USR2@90", "#SBATCH --time=30",
                 "#SBATCH --partition=debug"):
        assert line in script, script
    assert "--mpi=pmi2" in script and "--kill-on-bad-exit=1" in script
    assert "#SBATCH --no-kill" not in script and type(submitted_job(tmp_path)).__name__ == "TrainJob"
    assert json.loads((tmp_path / "run" / "job.json").read_text())["job_id"] == "4242"


def test_an_elastic_submit_keeps_the_allocation_and_starts_one_driver(tmp_path):
    """The default on SLURM: --no-kill, the allocation's shape as sbatch options, and one task
    (the relaunch loop) that submitit's srun starts on one node, overlapping the ranks' step."""
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    essa(["submit", str(TINY), "strategy.population=8", "--run-dir", str(tmp_path / "run"), "--nodes", "2",
          "--tasks-per-node", "2", "--max-restarts", "5", "--min-nodes", "2"], env=env)
    script = (tmp_path / "submitted.sh").read_text()
    lines = sbatch_lines(script)
    for line in ("#SBATCH --no-kill", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=2", "#SBATCH --signal=USR2@90"):
        assert lines.count(line) == 1, lines
    assert "--nodes=1 --ntasks=1 --overlap" in script and "--kill-on-bad-exit" not in script
    argv = submitted_job(tmp_path).elastic_argv()
    assert argv[:6] == ["--max-restarts=5", "--min-nodes=2", "--min-gap-s=10.0", "--tasks-per-node=2", "--",
                        "--mpi=pmi2"]
    assert argv[argv.index("train") - 1].endswith("essa-hpc") and argv[-4:] == [
        "--run-dir", str(tmp_path / "run"), "--resume", "auto"]


def test_elastic_bounds_are_checked_before_queueing(tmp_path):
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    proc = essa(["submit", str(TINY), "--nodes", "2", "--min-nodes", "3", "--run-dir", str(tmp_path / "run")],
                env=env, check=False)
    assert proc.returncode == 2 and "--min-nodes must be in [1, --nodes 2]" in proc.stderr
    assert not (tmp_path / "submitted.sh").exists()


def test_submit_validates_before_queueing(tmp_path):
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    proc = essa(["submit", str(TINY), "strategy.population=2", "--tasks-per-node", "4",
                 "--run-dir", str(tmp_path / "run")], env=env, check=False)
    assert proc.returncode == 2 and "more ranks (4) than candidates" in proc.stderr
    assert not (tmp_path / "submitted.sh").exists()
