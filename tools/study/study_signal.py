#!/usr/bin/env python3
"""ESSA against GRPO from two SFT starts: the arms screened by successive halving on the validation
set, the chosen arm of each method then run with paired seeds (ESSA seed k and GRPO seed k back to
back, in one boot of one machine). The held-out set is scored for the reported numbers only.

    python tools/study/study_signal.py configs/studies/signal_study.yaml [--out runs/signal_study] [--ranks 2]
                                        [--stage screen|final] [--results bench/results]

Stages, in order (--stage stops after one):
    screen  on the screen's start, every arm of both methods by successive halving (halving.py):
            round r runs the surviving arms for first_budget_s * 2^r seconds with seed r; the better half
            by mean validation score over their rounds goes on; the same total budget for both methods
    final   per start, per seed: the chosen ESSA arm, then the chosen GRPO arm, recorded with the
            machine (CPU, boot id, a calibration timing); a pair whose runs do not share a boot is
            run again. Any other method (TR-DPO, ESO) runs after the pair, recorded with its machine
            but not bound to the pair's boot. The other start reuses the arms chosen on the screen's start.

--methods essa,grpo limits both stages to those methods (the others' records are kept), so the pair's
finals need not wait for the other methods' screens.

STUDY.yaml:
    config: configs/demo.yaml
    common: [task.validation_size=500, ...]          # every run, both methods
    starts: {sft15: {sft: [sft.steps=15], target: 0.70},          # the held-out target, absolute
             strong: {sft: [sft.steps=60], target_gain: 0.05}}    # or the start's score + a gain
    screen: {start: sft15, first_budget_s: 150}
    final: {budget_s: 1800, seeds: [0, 1, 2]}
    grpo_steps_cap: 1000                                           # every baseline's baseline.steps
    signal_tables: [bench/results/signal_demo_grid8.json]        # copied into the record
    methods: {essa: [sft15, strong], grpo: [sft15, strong]}       # method -> its starts (this default)
    essa_arms: [{name: ..., overrides: [...]}, ...]                # every method: as many arms
    grpo_arms: [...]

Layout: <out>/<start>/sft, <out>/screen/<method>/r<k>/<arm>, <out>/<start>/final/<method>/seed<k>.
The record is <results>/signal_study.json, written after every run (its tables and goals:
<results>/signal_study.md, signal_study_report.py); a later invocation, from the same
<out> or from a fresh checkout holding only the record, skips every run recorded with the same inputs
from a start with the same recipe and held-out score (study_fair.py explains why not the same bytes).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import halving
import signal_study_report
import yaml
from study_fair import BIN, ROOT, ensure, recorded, run, run_inputs, sft_start
from study_results import first_reaching, summarise_finals

from essa_hpc.launch.signal_cmd import machine

CALIBRATION = ("import time, torch; torch.set_num_threads(1); torch.manual_seed(0); a = torch.randn(256, 256); "
               "t = time.perf_counter(); [a @ a for _ in range(400)]; print(time.perf_counter() - t)")
STAGES = ("screen", "final")
PAIRED = ("essa", "grpo")  # per seed, these runs share one boot; the report compares them pair by pair


def this_machine() -> dict:
    """The machine a run is about to use, with a fixed single-thread matmul timing: two VMs of one CPU model
    ran about 1.85x apart, and this number shows it without a run's own noise."""
    timing = subprocess.run([sys.executable, "-c", CALIBRATION], capture_output=True, text=True, check=True)
    return {**machine(), "calibration_s": round(float(timing.stdout.strip()), 3)}


def methods(spec: dict) -> dict[str, list[str]]:
    """Each method and the starts its finals run from; ESSA first, so a pair's ES run leads."""
    return spec.get("methods") or {m: list(spec["starts"]) for m in ("essa", "grpo")}


def check_spec(spec: dict) -> None:
    counts = {m: len(spec.get(f"{m}_arms") or []) for m in methods(spec)}
    if len(set(counts.values())) != 1 or not all(counts.values()):
        raise SystemExit("study_signal: unequal tuning budget: "
                         + ", ".join(f"{n} {m} arms" for m, n in counts.items()))
    for m, names in methods(spec).items():
        if unknown := [n for n in names if n not in spec["starts"]]:
            raise SystemExit(f"study_signal: method {m} names unknown starts: {', '.join(unknown)}")
    if spec["screen"]["start"] not in spec["starts"]:
        raise SystemExit(f"study_signal: screen.start={spec['screen']['start']} is not one of the starts "
                         f"({', '.join(spec['starts'])})")
    for name, start in spec["starts"].items():
        if ("target" in start) == ("target_gain" in start):
            raise SystemExit(f"study_signal: start {name} needs exactly one of target and target_gain")


