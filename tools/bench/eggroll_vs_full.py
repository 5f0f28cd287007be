#!/usr/bin/env python3
"""Learning check: EGGROLL against the full space (ES at scale) at equal wall time, on SmolLM2
from the same SFT-merged start (the demo's task: two-digit a+b, 300 held-out problems).

    python tools/bench/eggroll_vs_full.py [--minutes 20] [--ranks 2] [--out runs/eggroll_vs_full]

1. `essa-hpc sft configs/demo.yaml` (the demo's 15 steps), merged into the base model and saved
   as an HF directory: both spaces start from exactly these weights.
2. For each space, `essa-hpc train` under mpiexec with the same open_es settings (σ, α, shaping,
   population, prompts), stopped by SIGUSR1 after ``--minutes`` of wall time (the run
   checkpoints at the end of that generation), then scored on the held-out set from its last
   checkpoint. Resumable: a finished stage is skipped.
Writes bench/results/eggroll_vs_full.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, save

BIN = Path(sys.executable).parent
ALL_LINEARS = "[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"
# One set of open_es settings for both spaces: ES at scale's sigma and alpha (arXiv 2509.24372),
# z-scored rewards, mirrored pairs; EGGROLL's rank 1 (arXiv 2511.16652).
COMMON = ["strategy.kind=open_es", "strategy.population=16", "strategy.sigma0=0.001", "strategy.sigma_relative=false",
          "strategy.mirrored=true", "strategy.open_es.learning_rate=5e-4", "strategy.open_es.shaping=z_score",
          "task.batch_size=32", "run.eval_every=10", "run.generations=100000", "ckpt.every=5"]
SPACES = {"eggroll": ["space.kind=eggroll", "space.rank=1", f"space.target_modules={ALL_LINEARS}",
                      "rollout.group_size=8"],
          "full": ["space.kind=full", "rollout.group_size=1"]}


def merged_start(out: Path) -> Path:
    merged = out / "sft_merged"
    if (merged / "config.json").is_file():
        return merged
    sft = out / "sft"
    if not (sft / "adapter_config.json").is_file():
        subprocess.run([str(BIN / "essa-hpc"), "sft", "configs/demo.yaml", "--out", str(sft)], cwd=ROOT, check=True)
    from peft import PeftModel

    from essa_hpc import config
    from essa_hpc.model import load_model

    model, tok = load_model(config.load(ROOT / "configs" / "demo.yaml").model)
    PeftModel.from_pretrained(model, str(sft)).merge_and_unload().save_pretrained(str(merged))
    tok.save_pretrained(str(merged))
    return merged


def train_for(space: str, start: Path, out: Path, minutes: float, ranks: int) -> Path:
    run = out / space
    if (run / "done.json").is_file():
        return run
    if run.exists():
        shutil.rmtree(run)
    cmd = [str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "essa-hpc"), "train", "configs/demo.yaml",
           f"model.name={start}", *COMMON, *SPACES[space], "run.progress=false", "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    t0 = time.time()
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # mpiexec forwards it: every rank checkpoints this generation
        proc.wait(timeout=1800)
    (run / "done.json").write_text(json.dumps({"wall_s": time.time() - t0, "exit": proc.returncode}))
    return run


def summarise(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [(r["generation"], r["heldout_reward"]) for r in records if "heldout_reward" in r]
    final = subprocess.run([str(BIN / "essa-hpc"), "eval", "--run-dir", str(run)], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    final_reward = json.loads(final.strip().splitlines()[-1])["heldout_reward"]
    gens = records[-1]["generation"]
    step_s = [r["step_s"] for r in records[1:] if "step_s" in r]
    return {"generations": gens, "start": evals[0][1], "final": final_reward, "change": final_reward - evals[0][1],
            "curve": evals, "median_step_s": sorted(step_s)[len(step_s) // 2] if step_s else None,
            **json.loads((run / "done.json").read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--out", default="runs/eggroll_vs_full")
    args = ap.parse_args()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = merged_start(out)
    results = {space: summarise(train_for(space, start, out, args.minutes, args.ranks)) for space in SPACES}
    for space, r in results.items():
        print(f"{space}: {r['generations']} generations, held-out {r['start']:.3f} -> {r['final']:.3f} "
              f"({r['change']:+.3f}), median {r['median_step_s']} s per generation", flush=True)
    save("eggroll_vs_full", {"command": f"python tools/bench/eggroll_vs_full.py --minutes {args.minutes} "
                                        f"--ranks {args.ranks}", "settings": COMMON, "spaces": SPACES,
                             "results": results})


if __name__ == "__main__":
    main()
