#!/usr/bin/env python3
"""ESSA against GRPO with equal tuning effort: the same SFT start, the same number of arms for each
method, every arm scored on the validation set after the same wall-time budget, then the best arm
of each method with several seeds. The held-out set is scored for the reported numbers only.

    python tools/study_fair.py configs/studies/fair.yaml [--out runs/fair] [--ranks 2] [--stage screen]

STUDY.yaml:
    config: configs/demo.yaml
    common: [task.validation_size=200, ...]   # every stage, both methods
    sft: [sft.steps=15]                       # the shared start
    screen: {budget_s: 300, seed: 0}          # each arm: this many seconds of training
    final: {budget_s: 1800, seeds: [0, 1, 2]} # the best arm of each method
    grpo_steps_cap: 1000                      # GRPO's baseline.steps (its budget ends it earlier)
    essa_arms:  [{name: cma-s0.3, overrides: [...]}, ...]
    grpo_arms:  [{name: lr1e-4-g8, overrides: [...]}, ...]

Layout: <out>/sft, <out>/screen/<method>/<arm>, <out>/final/<method>/seed<k>, each a normal run
dir; <out>/fair_summary.json holds every arm's validation score, the choice and the finals.
A run whose adapter exists is done and skipped, an interrupted ES run resumes, so the study
survives being stopped: rerun the same command. ES arms run on --ranks MPI ranks; GRPO arms in
one process with --ranks torch threads, so both use the same cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
METHODS = ("essa", "grpo")


def run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def train_seconds(r: dict) -> float:
    """Cumulative training time at record ``r``, evaluations excluded, the same for both methods."""
    return r["wall_s"] - r["eval_wall_s"] if "wall_s" in r else r["_es_s"]


def curves(run_dir: Path) -> dict:
    """Validation and held-out curves against training seconds and samples, from a run's metrics."""
    recs, t, samples = records(run_dir), 0.0, 0
    out = {"validation": [], "heldout": [], "finished": (run_dir / "adapter").is_dir()}
    for r in recs:
        if "wall_s" not in r:  # ES: step times; baselines: wall clock
            t += r.get("step_s", 0.0) - r.get("heldout_s", 0.0)
            samples += r.get("samples", 0)
            r = {**r, "_es_s": t, "samples": samples}
        for key in ("validation", "heldout"):
            if f"{key}_reward" in r:
                out[key].append((round(train_seconds(r), 1), r.get("samples", 0), r[f"{key}_reward"]))
    return out


def method_command(method: str, spec: dict, sft: Path, overrides: list[str], seed: int, budget: float,
                   run_dir: Path, ranks: int) -> list[str]:
    essa = str(BIN / "essa-hpc")
    common = [*spec.get("common", []), f"space.init={sft}", f"run.seed={seed}", "run.progress=false", *overrides]
    if method == "essa":
        mpi = [str(BIN / "mpiexec"), "-n", str(ranks)] if ranks > 1 else []
        return [*mpi, essa, "train", spec["config"], *common, f"run.budget_s={budget}", "run.generations=100000",
                "--run-dir", str(run_dir)]
    # GRPO's prompt set is built up front for baseline.steps, so the cap is the spec's, not "unlimited".
    return [essa, "baseline", "grpo", spec["config"], *common, f"run.threads={ranks}", f"baseline.budget_s={budget}",
            f"baseline.steps={spec.get('grpo_steps_cap', 1000)}", "--run-dir", str(run_dir)]


def ensure(method: str, spec: dict, sft: Path, overrides: list[str], seed: int, budget: float, run_dir: Path,
           ranks: int) -> dict:
    if not (run_dir / "adapter").is_dir():
        if method == "grpo" and run_dir.exists():  # TRL runs do not resume: start the arm again
            import shutil
            shutil.rmtree(run_dir)
        code = run(method_command(method, spec, sft, overrides, seed, budget, run_dir, ranks))
        if code != 0:
            raise SystemExit(f"study_fair: {method} run {run_dir} failed with exit code {code}")
    return curves(run_dir)


def summarise_finals(runs: list[dict]) -> dict:
    finals = [r["heldout"][-1][2] for r in runs]
    peaks = [max(h[2] for h in r["heldout"]) for r in runs]
    starts = [r["heldout"][0][2] for r in runs]
    sd = statistics.stdev if len(runs) > 1 else (lambda xs: 0.0)
    return {"final": finals, "peak": peaks, "start": starts,
            "final_mean": statistics.mean(finals), "final_sd": sd(finals),
            "peak_mean": statistics.mean(peaks), "peak_sd": sd(peaks),
            "gain_mean": statistics.mean(f - s for f, s in zip(finals, starts))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study YAML")
    ap.add_argument("--out", default="runs/fair")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks per ES run; torch threads per GRPO run")
    ap.add_argument("--stage", choices=["screen", "final"], default="final", help="stop after this stage")
    args = ap.parse_args()
    spec = yaml.safe_load(Path(args.study).read_text())
    arms = {m: spec[f"{m}_arms"] for m in METHODS}
    if len(arms["essa"]) != len(arms["grpo"]):
        raise SystemExit(f"study_fair: unequal tuning budget: {len(arms['essa'])} ESSA arms against "
                         f"{len(arms['grpo'])} GRPO arms")
    out = ROOT / args.out
    sft = out / "sft"
    if not (sft / "adapter_config.json").is_file():
        if run([str(BIN / "essa-hpc"), "sft", spec["config"], *spec.get("common", []), *spec.get("sft", []),
                "--out", str(sft)]) != 0:
            return 1
    summary = {"study": args.study, "ranks": args.ranks, "screen": {m: {} for m in METHODS}, "best": {},
               "final": {}}
    screen = spec["screen"]
    for method in METHODS:
        for arm in arms[method]:
            got = ensure(method, spec, sft, arm["overrides"], screen["seed"], screen["budget_s"],
                         out / "screen" / method / arm["name"], args.ranks)
            summary["screen"][method][arm["name"]] = {"overrides": arm["overrides"],
                                                      "validation_final": got["validation"][-1][2],
                                                      "validation_curve": got["validation"]}
            (out / "fair_summary.json").write_text(json.dumps(summary, indent=1))
        scores = summary["screen"][method]
        summary["best"][method] = max(scores, key=lambda name: scores[name]["validation_final"])
    (out / "fair_summary.json").write_text(json.dumps(summary, indent=1))
    if args.stage == "final":
        final = spec["final"]
        for method in METHODS:
            best = next(a for a in arms[method] if a["name"] == summary["best"][method])
            runs = [ensure(method, spec, sft, best["overrides"], seed, final["budget_s"],
                           out / "final" / method / f"seed{seed}", args.ranks) for seed in final["seeds"]]
            summary["final"][method] = {"arm": best["name"], **summarise_finals(runs),
                                        "runs": {f"seed{s}": r for s, r in zip(final["seeds"], runs)}}
            (out / "fair_summary.json").write_text(json.dumps(summary, indent=1))
    for method in METHODS:
        line = "  ".join(f"{n}={v['validation_final']:.3f}" for n, v in summary["screen"][method].items())
        print(f"{method}: best {summary['best'][method]}; validation at the screen budget: {line}")
        if method in summary["final"]:
            f = summary["final"][method]
            print(f"{method} final ({f['arm']}): held-out {f['final_mean']:.3f} +/- {f['final_sd']:.3f}, "
                  f"peak {f['peak_mean']:.3f}, gain over the start {f['gain_mean']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
