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


def test_submit_writes_requeueable_mpi_job(tmp_path):
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    out = essa(["submit", str(TINY), "strategy.population=8", "--run-dir", str(tmp_path / "run"),
                "--tasks-per-node", "2", "--time", "30", "--partition", "debug"], env=env)
    assert json.loads(out.stdout) == {"job_id": "4242", "run_dir": str(tmp_path / "run")}
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --ntasks-per-node=2", "#SBATCH --signal=USR2@90", "#SBATCH --time=30",
                 "#SBATCH --partition=debug"):
        assert line in script, script
    assert "--mpi=pmi2" in script and "--kill-on-bad-exit=1" in script
    assert json.loads((tmp_path / "run" / "job.json").read_text())["job_id"] == "4242"


def test_submit_validates_before_queueing(tmp_path):
    env = cli_env(PATH=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    proc = essa(["submit", str(TINY), "strategy.population=2", "--tasks-per-node", "4",
                 "--run-dir", str(tmp_path / "run")], env=env, check=False)
    assert proc.returncode == 2 and "more ranks (4) than candidates" in proc.stderr
    assert not (tmp_path / "submitted.sh").exists()
