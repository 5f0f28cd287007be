#!/usr/bin/env python3
"""Run a learning study: one SFT warm-up, then ESSA arms x seeds, one after another.

    python tools/study/study_learning.py STUDY.yaml [--out runs/study] [--only ARM ...] [--ranks 1]

STUDY.yaml:
    config: configs/demo.yaml          # base config for every stage
    common: [task.heldout_size=500]    # overrides for SFT, eval and every arm
    sft: [sft.steps=60]                # extra overrides for the SFT stage (shared by all arms)
    seeds: [0, 1, 2]
    arms:
      - name: pop16-b32-s0.3
        overrides: [strategy.population=16, task.batch_size=32, strategy.sigma0=0.3]

Writes <out>/<arm>/seed<k>/ (a normal run dir) and <out>/summary.json with held-out
accuracy at the start and end of each run, the curve, and wall times. Re-running skips
finished runs and resumes interrupted ones, so the study survives being stopped.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def read_records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def summarise(run_dir: Path) -> dict:
    recs = read_records(run_dir)
    curve = [(r["generation"], r["heldout_reward"]) for r in recs if "heldout_reward" in r]
    wall = sum(r.get("step_s", 0.0) + (r.get("ckpt_s") or 0.0) for r in recs)
    return {"start": curve[0][1] if curve else None, "end": curve[-1][1] if curve else None,
            "curve": curve, "generations": recs[-1]["generation"] if recs else 0,
            "es_seconds": round(wall, 1),
            "wall_curve": _wall_curve(recs), "finished": (run_dir / "adapter").is_dir()}


def _wall_curve(recs: list[dict]) -> list[tuple[float, float]]:
    t, out = 0.0, []
    for r in recs:
        t += r.get("step_s", 0.0)
        if "heldout_reward" in r:
            out.append((round(t, 1), r["heldout_reward"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study YAML")
    ap.add_argument("--out", default="runs/study")
    ap.add_argument("--only", nargs="*", help="run only these arms")
    ap.add_argument("--ranks", type=int, default=1, help="MPI ranks per ES run")
    args = ap.parse_args()
    spec = yaml.safe_load(Path(args.study).read_text())
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    essa, common = str(BIN / "essa-hpc"), list(spec.get("common", []))
    sft_dir = out / "sft"
    if not (sft_dir / "adapter_config.json").is_file():
        t0 = time.time()
        if run([essa, "sft", spec["config"], *common, *spec.get("sft", []), "--out", str(sft_dir)]) != 0:
            return 1
        print(f"SFT took {time.time() - t0:.0f} s")
    mpi = [str(BIN / "mpiexec"), "-n", str(args.ranks)] if args.ranks > 1 else []
    previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    summary = {"study": args.study, "ranks": args.ranks, "sft": json.loads((sft_dir / "sft_summary.json").read_text()),
               "arms": previous.get("arms", {})}  # --only runs add to, not replace, earlier arms
    for arm in spec["arms"]:
        if args.only and arm["name"] not in args.only:
            continue
        for seed in spec.get("seeds", [0]):
            run_dir = out / arm["name"] / f"seed{seed}"
            if not (run_dir / "adapter").is_dir():
                code = run([*mpi, essa, "train", spec["config"], *common, *arm.get("overrides", []),
                            f"run.seed={seed}", f"space.init={sft_dir}", "run.progress=false",
                            "--run-dir", str(run_dir)])
                if code != 0:
                    print(f"arm {arm['name']} seed {seed} failed with {code}", file=sys.stderr)
            summary["arms"].setdefault(arm["name"], {"overrides": arm.get("overrides", [])})[f"seed{seed}"] = \
                summarise(run_dir)
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for name, arm in summary["arms"].items():
        ends = [(v["start"], v["end"]) for k, v in arm.items() if k.startswith("seed")]
        print(f"{name:32s} " + "  ".join(f"{s:.3f}->{e:.3f}" for s, e in ends if s is not None and e is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
