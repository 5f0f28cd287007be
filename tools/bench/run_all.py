#!/usr/bin/env python3
"""`make bench`: every benchmark, each writing bench/results/<name>.json, then the plots.

    python tools/bench/run_all.py [--quick | --study [signal|fair]]

Default: rollout throughput (~5 min), EGGROLL throughput (~1 min), HF against vLLM (~2 min;
skipped without make venv-vllm), scaling (~12 min), memory (~5 min), plots.
--quick: the same at small sizes (a few minutes). --study: the slow part, ESSA against GRPO from
two starts (configs/studies/signal_study.yaml: 6 arms per method screened by successive halving on
500 validation problems, then the chosen arm of each with 3 paired seeds at 30 minutes from each
start: about 10 hours on 2 cores). --study fair: the earlier study with one start and a one-run
screen (configs/studies/fair.yaml, about 5 hours). Both resume: rerun the same command after an
interruption, and recorded runs are skipped.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = ["rollout_throughput.py", "eggroll_throughput.py", "vllm_throughput.py", "scaling.py", "memory.py", "plots.py"]
STUDIES = {  # hours; resumable, recorded runs are skipped
    "signal": ["tools/study/study_signal.py", "configs/studies/signal_study.yaml", "--out", "runs/signal_study",
               "--ranks", "2"],
    "fair": ["tools/study/study_fair.py", "configs/studies/fair.yaml", "--out", "runs/fair", "--ranks", "2"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, minutes not hours")
    ap.add_argument("--study", nargs="?", const="signal", choices=list(STUDIES),
                    help="only an ESSA-vs-GRPO study (hours): signal (the default) or fair")
    args = ap.parse_args()
    if args.study:
        cmds = [[sys.executable, *STUDIES[args.study]]]
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
