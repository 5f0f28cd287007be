#!/usr/bin/env python3
"""Time to a target accuracy on N workers, projected for ESSA and GRPO from what the study measured
(a stage of tools/study/study_fair.py; it reads <out>/scaling.json and <out>/fair_summary.json).

    python tools/study/project_workers.py [--out runs/fair] [--bandwidth 12.5e9] [--latency 5e-6] [--exponent 0.5]

The model (one worker = one process; every symbol below is an input the study measured, or a
stated assumption):

  allreduce(m bytes, N) = 2 ceil(log2 N) L + 2 (N-1)/N m / BW            (0 when N = 1)
  ESSA  T(N) = ceil(P_N B / N) c_es + f_es + allreduce(r P_N / P, N)      seconds per generation
  GRPO  T(N) = ceil(M_N / N) (c_gen + c_bwd) + allreduce(g, N)            seconds per optimizer step
  time to target = S_N T(N),   samples to target = S_N x (samples per step at N)

  c_es   ESSA seconds per evaluated sample on one worker (eval_s / (P B))
  f_es   ESSA's per-generation cost outside evaluation (ask, tell, apply), one worker
  r      ESSA bytes sent per generation (the comm class's counter), at population P
  c_gen, c_bwd   GRPO generation and backward+optimizer seconds per completion, one worker
  g      GRPO's fp32 LoRA gradient, bytes (what DDP allreduces per step)
  S      steps (generations) to the target in the study's finals, at population P / batch M
  BW, L  interconnect bandwidth and latency (stated, not measured: default 100 Gb/s, 5 us)

Scenarios:
  fixed   ESSA's population P and GRPO's global batch M stay as tuned: S_N = S (strong scaling;
          beyond P B samples or M completions the extra workers idle).
  grows   P_N = P N and M_N = M N: every worker keeps one worker's work, and the steps to the target
          fall as S_N = S N^-e (e = --exponent; 0.5 is the square-root noise reduction of averaging
          N times the samples; it is an assumption, not a measurement).
Not modelled: evaluations, stragglers and failures, memory limits, the generation engine changing
with batch size. The N = 2 row is checked against the study's 2-worker measurement on this machine
(its loopback taken as --check-bandwidth / --check-latency), and the error is reported.
Writes <out>/projection.json and <out>/projection.png.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS = (1, 2, 8, 64, 512)


def allreduce_s(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    if n == 1:
        return 0.0
    return 2 * math.ceil(math.log2(n)) * latency + 2 * (n - 1) / n * nbytes / bandwidth


def essa_step_s(x: dict, n: int, population: float, net: dict) -> float:
    return (math.ceil(population * x["batch"] / n) * x["c_es"] + x["f_es"]
            + allreduce_s(x["r"] * population / x["population"], n, **net))


def grpo_step_s(x: dict, n: int, batch: float, net: dict) -> float:
    return math.ceil(batch / n) * (x["c_gen"] + x["c_bwd"]) + allreduce_s(x["g"], n, **net)


def project(x: dict, n: int, net: dict, exponent: float) -> dict:
    """Time (s) and samples to the target on n workers, per method and scenario."""
    out = {}
    for scenario, grow in (("fixed", 1), ("grows", n)):
        steps_e = x["essa"]["steps"] * (grow ** -exponent)
        steps_g = x["grpo"]["steps"] * (grow ** -exponent)
        p, m = x["essa"]["population"] * grow, x["grpo"]["batch"] * grow
        out[f"essa_{scenario}"] = {"time_s": steps_e * essa_step_s(x["essa"], n, p, net),
                                   "samples": steps_e * p * x["essa"]["batch"]}
        out[f"grpo_{scenario}"] = {"time_s": steps_g * grpo_step_s(x["grpo"], n, m, net), "samples": steps_g * m}
    return out


def inputs(out: Path) -> dict:
    """The model's inputs from the study's scaling.json and fair_summary.json."""
    scaling = json.loads((out / "scaling.json").read_text())
    target = json.loads((out / "fair_summary.json").read_text())["target"]
    e1, g1 = scaling["essa"]["n1"], scaling["grpo"]["n1"]
    population = e1["population"]
    return {"target": target["heldout"],
            "essa": {"population": population, "batch": e1["samples"] // population,
                     "c_es": e1["eval_s"] / e1["samples"], "f_es": e1["fixed_s"],
                     "r": scaling["essa"]["n2"]["bytes_sent"], "steps": target["essa"]["steps"]},
            "grpo": {"batch": g1["samples"], "c_gen": g1["generate_s"] / g1["samples"],
                     "c_bwd": g1["backward_s"] / g1["samples"], "g": scaling["grpo"]["gradient_bytes"],
                     "steps": target["grpo"]["steps"]},
            "measured_step_s": {m: {n: scaling[m][f"n{n}"]["step_s"] for n in (1, 2)} for m in ("essa", "grpo")}}


def check_against_two_workers(x: dict, net: dict) -> dict:
    """The model's per-step time at N = 2 (fixed scenario) against the 2-worker measurement."""
    predicted = {"essa": essa_step_s(x["essa"], 2, x["essa"]["population"], net),
                 "grpo": grpo_step_s(x["grpo"], 2, x["grpo"]["batch"], net)}
    return {m: {"predicted_step_s": round(predicted[m], 4), "measured_step_s": x["measured_step_s"][m][2],
                "error": round(predicted[m] / x["measured_step_s"][m][2] - 1, 4)} for m in predicted}


