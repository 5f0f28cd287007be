#!/usr/bin/env python3
"""Parallel scaling of both methods' best arms from 1 to 2 workers on the same cores (a stage of
tools/study/study_fair.py; it needs the study's SFT start and fair_summary.json).

    python tools/study/study_scaling.py configs/studies/fair.yaml [--out runs/fair] [--steps 8] [--again]

A worker is one process with one torch thread:
- ESSA: ``essa-hpc train`` on 1 rank, then 2 MPI ranks (``mpiexec -n 2``): the same population and
  mini-batch, split over the ranks; only scalar rewards cross between them.
- GRPO: ``essa-hpc baseline grpo`` in 1 process, then 2 processes under ``torchrun`` (DDP over gloo):
  the same global batch, half the completions each, the LoRA gradient averaged every step.
  One process with 2 threads, the setting the study trains GRPO with, is timed too.
Per-step time is the median over the steps after the first (warm-up), evaluations excluded, as the
wall-time budgets count it. Parallel efficiency is T1 / (2 T2), from this one run. The inputs the
projection needs are recorded as well: ESSA's seconds per sample and fixed per-generation cost and
its bytes sent, GRPO's generation and backward seconds per completion and its LoRA gradient size.
Writes <out>/scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Shorter evaluations: the held-out set does not change how long a training step takes.
TIMING = ["task.heldout_size=50", "task.validation_size=0", "run.progress=false", "run.seed=0"]


def run(cmd: list[str], threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    env.pop("ESSA_NO_MPI", None)
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)


def steady(run_dir: Path) -> list[dict]:
    """The metrics lines after generation/step 1 (which carries one-off warm-up costs)."""
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [r for r in recs if r["generation"] >= 2]


def median(recs: list[dict], key: str) -> float:
    return statistics.median(r.get(key) or 0.0 for r in recs)


def essa_timing(spec: dict, sft: Path, arm: list[str], ranks: int, gens: int, run_dir: Path) -> dict:
    mpi = [str(BIN / "mpiexec"), "-n", str(ranks)] if ranks > 1 else []
    run([*mpi, str(BIN / "essa-hpc"), "train", spec["config"], *spec.get("common", []), *arm, f"space.init={sft}",
         *TIMING, "run.threads=1", f"run.generations={gens}", "run.eval_every=0", "--run-dir", str(run_dir),
         "--resume", "never"], 1)
    recs = steady(run_dir)
    step = statistics.median(r["step_s"] - r.get("heldout_s", 0.0) for r in recs)
    evaluate = median(recs, "eval_s")
    population = yaml.safe_load((run_dir / "config.yaml").read_text())["strategy"]["population"]
    return {"workers": ranks, "population": population, "step_s": round(step, 4), "eval_s": round(evaluate, 4),
            "fixed_s": round(step - evaluate, 4),  # ask, tell, allreduce, apply: the per-generation overhead
            "comm_s": round(median(recs, "comm_s"), 5), "samples": int(recs[0]["samples"]),
            "bytes_sent": median(recs, "bytes_sent"), "steps": len(recs) + 1}


def grpo_timing(spec: dict, sft: Path, arm: list[str], procs: int, threads: int, steps: int, run_dir: Path) -> dict:
    launch = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", str(procs), "--no-python"] if procs > 1 else []
    run([*launch, str(BIN / "essa-hpc"), "baseline", "grpo", spec["config"], *spec.get("common", []), *arm,
         f"space.init={sft}", *TIMING, f"run.threads={threads}", f"baseline.steps={steps}", "baseline.eval_every=0",
         "--run-dir", str(run_dir)], threads)
    recs = steady(run_dir)
    step, gen = median(recs, "step_s"), median(recs, "generate_s")
    per_step = recs[-1]["samples"] // recs[-1]["generation"]  # completions per optimizer step, all processes
    return {"workers": procs, "threads": threads, "step_s": round(step, 4), "generate_s": round(gen, 4),
            "backward_s": round(step - gen, 4), "samples": per_step, "steps": len(recs) + 1}


def lora_gradient_bytes(adapter: Path) -> int:
    """Bytes of one fp32 gradient of the adapter's trainable tensors (what DDP allreduces per step)."""
    from safetensors.torch import load_file

    return 4 * sum(t.numel() for t in load_file(str(adapter / "adapter_model.safetensors")).values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study YAML")
    ap.add_argument("--out", default="runs/fair")
    ap.add_argument("--steps", type=int, help="generations / optimizer steps per timing run (default: the "
                    "study's scaling.steps, else 8)")
    ap.add_argument("--again", action="store_true", help="measure again even if scaling.json exists")
    args = ap.parse_args()
    spec = yaml.safe_load(Path(args.study).read_text())
    steps = args.steps or spec.get("scaling", {}).get("steps", 8)
    out = ROOT / args.out
    if (out / "scaling.json").is_file() and not args.again:
        print(f"study_scaling: {out / 'scaling.json'} exists (--again measures again)")
        return 0
    summary = json.loads((out / "fair_summary.json").read_text())
    arms = {m: next(a["overrides"] for a in spec[f"{m}_arms"] if a["name"] == summary["best"][m])
            for m in ("essa", "grpo")}
    sft, base = out / "sft", out / "scaling"
    result = {"sft": summary.get("sft"), "sft_adapter": summary.get("sft_adapter"),
              "essa": {"arm": summary["best"]["essa"], "overrides": arms["essa"]},
              "grpo": {"arm": summary["best"]["grpo"], "overrides": arms["grpo"]}}
    for n in (1, 2):
        result["essa"][f"n{n}"] = essa_timing(spec, sft, arms["essa"], n, steps, base / f"essa-n{n}")
    for name, procs, threads in (("n1", 1, 1), ("n2", 2, 1), ("n1_2threads", 1, 2)):
        result["grpo"][name] = grpo_timing(spec, sft, arms["grpo"], procs, threads, steps,
                                           base / f"grpo-{name}")
    result["grpo"]["gradient_bytes"] = lora_gradient_bytes(base / "grpo-n1" / "adapter")
    for m in ("essa", "grpo"):
        t1, t2 = result[m]["n1"]["step_s"], result[m]["n2"]["step_s"]
        result[m]["speedup_1_to_2"] = round(t1 / t2, 3)
        result[m]["efficiency_1_to_2"] = round(t1 / (2 * t2), 3)
        print(f"{m}: {t1:.2f} s/step on 1 worker, {t2:.2f} on 2: speed-up {t1 / t2:.2f}, "
              f"efficiency {t1 / (2 * t2):.2f}", flush=True)
    (out / "scaling.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
