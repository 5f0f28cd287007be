#!/usr/bin/env python3
"""ESSA against GRPO with equal tuning effort: the same SFT start, the same number of arms for each
method, every arm scored on the validation set after the same wall-time budget, then the best arm
of each method with several seeds. The held-out set is scored for the reported numbers only.

    python tools/study/study_fair.py configs/studies/fair.yaml [--out runs/fair] [--ranks 2] [--stage STAGE]

Stages, in order (--stage stops after one):
    screen      every arm of both methods at the screen budget, scored on validation; the best of each
    final       the best arm of each method with every final seed; the target accuracies
    levers      ESSA-only levers on ESSA's best arm at the screen budget (reported, never chosen)
    scaling     tools/study/study_scaling.py: both best arms on 1 and 2 workers (scaling.json)
    projection  tools/study/project_workers.py: time to the target on N workers (projection.json/.png)
    report      tools/study/study_report.py: the tables and plots the docs cite, into --results

STUDY.yaml:
    config: configs/demo.yaml
    common: [task.validation_size=200, ...]   # every stage, both methods
    sft: [sft.steps=15]                       # the shared start
    screen: {budget_s: 300, seed: 0}          # each arm: this many seconds of training
    final: {budget_s: 1800, seeds: [0, 1, 2]} # the best arm of each method
    grpo_steps_cap: 1000                      # GRPO's baseline.steps (its budget ends it earlier)
    essa_arms:  [{name: cma-s0.3, overrides: [...]}, ...]
    grpo_arms:  [{name: lr1e-4-g8, overrides: [...]}, ...]
    levers:     [{name: int8, overrides: [model.quantize=int8]}, ...]   # optional

Layout: <out>/sft, <out>/screen/<method>/<arm>, <out>/levers/essa/<lever>, <out>/final/<method>/seed<k>,
<out>/scaling/..., each a normal run dir; <out>/fair_summary.json holds every arm's validation score,
the choice, the finals (seed by seed, alternating methods) and the targets.

Resuming. The study takes longer than one batch job or one session, and <out> is scratch, so every
finished run is recorded in fair_summary.json with its inputs (method, config, overrides, seed,
budget, ranks) and the SFT start it ran from, and the summary is also written to --results after
each run. A later invocation, from the same <out> or from a fresh checkout holding only the
committed --results, skips every run recorded with the same inputs on the same SFT start (rebuilt
if <out> is empty). The start is known by its recipe and its held-out score: the SFT is
deterministic on one machine, but another VM's float kernels change its last bits, so each run
also records the adapter's own hash. A summary from another SFT start is not used.
Of the unrecorded runs, one whose adapter exists is read back, an interrupted ES run resumes (its
budget counts the generations already logged), and a GRPO run starts again. --fresh ignores the
records. ES arms run on --ranks MPI ranks; GRPO arms in one process with --ranks torch threads, so
both use the same cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from study_results import curves, reaching, records, summarise_finals

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
METHODS = ("essa", "grpo")
STAGES = ("screen", "final", "levers", "scaling", "projection", "report")
SCRIPTS = {"scaling": "study_scaling.py", "projection": "project_workers.py", "report": "study_report.py"}


def run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def method_command(method: str, spec: dict, sft: Path, overrides: list[str], seed: int, budget: float,
                   run_dir: Path, ranks: int) -> list[str]:
    essa = str(BIN / "essa-hpc")
    common = [*spec.get("common", []), f"space.init={sft}", f"run.seed={seed}", "run.progress=false", *overrides]
    if method == "essa":
        mpi = [str(BIN / "mpiexec"), "-n", str(ranks)] if ranks > 1 else []
        return [*mpi, essa, "train", spec["config"], *common, f"run.budget_s={budget}", "run.generations=100000",
                "--run-dir", str(run_dir)]
    # A baseline's prompt set is built up front for baseline.steps, so the cap is the spec's, not "unlimited".
    return [essa, "baseline", method, spec["config"], *common, f"run.threads={ranks}", f"baseline.budget_s={budget}",
            f"baseline.steps={spec.get('grpo_steps_cap', 1000)}", "--run-dir", str(run_dir)]


def ensure(method: str, spec: dict, sft: Path, overrides: list[str], seed: int, budget: float, run_dir: Path,
           ranks: int) -> dict:
    if not (run_dir / "adapter").is_dir():
        if run_dir.exists() and not resumable(method, run_dir):
            shutil.rmtree(run_dir)  # start the arm again
        code = run(method_command(method, spec, sft, overrides, seed, budget, run_dir, ranks))
        if code != 0:
            raise SystemExit(f"study_fair: {method} run {run_dir} failed with exit code {code}")
    return curves(run_dir)


def resumable(method: str, run_dir: Path) -> bool:
    """Whether an unfinished run can go on: TRL runs do not resume, and an ES run stopped before its first
    checkpoint has nothing to resume from (train refuses a run dir with metrics but no checkpoint)."""
    return method == "essa" and any((run_dir / "checkpoints").glob("*.h5"))


def run_inputs(method: str, spec: dict, overrides: list[str], seed: int, budget: float, ranks: int) -> dict:
    """Everything that decides a run's result besides the SFT start: a recorded run with the same inputs
    is not run again."""
    return {"method": method, "config": spec["config"], "common": spec.get("common", []),
            "overrides": list(overrides), "seed": seed, "budget_s": budget, "ranks": ranks}


def recorded(entry: dict | None, inputs: dict) -> bool:
    return bool(entry) and entry.get("inputs") == inputs


def sft_start(sft: Path, spec: dict) -> dict:
    """Which SFT start the records belong to: its recipe and its held-out score ("id"), and the adapter's
    bytes ("adapter", kept with every run for the record). The bytes do not decide: the same recipe gives
    the same bytes on one machine but not on another VM of the same CPU model (its float kernels differ in
    the last bits), while the held-out score stays the same."""
    recipe = {"config": spec["config"], "common": spec.get("common", []), "sft": spec.get("sft", []),
              "heldout": json.loads((sft / "sft_summary.json").read_text())["heldout_reward"]}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return {"id": digest, "adapter": hashlib.sha256((sft / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]}


def carried_summary(out: Path, results: Path, start_id: str) -> dict | None:
    """The study's record from <out>, else from --results (a fresh checkout), if it was made from this SFT
    start; the scaling measurement travels with it."""
    for path in (out / "fair_summary.json", results / "fair_summary.json"):
        if not path.is_file():
            continue
        summary = json.loads(path.read_text())
        if summary.get("sft") != start_id:
            print(f"study_fair: not resuming from {path}: it was made from another SFT start "
                  f"({summary.get('sft')}, this one is {start_id})", flush=True)
            continue
        scaling = results / "fair_scaling.json"
        if not (out / "scaling.json").is_file() and scaling.is_file() \
                and json.loads(scaling.read_text()).get("sft") == start_id:
            shutil.copy(scaling, out / "scaling.json")
        return summary
    return None


def write(out: Path, summary: dict, results: Path) -> None:
    """After every run, into <out> and --results: the record that lets a fresh checkout resume."""
    text = json.dumps(summary, indent=1)
    (out / "fair_summary.json").write_text(text)
    results.mkdir(parents=True, exist_ok=True)
    (results / "fair_summary.json").write_text(text)


def screen_stage(spec, arms, sft, out, ranks, summary, save) -> None:
    screen = spec["screen"]
    for method in METHODS:
        for arm in arms[method]:
            want = run_inputs(method, spec, arm["overrides"], screen["seed"], screen["budget_s"], ranks)
            if recorded(summary["screen"][method].get(arm["name"]), want):
                continue
            run_dir = out / "screen" / method / arm["name"]
            got = ensure(method, spec, sft, arm["overrides"], screen["seed"], screen["budget_s"], run_dir, ranks)
            summary["screen"][method][arm["name"]] = {"inputs": want, "sft_adapter": summary["sft_adapter"],
                                                      "overrides": arm["overrides"],
                                                      "validation_final": got["validation"][-1][2],
                                                      "validation_curve": got["validation"],
                                                      **(rollout_speed(run_dir) if method == "essa" else {})}
            save()
        scores = {name: arm for name, arm in summary["screen"][method].items()
                  if name in {a["name"] for a in arms[method]}}  # arms dropped from the spec do not count
        summary["best"][method] = max(scores, key=lambda name: scores[name]["validation_final"])
    save()


def levers_stage(spec, arms, sft, out, ranks, summary, save) -> None:
    """ESSA-only levers on top of ESSA's best arm, at the screen budget: measured and reported, never used
    to choose the final arm (GRPO gets no such extra arms)."""
    best = next(a for a in arms["essa"] if a["name"] == summary["best"]["essa"])
    screen = spec["screen"]
    for lever in spec.get("levers", []):
        overrides = [*best["overrides"], *lever["overrides"]]
        want = run_inputs("essa", spec, overrides, screen["seed"], screen["budget_s"], ranks)
        if recorded(summary["levers"].get(lever["name"]), want):
            continue
        run_dir = out / "levers" / "essa" / lever["name"]
        got = ensure("essa", spec, sft, overrides, screen["seed"], screen["budget_s"], run_dir, ranks)
        summary["levers"][lever["name"]] = {"inputs": want, "sft_adapter": summary["sft_adapter"], "on": best["name"],
                                            "overrides": lever["overrides"],
                                            "validation_final": got["validation"][-1][2],
                                            "validation_curve": got["validation"], **rollout_speed(run_dir)}
        save()


def rollout_speed(run_dir: Path) -> dict:
    """ES samples evaluated per second of evaluation (generation + reward), over the whole run."""
    recs = [r for r in records(run_dir) if "eval_s" in r]
    return {"samples_per_eval_s": round(sum(r["samples"] for r in recs) / sum(r["eval_s"] for r in recs), 2)}


def final_stage(spec, arms, sft, out, ranks, summary, save) -> None:
    """Seed by seed, alternating the methods, so a study cut short has both at the same number of seeds;
    the summaries and the targets are recomputed after every run."""
    final = spec["final"]
    best = {m: next(a for a in arms[m] if a["name"] == summary["best"][m]) for m in METHODS}
    for method in METHODS:
        if summary["final"].get(method, {}).get("arm") != best[method]["name"]:
            summary["final"][method] = {"arm": best[method]["name"], "runs": {}}
    for seed in final["seeds"]:
        for method in METHODS:
            entry = summary["final"][method]
            want = run_inputs(method, spec, best[method]["overrides"], seed, final["budget_s"], ranks)
            if recorded(entry["runs"].get(f"seed{seed}"), want):
                continue
            got = ensure(method, spec, sft, best[method]["overrides"], seed, final["budget_s"],
                         out / "final" / method / f"seed{seed}", ranks)
            entry["runs"][f"seed{seed}"] = {**got, "inputs": want, "sft_adapter": summary["sft_adapter"]}
            summarise(summary, final["seeds"])
            save()
    summarise(summary, final["seeds"])
    save()


def summarise(summary: dict, seeds: list[int]) -> None:
    runs = {m: [summary["final"][m]["runs"][f"seed{s}"] for s in seeds if f"seed{s}" in summary["final"][m]["runs"]]
            for m in METHODS}
    for m in METHODS:
        summary["final"][m] = {"arm": summary["final"][m]["arm"], **(summarise_finals(runs[m]) if runs[m] else {}),
                               "runs": summary["final"][m]["runs"]}
    if all(runs.values()):
        summary["target"] = reaching(runs, summary["final"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study YAML")
    ap.add_argument("--out", default="runs/fair")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks per ES run; torch threads per GRPO run")
    ap.add_argument("--stage", choices=STAGES, default=STAGES[-1], help="stop after this stage")
    ap.add_argument("--results", default="bench/results",
                    help="where the summary is kept after every run and the report stage writes the cited files")
    ap.add_argument("--fresh", action="store_true", help="ignore the recorded runs and run every stage again")
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
    results, start = ROOT / args.results, sft_start(sft, spec)
    summary = (None if args.fresh else carried_summary(out, results, start["id"])) or {
        "screen": {m: {} for m in METHODS}, "best": {}, "levers": {}, "final": {}}
    if summary.get("sft_adapter", start["adapter"]) != start["adapter"]:
        print(f"study_fair: this SFT start's bytes ({start['adapter']}) differ from the last run's "
              f"({summary['sft_adapter']}); same recipe and held-out score, so the records stand", flush=True)
    summary.update(study=args.study, ranks=args.ranks, sft=start["id"], sft_adapter=start["adapter"])
    if args.fresh:
        (out / "scaling.json").unlink(missing_ok=True)
    stages = {"screen": screen_stage, "levers": levers_stage, "final": final_stage}
    for name in STAGES[:STAGES.index(args.stage) + 1]:
        if name in stages:
            stages[name](spec, arms, sft, out, args.ranks, summary, lambda: write(out, summary, results))
        elif run([sys.executable, str(ROOT / "tools" / "study" / SCRIPTS[name]), *script_args(name, args)]) != 0:
            return 1
    print_summary(summary)
    return 0


def script_args(name: str, args) -> list[str]:
    return {"scaling": [args.study, "--out", args.out], "projection": ["--out", args.out],
            "report": ["--out", args.out, "--results", args.results]}[name]


def print_summary(summary: dict) -> None:
    for method in METHODS:
        line = "  ".join(f"{n}={v['validation_final']:.3f}" for n, v in summary["screen"][method].items())
        print(f"{method}: best {summary['best'][method]}; validation at the screen budget: {line}")
        if "final_mean" in summary["final"].get(method, {}):
            f = summary["final"][method]
            print(f"{method} final ({f['arm']}): held-out {f['final_mean']:.3f} +/- {f['final_sd']:.3f}, "
                  f"peak {f['peak_mean']:.3f}, gain over the start {f['gain_mean']:+.3f}")


if __name__ == "__main__":
    sys.exit(main())
