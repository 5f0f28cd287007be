#!/usr/bin/env python3
"""The demo behind `make demo`: SFT warm-up -> ESSA under mpiexec, on the shipped
SmolLM2-135M-Instruct, offline. Prints held-out accuracy for the base model,
after SFT and after ESSA, with wall times, and writes runs/demo/summary.json.

    python tools/demo.py [--ranks 2] [--config configs/demo.yaml] [overrides...]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str]) -> str:
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"demo step failed ({proc.returncode}): {' '.join(cmd)}")
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks for the ES stage")
    ap.add_argument("--run-dir", default="runs/demo")
    ap.add_argument("overrides", nargs="*", help="section.key=value overrides for every stage")
    args = ap.parse_args()
    run_dir = ROOT / args.run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh
    essa = str(BIN / "essa-hpc")
    t0 = time.time()
    base = last_json(run([essa, "eval", args.config, *args.overrides]))
    t_base = time.time()
    sft = last_json(run([essa, "sft", args.config, *args.overrides, "--out", str(run_dir / "sft")]))
    t_sft = time.time()
    mpi = [str(BIN / "mpiexec"), "-n", str(args.ranks)] if args.ranks > 1 else []
    run([*mpi, essa, "train", args.config, *args.overrides, f"space.init={run_dir / 'sft'}",
         "--run-dir", str(run_dir / "essa"), "--resume", "never"])
    t_es = time.time()
    records = [json.loads(x) for x in (run_dir / "essa" / "metrics.jsonl").read_text().splitlines()]
    heldout = [(r["generation"], r["heldout_reward"]) for r in records if "heldout_reward" in r]
    summary = {"config": args.config, "ranks": args.ranks, "heldout_size": base["heldout_size"],
               "base": base["heldout_reward"], "after_sft": sft["heldout_reward"],
               "essa_start": heldout[0][1], "after_essa": heldout[-1][1], "essa_curve": heldout,
               "seconds": {"base_eval": round(t_base - t0), "sft": round(t_sft - t_base), "essa": round(t_es - t_sft),
                           "total": round(t_es - t0)}}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    n = base["heldout_size"]
    print(f"\nHeld-out exact-match accuracy on {n} problems ({args.config}):")
    print(f"  base model   {summary['base']:.3f}")
    print(f"  after SFT    {summary['after_sft']:.3f}   ({summary['seconds']['sft']} s)")
    print(f"  after ESSA   {summary['after_essa']:.3f}   ({summary['seconds']['essa']} s, {args.ranks} ranks, "
          f"{len(records) - 1} generations)")
    print(f"  total wall time {summary['seconds']['total']} s; adapter in {run_dir / 'essa' / 'adapter'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
