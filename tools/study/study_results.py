"""What the fair study reads out of its run dirs: validation and held-out curves against training
seconds, samples and steps; the finals' mean and spread; the adapter best-on-validation selection would
have exported; and when each method first reached a given held-out accuracy. Pure functions of
metrics.jsonl, so the numbers the docs quote can be recomputed from the runs.

Training seconds exclude evaluations for both methods, as the wall-time budgets count them
(ESSA: the sum of step_s less heldout_s; the baselines: wall_s less eval_wall_s).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path


def records(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def curves(run_dir: Path) -> dict:
    """{"validation": [...], "heldout": [...], "finished": bool}; each point is
    (training seconds, samples so far, score, step)."""
    t, samples = 0.0, 0
    out = {"validation": [], "heldout": [], "finished": (Path(run_dir) / "adapter").is_dir()}
    for r in records(run_dir):
        if "wall_s" in r:  # a baseline: cumulative wall clock and samples
            seconds, so_far = r["wall_s"] - r["eval_wall_s"], r.get("samples", 0)
        else:  # ES: per-generation step times and samples
            t += r.get("step_s", 0.0) - r.get("heldout_s", 0.0)
            samples += r.get("samples", 0)
            seconds, so_far = t, samples
        for key in ("validation", "heldout"):
            if f"{key}_reward" in r:
                out[key].append((round(seconds, 1), so_far, r[f"{key}_reward"], r["generation"]))
    return out


def selected_heldout(run: dict) -> float:
    """Held-out score of the evaluation with the best validation score, the first of equal ones: what
    run.select_best exports (both methods score validation and held-out at the same evaluations)."""
    best = max(range(len(run["validation"])), key=lambda i: (run["validation"][i][2], -i))
    step = run["validation"][best][3]
    return next(h[2] for h in run["heldout"] if h[3] == step)


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarise_finals(runs: list[dict]) -> dict:
    finals = [r["heldout"][-1][2] for r in runs]
    peaks = [max(h[2] for h in r["heldout"]) for r in runs]
    starts = [r["heldout"][0][2] for r in runs]
    selected = [selected_heldout(r) for r in runs] if all(r["validation"] for r in runs) else []
    gains = [f - s for f, s in zip(finals, starts)]
    out = {"final": finals, "peak": peaks, "start": starts, "gain": gains,
           "final_mean": statistics.mean(finals), "final_sd": _sd(finals),
           "peak_mean": statistics.mean(peaks), "peak_sd": _sd(peaks),
           "gain_mean": statistics.mean(gains), "gain_sd": _sd(gains),
           "train_s": [r["heldout"][-1][0] for r in runs], "samples": [r["heldout"][-1][1] for r in runs]}
    if selected:
        out.update(selected=selected, selected_mean=statistics.mean(selected), selected_sd=_sd(selected))
    return out


def _mean_point(points: list[tuple]) -> tuple:
    step = round(statistics.mean(p[3] for p in points))
    return tuple(statistics.mean(p[i] for p in points) for i in range(3)) + (step,)


def mean_curve(runs: list[dict], key: str = "heldout") -> list[tuple]:
    """(mean training seconds, mean samples, mean score, step) at the steps every run evaluated, then the
    mean of the runs' last points (budgeted runs stop at slightly different steps)."""
    lasts = [r[key][-1][3] for r in runs]
    steps = sorted(set.intersection(*({p[3] for p in r[key][:-1]} for r in runs)))
    out = [_mean_point([next(p for p in r[key] if p[3] == step) for r in runs]) for step in steps
           if step < min(lasts)]
    return out + [_mean_point([r[key][-1] for r in runs])]


def first_reaching(curve: list[tuple], target: float) -> dict | None:
    """The first point of ``curve`` at or above ``target``: its training seconds, samples and step."""
    for seconds, samples, score, step in curve:
        if score >= target - 1e-12:
            return {"train_s": round(seconds, 1), "samples": int(samples), "steps": int(step), "score": score}
    return None


def reaching(finals: dict[str, list[dict]], summaries: dict[str, dict]) -> dict:
    """Per method: when its mean held-out curve first reached the other method's mean final accuracy,
    and the common target both reach (the lower of the two means) with the steps each needed."""
    methods = list(finals)
    curves_ = {m: mean_curve(finals[m]) for m in methods}
    target = min(summaries[m]["final_mean"] for m in methods)
    out = {"heldout": target}
    for m in methods:
        other = next(o for o in methods if o != m)
        out[m] = first_reaching(curves_[m], target)
        out[f"{m}_to_{other}_final"] = first_reaching(curves_[m], summaries[other]["final_mean"])
    return out