def make_start(spec: dict, name: str, out: Path) -> dict:
    """The start's SFT adapter (made once), its recipe id and held-out score."""
    sft = out / name / "sft"
    if not (sft / "adapter_config.json").is_file():
        recipe = spec["starts"][name]["sft"]
        if run([str(BIN / "essa-hpc"), "sft", spec["config"], *spec.get("common", []), *recipe,
                "--out", str(sft)]) != 0:
            raise SystemExit(f"study_signal: the SFT of start {name} failed")
    heldout = json.loads((sft / "sft_summary.json").read_text())["heldout_reward"]
    ident = sft_start(sft, {**spec, "sft": spec["starts"][name]["sft"]})
    start = spec["starts"][name]
    target = start["target"] if "target" in start else round(heldout + start["target_gain"], 6)
    return {"dir": sft, "recipe": start["sft"], "heldout": heldout, "target": target, **ident}


def screen_stage(spec, arms, starts, out, ranks, record, save) -> None:
    screen, start = spec["screen"], starts[spec["screen"]["start"]]
    names = {m: [a["name"] for a in arms[m]] for m in arms}
    for method in arms:
        entry = record["screen"].setdefault(method, {"runs": {}})
        for r in range(halving.rounds_for(len(names[method]))):
            scores = screen_scores(entry, names[method], start["id"])
            for name in halving.survivors(names[method], scores, r):
                overrides = next(a["overrides"] for a in arms[method] if a["name"] == name)
                seconds = halving.budget(screen["first_budget_s"], r)
                want = {**run_inputs(method, spec, overrides, r, seconds, ranks), "start": start["id"]}
                key = f"r{r}/{name}"
                if recorded(entry["runs"].get(key), want):
                    continue
                got = ensure(method, spec, start["dir"], overrides, r, seconds, out / "screen" / method / key, ranks)
                entry["runs"][key] = {"inputs": want, "validation_final": got["validation"][-1][2],
                                      "validation_curve": got["validation"], "machine": machine()}
                save()
        entry["scores"] = screen_scores(entry, names[method], start["id"])
        entry["chosen"] = halving.winner(names[method], entry["scores"])
        save()
    record["screen"]["total_budget_s"] = halving.total_budget(len(next(iter(names.values()))),
                                                              screen["first_budget_s"])


def screen_scores(entry: dict, names: list[str], start_id: str) -> dict[str, list[float]]:
    """Each arm's validation scores by round, from the runs recorded on this start."""
    out: dict[str, list[float]] = {}
    for name in names:
        r = 0
        while (run_ := entry["runs"].get(f"r{r}/{name}")) and run_["inputs"].get("start") == start_id:
            out.setdefault(name, []).append(run_["validation_final"])
            r += 1
    return out


def final_stage(spec, arms, starts, out, ranks, record, save) -> None:
    chosen = {m: record["screen"][m]["chosen"] for m in arms}
    best = {m: next(a for a in arms[m] if a["name"] == chosen[m]) for m in arms}
    budget = spec["final"]["budget_s"]
    for name, start in starts.items():
        entry = record["results"].setdefault(name, {})
        here = [m for m, names in methods(spec).items() if name in names]
        for seed in spec["final"]["seeds"]:
            boot = machine()["boot_id"]
            wants = {m: {**run_inputs(m, spec, best[m]["overrides"], seed, budget, ranks), "start": start["id"]}
                     for m in here}
            runs = {m: entry.get(m, {}).get("runs", {}).get(f"seed{seed}") for m in here}
            done = {m: recorded(runs[m], wants[m]) for m in here}
            paired = [m for m in here if m in PAIRED]
            pair_ok = all(done[m] for m in paired) and len({runs[m]["machine"]["boot_id"] for m in paired}) <= 1
            for method in here:  # a pair's runs share one boot: what was recorded on another runs again
                if done[method] and (method not in paired or pair_ok or runs[method]["machine"]["boot_id"] == boot):
                    continue
                run_dir = out / name / "final" / method / f"seed{seed}"
                stamp = run_dir.with_name(f"{run_dir.name}.boot_id")
                if run_dir.exists() and (not stamp.is_file() or stamp.read_text() != boot or done[method]):
                    shutil.rmtree(run_dir)  # never resume a run begun on another boot, nor redo a recorded one
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                stamp.write_text(boot)
                where = this_machine()
                got = ensure(method, spec, start["dir"], best[method]["overrides"], seed, budget, run_dir, ranks)
                got.pop("finished", None)
                slot = entry.setdefault(method, {"arm": chosen[method], "runs": {}})
                if slot["arm"] != chosen[method]:
                    slot.update(arm=chosen[method], runs={})
                slot["runs"][f"seed{seed}"] = {**got, "inputs": wants[method], "machine": where}
                summarise(entry, start, spec["final"]["seeds"])
                save()
        summarise(entry, start, spec["final"]["seeds"])
        save()


