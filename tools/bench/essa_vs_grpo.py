#!/usr/bin/env python3
"""ESSA versus GRPO on SmolLM2 arithmetic after the same SFT warm-up, several seeds.

    python tools/bench/essa_vs_grpo.py --study runs/learning --study-spec configs/studies/learning.yaml
                                       [--seeds 0 1 2] [--grpo baseline.steps=200 ...]

ESSA runs are taken from a finished learning study (tools/study/study_learning.py; its SFT
adapter is the start of both methods). GRPO runs (TRL, same LoRA rank, same task,
reward and held-out set) are started here into <study>/grpo/seed<k>. Held-out
evaluation time is excluded from both methods' wall time. Reports, per method and
seed, the final held-out accuracy and the wall time / samples needed to first reach
GRPO's (and ESSA's) mean final accuracy, and writes bench/results/essa_vs_grpo.json
(plot: tools/bench/plots.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml
from common import ROOT, save

BIN = Path(sys.executable).parent


def essa_curves(run: Path) -> dict:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    wall = samples = 0.0
    wall_curve, sample_curve = [], []
    for r in recs:
        wall += r.get("step_s", 0.0) - r.get("heldout_s", 0.0) + (r.get("ckpt_s") or 0.0)
        samples += r.get("samples", 0)
        if "heldout_reward" in r:
            wall_curve.append((round(wall, 1), r["heldout_reward"]))
            sample_curve.append((samples, r["heldout_reward"]))
    return {"wall_curve": wall_curve, "sample_curve": sample_curve, "final": wall_curve[-1][1]}


def grpo_curves(run: Path) -> dict:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    held = [r for r in recs if "heldout_reward" in r]
    wall_curve = [(round(r.get("wall_s", 0.0) - r.get("eval_wall_s", 0.0), 1), r["heldout_reward"]) for r in held]
    sample_curve = [(r.get("samples", 0), r["heldout_reward"]) for r in held]
    return {"wall_curve": wall_curve, "sample_curve": sample_curve, "final": held[-1]["heldout_reward"]}


def first_reach(curve: list, target: float):
    return next((x for x, acc in curve if acc >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True, help="a finished tools/study/study_learning.py output dir")
    ap.add_argument("--study-spec", required=True, help="the study YAML it was run from")
    ap.add_argument("--arm", help="ESSA arm to compare (default: the first arm of the spec)")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--grpo", nargs="*", default=[], help="GRPO overrides (baseline.* keys), after the "
                    "study spec's own `grpo:` list")
    args = ap.parse_args()
    study = ROOT / args.study
    spec = yaml.safe_load(Path(args.study_spec).read_text())
    arm = args.arm or spec["arms"][0]["name"]
    grpo_overrides = [*spec.get("grpo", []), *args.grpo]
    methods = {"essa": [], "grpo": []}
    for seed in args.seeds:
        methods["essa"].append(essa_curves(study / arm / f"seed{seed}"))
        run = study / "grpo" / f"seed{seed}"
        if not (run / "adapter").is_dir():
            cmd = [str(BIN / "essa-hpc"), "baseline", "grpo", spec["config"], *spec.get("common", []),
                   f"space.init={study / 'sft'}", f"run.seed={seed}", "run.progress=false", *grpo_overrides,
                   "--run-dir", str(run)]
            print("+ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)
        methods["grpo"].append(grpo_curves(run))
    # The yardstick is GRPO's mean final accuracy; ESSA's is reported too, so the
    # comparison reads both ways when one method never reaches the other's level (None).
    targets = {f"{name}_mean_final": statistics.mean(r["final"] for r in runs) for name, runs in methods.items()}
    report = {}
    for name, runs in methods.items():
        report[name] = {"final": [r["final"] for r in runs], "total_wall_s": [r["wall_curve"][-1][0] for r in runs],
                        "total_samples": [r["sample_curve"][-1][0] for r in runs]}
        for tname, target in targets.items():
            other = tname.removesuffix("_mean_final")
            report[name][f"wall_s_to_{other}_final"] = [first_reach(r["wall_curve"], target) for r in runs]
            report[name][f"samples_to_{other}_final"] = [first_reach(r["sample_curve"], target) for r in runs]
    print(json.dumps({**targets, **report}, indent=1))
    save("essa_vs_grpo", {"command": " ".join(["python tools/bench/essa_vs_grpo.py", *sys.argv[1:]]),
                          **targets, "grpo_overrides": grpo_overrides, "report": report, "methods": methods,
                          "essa_arm": arm})


if __name__ == "__main__":
    main()
