#!/usr/bin/env python3
"""The signal study's tables and goals, from its record alone (bench/results/signal_study.json), as
Markdown for BENCHMARKS.md and docs/LEARNING.md:

    python tools/study/signal_study_report.py [--results bench/results]   # writes signal_study.md

- the screen: every arm's validation score per round, its mean, and the choice;
- per start, the finals: final, peak and selected held-out (mean ± sd over seeds), the gain, samples
  and training seconds to the start's target per seed, and the machine of each run (boot, calibration);
- per start, the pairs: ESSA seed k against GRPO seed k, from one boot (the other methods' runs are
  compared by machine kind: the finals table gives each run's CPU and calibration timing);
- the goals, each met or missed.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def screen_table(record: dict) -> list[str]:
    lines = ["| method | arm | validation by round | mean | chosen |", "|---|---|---|---|---|"]
    for method, entry in record["screen"].items():
        if not isinstance(entry, dict):
            continue
        for arm, scores in (entry.get("scores") or partial_scores(entry)).items():
            mark = "**yes**" if arm == entry.get("chosen") else ""
            lines.append(f"| {method} | {arm} | {' / '.join(f'{s:.3f}' for s in scores)} | "
                         f"{statistics.mean(scores):.3f} | {mark} |")
    return lines


def partial_scores(entry: dict) -> dict[str, list[float]]:
    """A screen cut short: each arm's recorded validation scores by round, from its run keys (r<k>/<arm>)."""
    out: dict[str, list[float]] = {}
    for key in sorted(entry.get("runs", {})):
        out.setdefault(key.split("/", 1)[1], []).append(entry["runs"][key]["validation_final"])
    return out


def _pm(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.3f} ± {sd:.3f}"


def _reached(points: list[dict | None], key: str, fmt: str) -> str:
    """Per seed, where the run first reached the target, or "never"."""
    return " / ".join("never" if p is None else fmt.format(p[key]) for p in points)


def finals_table(start: str, entry: dict, starts: dict) -> list[str]:
    info = starts[start]
    lines = [f"Start `{start}` ({' '.join(info['recipe'])}): held-out {info['heldout']:.3f}, "
             f"target {info['target']:.3f}.", "",
             "| method | arm | seeds | final | peak | selected | gain | samples to target | seconds to target | "
             "calibration s (CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, s in entry.items():
        if "final" not in s:
            continue
        reach = s["to_target"]
        lines.append(f"| {method} | {s['arm']} | {len(s['final'])} | {_pm(s['final'])} | {_pm(s['peak'])} | "
                     f"{_pm(s['selected']) if s.get('selected') else '-'} | {s['gain_mean']:+.3f} | "
                     f"{_reached(reach, 'samples', '{:d}')} | {_reached(reach, 'train_s', '{:.0f}')} | "
                     f"{machines(s['machine'])} |")
    return lines


def machines(runs: list[dict]) -> str:
    """Each seed's calibration timing, and the CPU model(s) the seeds ran on."""
    cpus = sorted({m["cpu"] for m in runs})
    return " / ".join(f"{m['calibration_s']:.2f}" for m in runs) + f" ({'; '.join(cpus)})"


def pairs_table(entry: dict) -> list[str]:
    methods = [m for m in ("essa", "grpo") if "final" in entry.get(m, {})]
    if "essa" not in methods:
        return []
    lines = ["| seed | boot | " + " | ".join(f"{m} final (calibration s)" for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for k in range(len(entry["essa"]["final"])):
        boots = {entry[m]["machine"][k]["boot_id"] for m in methods if k < len(entry[m]["machine"])}
        cells = [f"{entry[m]['final'][k]:.3f} ({entry[m]['machine'][k]['calibration_s']:.2f})"
                 if k < len(entry[m]["final"]) else "-" for m in methods]
        boot = next(iter(boots))[:8] if len(boots) == 1 else "SPLIT"
        lines.append(f"| {k} | {boot} | " + " | ".join(cells) + " |")
    return lines


def goals(record: dict) -> list[str]:
    """The study issue's goals, each met or missed (None where the runs are not there yet)."""
    out = []
    essa15 = record["results"].get("sft15", {}).get("essa", {})
    if "gain" in essa15:
        ok = essa15["gain_mean"] >= 0.10 and all(g > 0 for g in essa15["gain"])
        out.append(f"- From the 15-step start, ESSA gains at least +10 points, every seed positive: "
                   f"{'met' if ok else 'missed'} ({', '.join(f'{g:+.3f}' for g in essa15['gain'])}).")
        samples = [None if r is None else r["samples"] for r in essa15["to_target"]]
        ok = all(s is not None and s <= 8000 for s in samples)
        out.append(f"- ESSA reaches 0.70 within 8,000 samples: {'met' if ok else 'missed'} ({samples}).")
    strong = record["results"].get("strong", {})
    if "final" in strong.get("essa", {}) and "final" in strong.get("grpo", {}):
        gap = strong["grpo"]["final_mean"] - strong["essa"]["final_mean"]
        out.append(f"- From the strong start, ESSA's final within 3 points of GRPO's: "
                   f"{'met' if gap <= 0.03 else 'missed'} (GRPO − ESSA = {gap:+.3f}).")
    return out


def report(record: dict) -> str:
    parts = ["## Screen", "", *screen_table(record), ""]
    for start, entry in record["results"].items():
        parts += [f"## Finals from `{start}`", "", *finals_table(start, entry, record["starts"]), "",
                  *pairs_table(entry), ""]
    parts += ["## Goals", "", *(goals(record) or ["- no finals yet"]), ""]
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="bench/results")
    args = ap.parse_args()
    results = ROOT / args.results
    text = report(json.loads((results / "signal_study.json").read_text()))
    (results / "signal_study.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
