#!/usr/bin/env python3
"""Table and plot of a finished learning study (tools/study/study_learning.py), for docs/LEARNING.md.

    python tools/study/report_learning.py runs/learning [--arm NAME] [--rank-check runs/learning/rank1-check]
                                    [--plot docs/learning_curve.png]

Prints a markdown table (per seed: held-out start, end, peak, change, ES wall time) with
the mean and spread over seeds, and draws held-out accuracy against generation and
against wall time. With --rank-check, compares a run made with another number of ranks
to seed 0 of the arm, generation by generation (adapter hash and held-out accuracy).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from study_learning import read_records  # noqa: E402  (tools/ is on sys.path when run as a script)


def seed_row(name: str, run: dict) -> str:
    peak = max(acc for _, acc in run["curve"])
    delta = 100 * (run["end"] - run["start"])
    status = "" if run["finished"] else f" (stopped at generation {run['generations']})"
    return (f"| {name}{status} | {run['start']:.3f} | {run['end']:.3f} | {peak:.3f} | {delta:+.1f} | "
            f"{run['es_seconds'] / 60:.1f} min |")


def table(arm: dict) -> str:
    seeds = {k: v for k, v in arm.items() if k.startswith("seed") and v.get("curve")}
    lines = ["| seed | held-out start | end | peak | change (points) | ES wall time |", "|---|---|---|---|---|---|"]
    lines += [seed_row(k, v) for k, v in sorted(seeds.items())]
    deltas = [100 * (v["end"] - v["start"]) for v in seeds.values()]
    if len(deltas) > 1:
        lines.append(f"| mean ± sd over {len(deltas)} | | | | {statistics.mean(deltas):+.1f} ± "
                     f"{statistics.stdev(deltas):.1f} (min {min(deltas):+.1f}, max {max(deltas):+.1f}) | |")
    return "\n".join(lines)


def plot(arm: dict, name: str, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for key, run in sorted(arm.items()):
        if not key.startswith("seed") or not run.get("curve"):
            continue
        axes[0].plot(*zip(*run["curve"]), marker=".", label=key)
        axes[1].plot([t / 60 for t, _ in run["wall_curve"]], [a for _, a in run["wall_curve"]], marker=".", label=key)
    axes[0].set_xlabel("generation")
    axes[1].set_xlabel("wall time, minutes (2 ranks x 1 thread, incl. held-out eval)")
    axes[0].set_ylabel("held-out exact match (500 problems)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"ESSA from the SFT start: {name}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def rank_check(reference: Path, other: Path) -> str:
    ref = {r["generation"]: r for r in read_records(reference)}
    rows = read_records(other)
    same = [r["generation"] for r in rows if ref.get(r["generation"], {}).get("adapter_sha256") == r["adapter_sha256"]]
    held = [(r["generation"], r["heldout_reward"], ref[r["generation"]].get("heldout_reward"))
            for r in rows if "heldout_reward" in r and r["generation"] in ref]
    verdict = "identical" if len(same) == len(rows) else f"DIFFERENT at {sorted(set(r['generation'] for r in rows) - set(same))}"
    return (f"{other} vs {reference}: adapter hash {verdict} for generations {rows[0]['generation']}-"
            f"{rows[-1]['generation']} ({len(same)}/{len(rows)} equal); held-out (generation, this run, "
            f"reference): {held}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", type=Path, help="output dir of tools/study/study_learning.py (holds summary.json)")
    ap.add_argument("--arm", help="arm name (default: the first in summary.json)")
    ap.add_argument("--rank-check", type=Path, help="a run dir to compare with seed 0 of the arm")
    ap.add_argument("--plot", type=Path, default=Path("docs/learning_curve.png"))
    args = ap.parse_args()
    summary = json.loads((args.study / "summary.json").read_text())
    name = args.arm or next(iter(summary["arms"]))
    arm = summary["arms"][name]
    print(f"SFT start: {summary['sft']['steps']} steps, held-out {summary['sft']['heldout_reward']:.3f}")
    print(table(arm))
    plot(arm, name, args.plot)
    if args.rank_check:
        print(rank_check(args.study / name / "seed0", args.rank_check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
