#!/usr/bin/env python3
"""Peak resident memory per rank: ESSA training versus TRL GRPO, same model and task.

    python tools/bench/memory.py [--quick]

Each command runs under its own wrapper process, whose RUSAGE_CHILDREN maximum is the
peak RSS of the largest descendant (one rank; mpiexec waits for its ranks).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, save

BIN = Path(sys.executable).parent
WRAP = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb(cmd: list[str]) -> float:
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], cwd=ROOT, capture_output=True, text=True, check=True)
    return round(int(out.stdout.strip().splitlines()[-1]) / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="runs/bench-memory")
    args = ap.parse_args()
    out = ROOT / args.out
    essa = str(BIN / "essa-hpc")
    common = ["configs/demo.yaml", "task.heldout_size=16", "run.progress=false", "run.threads=1"]
    pop, batch = (8, 8) if args.quick else (16, 32)
    runs = {
        "essa_1rank": [essa, "train", *common, f"strategy.population={pop}", f"task.batch_size={batch}",
                       "run.generations=2", "--run-dir", str(out / "essa1"), "--resume", "never"],
        "essa_2ranks_per_rank": [str(BIN / "mpiexec"), "-n", "2", essa, "train", *common,
                                 f"strategy.population={pop}", f"task.batch_size={batch}", "run.generations=2",
                                 "--run-dir", str(out / "essa2"), "--resume", "never"],
        "grpo": [essa, "baseline", "grpo", *common, "baseline.steps=2", "baseline.eval_every=0",
                 f"baseline.batch_size={batch}", "baseline.num_generations=4", "--run-dir", str(out / "grpo")],
    }
    result = {name: peak_mb(cmd) for name, cmd in runs.items()}
    result["essa_over_grpo"] = round(result["essa_1rank"] / result["grpo"], 3)
    print(json.dumps(result, indent=1))
    save("memory", {"command": "python tools/bench/memory.py" + (" --quick" if args.quick else ""),
                    "population": pop, "batch": batch, "peak_rss_mb": result})


if __name__ == "__main__":
    main()
