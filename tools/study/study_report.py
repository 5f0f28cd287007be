#!/usr/bin/env python3
"""The fair study's tables and plots, from its result files (the last stage of tools/study/study_fair.py).

    python tools/study/study_report.py [--out runs/fair] [--results bench/results]

Reads <out>/fair_summary.json, scaling.json and projection.json, and writes into --results the files
BENCHMARKS.md and docs/LEARNING.md cite: fair_study.md (every table), fair_summary.json,
fair_scaling.json, fair_projection.json, fair_projection.png and fair_curves.png (held-out accuracy of
the finals against training minutes). A stage whose file is missing is left out of the tables.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from study_results import selected_heldout

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("essa", "grpo")


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def pm(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {sd:.3f}"


def screen_table(summary: dict) -> list[str]:
    lines = ["| method | arm | overrides | steps | samples | validation at the screen budget |",
             "|---|---|---|---|---|---|"]
    for m in METHODS:
        for name, arm in summary["screen"][m].items():
            mark = " **(best)**" if summary["best"].get(m) == name else ""
            _, samples, score, step = arm["validation_curve"][-1]
            lines.append(f"| {m.upper()} | {name}{mark} | `{' '.join(arm['overrides'])}` | {step} | {samples:,} | "
                         f"{score:.3f} |")
    start = next(iter(summary["screen"]["essa"].values()))["validation_curve"][0][2]
    return lines + ["", f"Validation of the shared SFT start: {start:.3f}."]


def levers_table(summary: dict) -> list[str]:
    if not summary.get("levers"):
        return []
    best = summary["best"]["essa"]
    base = summary["screen"]["essa"][best]
    lines = ["| lever (on ESSA's best arm) | validation | ES samples per evaluation second |", "|---|---|---|"]
    if "samples_per_eval_s" in base:
        lines.append(f"| none ({best}) | {base['validation_final']:.3f} | {base['samples_per_eval_s']} |")
    for name, lever in summary["levers"].items():
        lines.append(f"| {name} (`{' '.join(lever['overrides'])}`) | {lever['validation_final']:.3f} | "
                     f"{lever['samples_per_eval_s']} |")
    return lines


def finals_table(summary: dict) -> list[str]:
    lines = ["| method | arm | seeds | start | final | peak | selected on validation | gain (final - start) | "
             "training min | samples |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        f = summary["final"].get(m)
        if not f or "final" not in f:  # no seed of this method has finished yet
            continue
        n = len(f["final"])
        selected = pm(f["selected_mean"], f["selected_sd"]) if "selected" in f else "-"
        lines.append(f"| {m.upper()} | {f['arm']} | {n} | {sum(f['start']) / n:.3f} | "
                     f"{pm(f['final_mean'], f['final_sd'])} | {pm(f['peak_mean'], f['peak_sd'])} | {selected} | "
                     f"{f['gain_mean']:+.3f} ({', '.join(f'{g:+.3f}' for g in f['gain'])}) | "
                     f"{sum(f['train_s']) / n / 60:.1f} | {sum(f['samples']) / n:,.0f} |")
    return lines


def seeds_table(summary: dict) -> list[str]:
    """Each final run on its own, with its pace: the finals may run on different VMs (one session each),
    and under a wall-time budget a slower VM means fewer steps."""
    lines = ["| method | seed | steps | training min | s/step | start | final | peak | selected on validation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        for seed, run in summary["final"].get(m, {}).get("runs", {}).items():
            (_, _, start, _), (t_end, _, final, steps) = run["heldout"][0], run["heldout"][-1]
            lines.append(f"| {m.upper()} | {seed.removeprefix('seed')} | {steps} | {t_end / 60:.1f} | "
                         f"{t_end / max(steps, 1):.1f} | {start:.3f} | {final:.3f} | "
                         f"{max(h[2] for h in run['heldout']):.3f} | {selected_heldout(run):.3f} |")
    return lines


def reaching_table(summary: dict) -> list[str]:
    t = summary.get("target")
    if not t:
        return []
    lines = ["| method | reaches | training min | samples | steps |", "|---|---|---|---|---|"]
    for m in METHODS:
        other = next(o for o in METHODS if o != m)
        for label, hit in ((f"{other.upper()}'s final mean {summary['final'][other]['final_mean']:.3f}",
                            t.get(f"{m}_to_{other}_final")), (f"the common target {t['heldout']:.3f}", t.get(m))):
            row = (f"{hit['train_s'] / 60:.1f} | {hit['samples']:,} | {hit['steps']}" if hit
                   else "not reached | - | -")
            lines.append(f"| {m.upper()} | {label} | {row} |")
    return lines


def scaling_table(scaling: dict) -> list[str]:
    lines = ["| method | 1 worker, s/step | 2 workers, s/step | speed-up | parallel efficiency |",
             "|---|---|---|---|---|"]
    for m in METHODS:
        s = scaling[m]
        lines.append(f"| {m.upper()} ({s['arm']}) | {s['n1']['step_s']:.2f} | {s['n2']['step_s']:.2f} | "
                     f"{s['speedup_1_to_2']:.2f} | {s['efficiency_1_to_2']:.2f} |")
    g = scaling["grpo"]
    return lines + ["", f"GRPO, 1 process with 2 threads (the setting its arms trained with): "
                        f"{g['n1_2threads']['step_s']:.2f} s/step. One GRPO step on one worker: "
                        f"{g['n1']['generate_s']:.2f} s generating, {g['n1']['backward_s']:.2f} s backward and "
                        f"optimizer; its LoRA gradient is {g['gradient_bytes']:,} bytes. ESSA sends "
                        f"{scaling['essa']['n2']['bytes_sent']:.0f} bytes per generation."]


def projection_table(projection: dict) -> list[str]:
    rows = projection["rows"]
    keys = list(next(iter(rows.values())))
    lines = ["| N | " + " | ".join(k.replace("_", ", ") + ", min" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for n, row in rows.items():
        lines.append(f"| {n} | " + " | ".join(f"{row[k]['time_s'] / 60:.2f}" for k in keys) + " |")
    a = projection["assumptions"]
    check = "; ".join(f"{m.upper()} predicted {c['predicted_step_s']:.2f} s/step, measured "
                      f"{c['measured_step_s']:.2f}, error {c['error']:+.1%}" for m, c in projection["check_n2"].items())
    return lines + ["", f"Assumptions: {a['bandwidth'] / 1e9:g} GB/s, {a['latency'] * 1e6:g} µs, e = {a['exponent']}. "
                        f"Target: held-out {projection['inputs']['target']:.3f}. Check at N = 2: {check}."]


def curves_plot(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m, colour in (("essa", "C0"), ("grpo", "C3")):
        for i, run in enumerate(summary["final"].get(m, {}).get("runs", {}).values()):
            xs, ys = [p[0] / 60 for p in run["heldout"]], [p[2] for p in run["heldout"]]
            ax.plot(xs, ys, color=colour, alpha=0.7, label=f"{m.upper()} ({summary['final'][m]['arm']})" if i == 0
                    else None)
    ax.set(xlabel="training minutes (evaluations excluded)", ylabel="held-out accuracy",
           title="Finals: best arm of each method, one line per seed")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/fair")
    ap.add_argument("--results", default="bench/results")
    args = ap.parse_args()
    out, results = ROOT / args.out, ROOT / args.results
    results.mkdir(parents=True, exist_ok=True)
    summary = load(out / "fair_summary.json")
    if summary is None:
        raise SystemExit(f"study_report: no {out / 'fair_summary.json'}; run tools/study/study_fair.py first")
    scaling, projection = load(out / "scaling.json"), load(out / "projection.json")
    sections = [("Screen: every arm, scored on validation", screen_table(summary)),
                ("ESSA levers", levers_table(summary)),
                ("Finals: held-out accuracy", finals_table(summary) if summary["final"] else []),
                ("Finals, seed by seed", seeds_table(summary) if summary["final"] else []),
                ("Reaching the other method's accuracy (mean curve over seeds)", reaching_table(summary)),
                ("Parallel scaling, 1 to 2 workers", scaling_table(scaling) if scaling else []),
                ("Projection to N workers", projection_table(projection) if projection else [])]
    text = ["# ESSA against GRPO, equal tuning effort", "",
            f"Written by tools/study/study_report.py from {args.out} ({summary['study']}).", ""]
    for title, lines in sections:
        if lines:
            text += [f"## {title}", "", *lines, ""]
    (results / "fair_study.md").write_text("\n".join(text))
    for name in ("fair_summary.json", "scaling.json", "projection.json", "projection.png"):
        if (out / name).is_file():
            shutil.copy(out / name, results / (name if name.startswith("fair_") else f"fair_{name}"))
    if summary["final"]:
        curves_plot(summary, results / "fair_curves.png")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
