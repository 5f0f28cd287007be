"""Talking to the real test cluster: submit, poll sacct, find a rank's pid."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from helpers import metrics


def sh(*cmd: str, env: dict | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def job_id_from(sbatch_out: str) -> str:
    return re.search(r"Submitted batch job (\d+)", sbatch_out).group(1)


def states(job: str) -> list[str]:
    """Every state sacct has recorded for the job, oldest first (-D keeps requeued records)."""
    out = sh("sacct", "-D", "-X", "-n", "-P", "-j", job, "-o", "State", check=False)
    return [s.strip() for s in out.splitlines() if s.strip()]


def wait_done(job: str, timeout: float) -> list[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        hist = states(job)
        pending = sh("squeue", "-h", "-j", job, check=False).strip()
        if hist and not pending and hist[-1] not in ("RUNNING", "PENDING", "REQUEUED", "COMPLETING"):
            return hist
        time.sleep(1)
    raise AssertionError(f"job {job} not finished after {timeout} s: {states(job)}")


def wait_generations(run_dir: Path, n: int, timeout: float = 540) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run_dir / "metrics.jsonl").is_file() and len(metrics(run_dir)) >= n + 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"{run_dir} did not reach generation {n} in {timeout} s")


def rank_pid(job: str, rank: int) -> int:
    """The pid of the training process with SLURM_PROCID == rank."""
    out = sh("scontrol", "listpids", job)
    for line in out.splitlines()[1:]:
        pid = line.split()[0]
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"SLURM_PROCID={rank}".encode() in env and b"essa-hpc" in cmd and b"train" in cmd:
            return int(pid)
    raise AssertionError(f"no rank {rank} process in job {job}:\n{out}")