def plot(rows: dict, measured: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, style in (("essa_fixed", "C0--"), ("essa_grows", "C0-"), ("grpo_fixed", "C3--"), ("grpo_grows", "C3-")):
        ax.plot(WORKERS, [rows[n][key]["time_s"] / 60 for n in WORKERS], style, marker="o", ms=3,
                label=key.replace("_", ", ").replace("essa", "ESSA").replace("grpo", "GRPO"))
    for m, colour in (("essa", "C0"), ("grpo", "C3")):
        ax.plot([1, 2], [t / 60 for t in measured[m]], "x", color=colour, ms=9, label=f"{m.upper()} measured")
    ax.set(xscale="log", yscale="log", xlabel="workers N", ylabel="minutes to the target (projected)",
           title="Time to the target accuracy against workers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/fair")
    ap.add_argument("--bandwidth", type=float, default=12.5e9, help="bytes/s between workers (100 Gb/s)")
    ap.add_argument("--latency", type=float, default=5e-6, help="seconds per message hop")
    ap.add_argument("--exponent", type=float, default=0.5, help="e in S_N = S N^-e (the grows scenario)")
    ap.add_argument("--check-bandwidth", type=float, default=1e9, help="this machine's loopback, bytes/s")
    ap.add_argument("--check-latency", type=float, default=5e-5, help="this machine's loopback, seconds")
    args = ap.parse_args()
    out = ROOT / args.out
    x = inputs(out)
    net = {"bandwidth": args.bandwidth, "latency": args.latency}
    rows = {n: project(x, n, net, args.exponent) for n in WORKERS}
    check = check_against_two_workers(x, {"bandwidth": args.check_bandwidth, "latency": args.check_latency})
    measured = {m: [x[m]["steps"] * x["measured_step_s"][m][n] for n in (1, 2)] for m in ("essa", "grpo")}
    result = {"inputs": x, "assumptions": {**net, "exponent": args.exponent}, "check_n2": check,
              "measured_time_to_target_s": measured, "rows": {str(n): rows[n] for n in WORKERS}}
    (out / "projection.json").write_text(json.dumps(result, indent=1))
    plot(rows, measured, out / "projection.png")
    print("N     " + "  ".join(f"{k:>12}" for k in rows[1]))
    for n in WORKERS:
        print(f"{n:<5} " + "  ".join(f"{rows[n][k]['time_s'] / 60:10.2f} m" for k in rows[n]))
    for m, c in check.items():
        print(f"{m}: N=2 step predicted {c['predicted_step_s']:.2f} s, measured {c['measured_step_s']:.2f} s, "
              f"error {c['error']:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
