#!/usr/bin/env python3
"""The quantization table: per ``model.quantize`` mode, the SFT start's held-out score, the peak
resident memory, and the rollout rate (new tokens per second of candidate evaluation), one mode
after another on one machine so that the rates compare as ratios.

    python tools/bench/quantize_table.py --init runs/demo/sft [--modes none int8 nf4 ...]

Each mode is one `essa-hpc train` of one generation on one rank (the demo's config, the SFT start
as ``space.init``), under a wrapper whose RUSAGE_CHILDREN maximum is the run's peak RSS. The
held-out score is generation 0's; the rate is generation 1's ``new_tokens / eval_s``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, save
from memory import WRAP

BIN = Path(sys.executable).parent
MODES = ["none", "int8", "nf4", "bnb_int8", "int8_weight_only"]


def measure(mode: str, init: str, out: Path, threads: int, timeout: float) -> dict:
    run_dir = out / mode
    cmd = [str(BIN / "essa-hpc"), "train", "configs/demo.yaml", f"space.init={init}", f"model.quantize={mode}",
           "run.generations=1", "run.eval_every=0", "run.progress=false", f"run.threads={threads}",
           "--run-dir", str(run_dir), "--resume", "never"]
    try:
        proc = subprocess.run([sys.executable, "-c", WRAP, *cmd], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "error": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"mode": mode, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start, step = rows[0], rows[1]
    return {"mode": mode, "heldout_start": start["heldout_reward"],
            "peak_rss_mb": round(int(proc.stdout.strip().splitlines()[-1]) / 1024, 1),
            "tokens_per_s": round(step["new_tokens"] / step["eval_s"], 1), "new_tokens": step["new_tokens"],
            "eval_s": round(step["eval_s"], 2), "packages": start.get("packages")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="the SFT adapter directory (essa-hpc sft configs/demo.yaml)")
    ap.add_argument("--modes", nargs="+", default=MODES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mode before it is reported as too slow")
    ap.add_argument("--out", default="runs/bench-quantize")
    args = ap.parse_args()
    rows = []
    for mode in args.modes:
        rows.append(measure(mode, args.init, ROOT / args.out, args.threads, args.timeout))
        print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["mode"] == "none" and "error" not in r), None)
    for row in rows:
        if base and "error" not in row:
            row["rate_vs_none"] = round(row["tokens_per_s"] / base["tokens_per_s"], 2)
            row["rss_vs_none"] = round(row["peak_rss_mb"] / base["peak_rss_mb"], 2)
    save("quantize_table", {"command": "python tools/bench/quantize_table.py " + " ".join(sys.argv[1:]),
                            "rows": rows})


if __name__ == "__main__":
    main()
