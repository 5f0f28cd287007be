#!/usr/bin/env python3
"""Plots from bench/results/*.json into bench/results/*.png (whatever results exist)."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def throughput(data: dict) -> None:
    rows = data["rows"]
    pops = [r["population"] for r in rows]
    width = 0.27
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (key, label) in enumerate((("plain_tok_s", "plain base generate"), ("batched_tok_s", "population-batched"),
                                      ("one_at_a_time_tok_s", "one candidate at a time"))):
        ax.bar([p + (i - 1) * width * 8 for p in pops], [r[key] for r in rows], width * 8, label=label)
    ax.set_xticks(pops)
    ax.set_xlabel("population (candidates)")
    ax.set_ylabel("generated tokens / s")
    ax.set_title(f"Rollout throughput, {data['machine']['cores']} cores, {data['model']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "rollout_throughput.png", dpi=110)


def learning(data: dict, name: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for method, runs in data["methods"].items():
        for i, run in enumerate(runs):
            kw = {"label": method if i == 0 else None, "alpha": 0.8}
            color = {"essa": "C0", "grpo": "C1"}.get(method, None)
            axes[0].plot([p[0] for p in run["wall_curve"]], [p[1] for p in run["wall_curve"]], color=color, **kw)
            axes[1].plot([p[0] for p in run["sample_curve"]], [p[1] for p in run["sample_curve"]], color=color, **kw)
    axes[0].set_xlabel("wall time (s)")
    axes[1].set_xscale("symlog", linthresh=100)  # GRPO uses ~16x fewer samples; a linear axis hides it
    axes[1].set_xlabel("completions generated (symlog)")
    for ax in axes:
        ax.set_ylabel("held-out exact match")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)


def scaling(data: dict) -> None:
    runs = data["runs"]
    names = list(runs)
    gen = [runs[n]["median"]["generate_s"] for n in names]
    other = [runs[n]["median"]["step_s"] + runs[n]["median"]["ckpt_s"] - runs[n]["median"]["generate_s"]
             for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, gen, label="generate")
    ax.bar(names, other, bottom=gen, label="everything else")
    ax.set_ylabel("seconds per generation (median)")
    ax.set_title(f"1->2 rank efficiency {data['parallel_efficiency_1_to_2_ranks']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=110)


def memory(data: dict) -> None:
    peak = {k: v for k, v in data["peak_rss_mb"].items() if not k.endswith("over_grpo")}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(peak), list(peak.values()), color=["C0", "C0", "C1"][:len(peak)])
    ax.set_ylabel("peak RSS per process (MB)")
    fig.tight_layout()
    fig.savefig(RESULTS / "memory.png", dpi=110)


def main() -> None:
    if (data := load("rollout_throughput")):
        throughput(data)
    if (data := load("scaling")):
        scaling(data)
    if (data := load("memory")):
        memory(data)
    if (data := load("essa_vs_grpo")):
        learning(data, "essa_vs_grpo")
    print(f"plots in {RESULTS}")


if __name__ == "__main__":
    main()
