#!/usr/bin/env python3
"""Bytes on the wire per generation, on a real two-node SLURM cluster, for several model sizes.

    tools/cluster/local_slurm.sh start --nodes 2      # root; nodes are namespaces on a private bridge
    python tools/bench/wire_bytes.py [--models tiny-random tiny-random:64x4 shipped:smollm2-135m-instruct]
                                     [--from-gen 2 --to-gen 14] [--out bench/results/wire_bytes.json]

Each model runs configs/tiny.yaml (population 8, one rank per node) as `sbatch --nodes=2
--ntasks-per-node=1 slurm/essa.sbatch`. Rank 1 sits on node2, so every byte between the two
ranks crosses node2's veth link; the host-side end's rx+tx counters
(/sys/class/net/essa-v2/statistics) are read when rank 0 logs generation FROM and again at
generation TO. Measuring across generations leaves SLURM's and MPI's start-up traffic out.
Reported next to it: rank 0's ``bytes_sent`` from the comm class over the same generations.
A slow checkpoint (the tests' hook, --slow-ckpt-s, default 1 s) stretches each generation, so that the reads, made
within ~10 ms of a metrics line, fall between generations' traffic, not inside it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE2_VETH = Path("/sys/class/net/essa-v2/statistics")
# An idle third node gets the same periodic SLURM traffic (slurmctld's pings, every
# SlurmdTimeout/3) at the same moments as node2: its counters over the same window are the
# part of node2's bytes that is not the job's. Without a node3 nothing is subtracted.
CONTROL_VETH = Path("/sys/class/net/essa-v3/statistics")
DEFAULT_MODELS = ["tiny-random", "tiny-random:64x4", "shipped:smollm2-135m-instruct"]


def _counter(link: Path) -> int:
    return sum(int((link / f"{d}_bytes").read_text()) for d in ("rx", "tx")) if link.is_dir() else 0


def wire_counter() -> tuple[int, int]:
    """(node2's link, the idle control node's link): rx+tx bytes so far."""
    return _counter(NODE2_VETH), _counter(CONTROL_VETH)


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def _job_state(job: str) -> str:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job, "-o", "State"], capture_output=True, text=True).stdout
    return (out.split() or ["PENDING"])[-1]


def measure(model: str, from_gen: int, to_gen: int, workdir: Path, timeout: float = 1200,
                 extra: tuple[str, ...] = (), slow_ckpt_s: float = 1.0) -> dict:
    """One two-node job on ``model``; wire and comm bytes per generation between the two generations."""
    run_dir = workdir / (re.sub(r"[^A-Za-z0-9]+", "_", model) + f"_ckpt{slow_ckpt_s:g}s")
    env = dict(os.environ, ESSA_RUN_DIR=str(run_dir), ESSA_TEST_SLOW_CKPT_S=str(slow_ckpt_s), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT / "tests" / "hooks"), PYTHONUNBUFFERED="1")
    env.pop("ESSA_NO_MPI", None)  # set by the test suite for its in-process tests
    out = subprocess.run(["sbatch", "--nodes=2", "--ntasks-per-node=1", f"--output={workdir}/%j.out",
                          str(ROOT / "slurm" / "essa.sbatch"), str(ROOT / "configs" / "tiny.yaml"),
                          f"model.name={model}", f"run.generations={to_gen + 1}", *extra],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    job = re.search(r"Submitted batch job (\d+)", out).group(1)
    marks: dict[int, tuple[float, int, int]] = {}
    deadline, next_log_check, gens = time.time() + timeout, 0.0, set()
    while len(marks) < 2:
        if time.time() > deadline:
            log = workdir / f"{job}.out"
            tail = log.read_text()[-1500:] if log.is_file() else "(no job output)"
            raise RuntimeError(f"job {job} ({model}) did not reach generation {to_gen} in {timeout} s "
                               f"(state {_job_state(job)}, generations logged {sorted(gens)[-3:]}): {tail}")
        gens = {r["generation"] for r in _metrics(run_dir)}
        for g in (from_gen, to_gen):
            if g in gens and g not in marks:
                marks[g] = (time.time(), *wire_counter())
        if not gens and time.time() > next_log_check:  # a garbled PMI exchange can hang, not fail: end it now
            next_log_check = time.time() + 1.0
            log = workdir / f"{job}.out"
            if log.is_file() and "mpi/pmi2: invalid client request" in log.read_text():
                subprocess.run(["scancel", job], capture_output=True)
                raise RuntimeError(f"job {job} ({model}): the pmi2 exchange was garbled before MPI_Init "
                                   f"returned; cancelled: {log.read_text()[-1500:]}")
        if len(marks) < 2 and _job_state(job) in ("FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "COMPLETED"):
            log = (workdir / f"{job}.out").read_text()
            raise RuntimeError(f"job {job} ({model}) ended early: {log[-2000:]}")
        time.sleep(0.01)
    while _job_state(job) not in ("COMPLETED", "FAILED", "CANCELLED"):
        time.sleep(0.5)
    records = {r["generation"]: r for r in _metrics(run_dir)}
    n = to_gen - from_gen
    comm = sum(records[g].get("bytes_sent", 0) for g in range(from_gen + 1, to_gen + 1))
    log = (workdir / f"{job}.out").read_text()
    hosts = sorted(set(re.findall(r"rank \d+/\d+ on host (\S+)", log)))
    adapter = sum(f.stat().st_size for f in (run_dir / "adapter").glob("*.safetensors"))
    (t_a, node2_a, ctl_a), (t_b, node2_b, ctl_b) = marks[from_gen], marks[to_gen]
    return {"model": model, "job": job, "generations": n,
            "wire_bytes_per_gen": (node2_b - node2_a - (ctl_b - ctl_a)) / n,
            "node2_link_bytes_per_gen": (node2_b - node2_a) / n, "control_link_bytes_per_gen": (ctl_b - ctl_a) / n,
            "seconds_per_gen": (t_b - t_a) / n,
            "comm_bytes_sent_per_gen_rank0": comm / n, "rank_hosts": hosts, "job_state": _job_state(job),
            "adapter_file_bytes": adapter}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--from-gen", type=int, default=2)
    ap.add_argument("--to-gen", type=int, default=14)
    ap.add_argument("--slow-ckpt-s", type=float, nargs="+", default=[1.0],
                    help="seconds each checkpoint sleeps (several: one run per value and model, to show "
                         "which part of the bytes grows with the time a generation takes)")
    ap.add_argument("--out", help="JSON result file (default: print only)")
    ap.add_argument("--workdir", help="where the run dirs and job logs go (default: a temp dir)")
    args = ap.parse_args()
    if not NODE2_VETH.is_dir():
        print("wire_bytes: no node2 link; start the cluster first: tools/cluster/local_slurm.sh start --nodes 2", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="essa-wire-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for slow in args.slow_ckpt_s:
        for model in args.models:
            row = measure(model, args.from_gen, args.to_gen, workdir, slow_ckpt_s=slow)
            print(json.dumps(row), flush=True)
            rows.append({**row, "slow_ckpt_s": slow})
    if args.out:
        sys.path.insert(0, str(ROOT / "tools" / "bench"))
        from common import save
        save(Path(args.out).stem, {"command": "python tools/bench/wire_bytes.py " + " ".join(sys.argv[1:]),
                                   "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
