#!/usr/bin/env python3
"""`make bench`: every benchmark, each writing bench/results/<name>.json, then the plots.

    python tools/bench/run_all.py [--quick]

Slow parts (full mode): rollout throughput (~5 min), scaling (~10 min), memory (~10 min),
the ESSA-vs-GRPO study (hours; run it separately: tools/bench/essa_vs_grpo.py).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = ["rollout_throughput.py", "scaling.py", "memory.py", "plots.py"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, minutes not hours")
    args = ap.parse_args()
    for step in STEPS:
        if not (HERE / step).is_file():
            print(f"skip {step}: not present")
            continue
        cmd = [sys.executable, str(HERE / step)] + (["--quick"] if args.quick and step != "plots.py" else [])
        print("+ " + " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=HERE.parents[1]).returncode != 0:
            print(f"{step} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
