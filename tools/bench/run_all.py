#!/usr/bin/env python3
"""`make bench`: every benchmark, each writing bench/results/<name>.json, then the plots.

    python tools/bench/run_all.py [--quick | --study]

Default: rollout throughput (~5 min), EGGROLL throughput (~1 min), HF against vLLM (~2 min;
skipped without make venv-vllm), scaling (~12 min), memory (~5 min), plots.
--quick: the same at small sizes (a few minutes). --study: the slow part, the ESSA-vs-GRPO
study with equal tuning effort (configs/studies/fair.yaml: 6 arms per method at 5 minutes each,
then the best arm of each with 3 seeds at 30 minutes, two ESSA levers, 1-to-2-worker timing of
both methods, the projection to N workers and the report: about 5 hours on 2 cores; resumable:
rerun the same command after an interruption, finished runs are skipped).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = ["rollout_throughput.py", "eggroll_throughput.py", "vllm_throughput.py", "scaling.py", "memory.py", "plots.py"]
STUDY_STEPS = [  # hours; resumable, finished runs are skipped
    ["tools/study/study_fair.py", "configs/studies/fair.yaml", "--out", "runs/fair", "--ranks", "2"],
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, minutes not hours")
    ap.add_argument("--study", action="store_true", help="only the ESSA-vs-GRPO study with equal tuning "
                    "effort (tools/study/study_fair.py configs/studies/fair.yaml; hours)")
    args = ap.parse_args()
    if args.study:
        cmds = [[sys.executable, *step] for step in STUDY_STEPS]
    else:
        cmds = [[sys.executable, str(HERE / step)] + (["--quick"] if args.quick and step != "plots.py" else [])
                for step in STEPS]
    for cmd in cmds:
        print("+ " + " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=HERE.parents[1]).returncode != 0:
            print(f"{cmd[1]} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