def summarise(entry: dict, start: dict, seeds: list[int]) -> None:
    """Per method of one start: the chosen arm, per-seed final/peak/selected held-out, samples and seconds
    to the target (null if never), and the machines in seed order."""
    for method, slot in entry.items():
        runs = [slot["runs"][f"seed{s}"] for s in seeds if f"seed{s}" in slot["runs"]]
        slot.update(summarise_finals(runs), target=start["target"],
                    to_target=[first_reaching(r["heldout"], start["target"]) for r in runs],
                    machine=[r["machine"] for r in runs])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study YAML")
    ap.add_argument("--out", default="runs/signal_study")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks per ES run; torch threads per GRPO run")
    ap.add_argument("--stage", choices=STAGES, default=STAGES[-1], help="stop after this stage")
    ap.add_argument("--results", default="bench/results", help="where signal_study.json is kept after every run")
    ap.add_argument("--methods", default="", help="comma-separated methods to run (default: all the study's)")
    args = ap.parse_args()
    spec = yaml.safe_load(Path(args.study).read_text())
    check_spec(spec)
    wanted = [m for m in args.methods.split(",") if m] or list(methods(spec))
    if unknown := [m for m in wanted if m not in methods(spec)]:
        raise SystemExit(f"study_signal: --methods names {', '.join(unknown)}, not among the study's methods "
                         f"({', '.join(methods(spec))})")
    spec["methods"] = {m: starts for m, starts in methods(spec).items() if m in wanted}
    arms = {m: spec[f"{m}_arms"] for m in spec["methods"]}
    out, results = ROOT / args.out, ROOT / args.results
    path = results / "signal_study.json"
    record = json.loads(path.read_text()) if path.is_file() else {"screen": {}, "results": {}}
    starts = {name: make_start(spec, name, out) for name in spec["starts"]}
    record.update(study=args.study, ranks=args.ranks,
                  starts={n: {k: v for k, v in s.items() if k != "dir"} for n, s in starts.items()},
                  signal_table=signal_table(spec.get("signal_tables", [])))

    def save() -> None:
        results.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))

    stages = {"screen": screen_stage, "final": final_stage}
    for name in STAGES[:STAGES.index(args.stage) + 1]:
        stages[name](spec, arms, starts, out, args.ranks, record, save)
    save()
    (results / "signal_study.md").write_text(signal_study_report.report(record))
    print_summary(record)
    return 0


def signal_table(paths: list[str]) -> list[dict]:
    """The one-generation alignments the ESSA arms were chosen from."""
    rows = []
    for p in paths:
        for s in json.loads((ROOT / p).read_text())["settings"]:
            rows.append({"table": p, "name": s["name"], "dim": s["dim"], "sigma": s["sigma"],
                         "cos_sft_gradient": s["cos_sft_gradient"], "cos_summed_updates": s["cos_summed_updates"]})
    return rows


def print_summary(record: dict) -> None:
    for method, scr in record["screen"].items():
        if isinstance(scr, dict) and "chosen" in scr:
            means = "  ".join(f"{n}={sum(v) / len(v):.3f}({len(v)})" for n, v in scr["scores"].items())
            print(f"{method}: chose {scr['chosen']}; mean validation (rounds): {means}")
    for start, entry in record["results"].items():
        for method, s in entry.items():
            if "final" in s:
                print(f"{start} {method} ({s['arm']}): held-out finals {s['final']}, gain {s['gain_mean']:+.3f}, "
                      f"to target {s['target']}: {[t and t['samples'] for t in s['to_target']]} samples")


if __name__ == "__main__":
    sys.exit(main())
