#!/usr/bin/env python3
"""The demo behind `make demo`: SFT warm-up -> ESSA under mpiexec, on the shipped
SmolLM2-135M-Instruct, offline. Prints held-out accuracy for the base model, after
SFT and after ESSA, with wall times, and writes runs/demo/summary.json.

    python tools/demo.py [--ranks 2] [--config configs/demo.yaml] [--generations N]
                         [--minutes 15] [--fresh] [overrides...]

Sized to the machine: the ES stage first runs one generation, times it, and picks
the number of generations so that the whole demo ends in about --minutes (within
MIN_GENERATIONS..MAX_GENERATIONS); it prints that choice and its estimate before the
rest of the ES stage runs. --generations N forces the count.

Interrupted (Ctrl-C, a closed laptop lid)? Run it again: finished stages are kept
and the ES stage resumes from its last checkpoint. --fresh starts over.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tools" / "bench"))
from common import describe_machine  # noqa: E402

MIN_GENERATIONS, MAX_GENERATIONS = 10, 80


def run(cmd: list[str]) -> str:
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        hint = " (rerun `make demo` to continue where it stopped)" if proc.returncode in (75, 130) else ""
        sys.exit(f"demo step failed ({proc.returncode}): {' '.join(cmd)}{hint}")
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def read_records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def choose_generations(record: dict, budget_s: float, eval_every: int, startup_s: float) -> tuple[int, float]:
    """Generations that fit ``budget_s`` given one measured generation, and the ES-stage estimate.
    ``record`` is generation 1's metrics line: step_s includes a held-out evaluation (heldout_s)."""
    eval_s = record.get("heldout_s", 0.0)
    gen_s = max(record["step_s"] - eval_s, 1e-3) + (record.get("ckpt_s") or 0.0)
    def stage_s(g):  # generation 1 and its evaluation are done; the rest evaluate at k % eval_every == 0 and g
        evals = sum(1 for k in range(2, g + 1) if k == g or (eval_every and k % eval_every == 0))
        return startup_s + (g - 1) * gen_s + evals * eval_s
    g = MIN_GENERATIONS
    while g < MAX_GENERATIONS and stage_s(g + 1) <= budget_s:
        g += 1
    return g, stage_s(g)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks for the ES stage")
    ap.add_argument("--run-dir", default="runs/demo")
    ap.add_argument("--minutes", type=float, default=15.0, help="target wall time of the whole demo")
    ap.add_argument("--generations", type=int, help="force the number of ES generations (no calibration)")
    ap.add_argument("--fresh", action="store_true", help="start over instead of continuing an earlier demo")
    ap.add_argument("overrides", nargs="*", help="section.key=value overrides for every stage")
    args = ap.parse_args()
    run_dir = ROOT / args.run_dir
    settings = {"config": args.config, "ranks": args.ranks, "overrides": args.overrides}
    state_file = run_dir / "demo.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else None
    if args.fresh or (state is not None and state.get("settings") != settings) or (run_dir.exists() and not state):
        if run_dir.exists():
            print(f"starting the demo over in {run_dir}" + ("" if args.fresh else " (its settings changed)"))
            shutil.rmtree(run_dir)
        state = None
    if state is None:
        state = {"settings": settings, "seconds": {}}
    elif state.get("after_essa") is None:
        done = [k for k in ("base", "after_sft") if k in state]
        print(f"continuing the demo in {run_dir}: done so far: {', '.join(done) or 'nothing'}; "
              f"ES at generation {max([r['generation'] for r in read_records(run_dir / 'essa')] or [0])}")
    run_dir.mkdir(parents=True, exist_ok=True)

    def save():
        state_file.write_text(json.dumps(state, indent=2))

    essa = str(BIN / "essa-hpc")
    t_start = time.time()
    if "base" not in state:
        t0 = time.time()
        out = last_json(run([essa, "eval", args.config, *args.overrides]))
        state.update(base=out["heldout_reward"], heldout_size=out["heldout_size"])
        state["seconds"]["base_eval"] = round(time.time() - t0)
        save()
    if "after_sft" not in state:
        t0 = time.time()
        out = last_json(run([essa, "sft", args.config, *args.overrides, "--out", str(run_dir / "sft")]))
        state["after_sft"] = out["heldout_reward"]
        state["seconds"]["sft"] = round(time.time() - t0)
        save()

    # --- ES stage: calibrate on its first generation, then run the chosen number -------
    mpi = [str(BIN / "mpiexec"), "-n", str(args.ranks)] if args.ranks > 1 else []
    essa_dir = run_dir / "essa"
    train = [*mpi, essa, "train", args.config, *args.overrides, f"space.init={run_dir / 'sft'}",
             "--run-dir", str(essa_dir), "--resume", "auto"]
    t_es = time.time()
    if "generations" not in state:
        if args.generations:
            state["generations"], state["why"] = args.generations, "forced with --generations"
        else:
            run([*train, "run.generations=1"])
            calib_s = time.time() - t_es
            first = read_records(essa_dir)[1]
            # launch + model load: the calibration's time outside its generation and its start evaluation
            startup_s = max(calib_s - first["step_s"] - first.get("heldout_s", 0.0), 0.0)
            spent = sum(state["seconds"].values()) + calib_s
            budget = max(args.minutes * 60 - spent, 0.0)
            eval_every = int(_config_value(args, "run.eval_every") or 0)
            g, estimate = choose_generations(first, budget, eval_every, startup_s)
            state.update(generations=g, calibration_s=round(calib_s), es_estimate_s=round(calib_s + estimate),
                         why=f"one generation took {first['step_s'] - first.get('heldout_s', 0):.1f} s and a "
                             f"held-out evaluation {first.get('heldout_s', 0):.1f} s on this machine; {g} generations "
                             f"fit a {args.minutes:g}-minute demo (allowed {MIN_GENERATIONS}-{MAX_GENERATIONS})")
            total = spent + estimate
            state["machine"] = describe_machine()
            print(f"\ndemo: {state['why']}.\ndemo: the ES stage will take about {(calib_s + estimate) / 60:.1f} "
                  f"minutes, the whole demo about {total / 60:.1f} minutes on this machine ({state['machine']}).\n",
                  flush=True)
        save()
    run([*train, f"run.generations={state['generations']}"])
    state["seconds"]["essa"] = state["seconds"].get("essa", 0) + round(time.time() - t_es)
    records = read_records(essa_dir)
    heldout = [(r["generation"], r["heldout_reward"]) for r in records if "heldout_reward" in r]
    state.update(essa_start=heldout[0][1], after_essa=heldout[-1][1], essa_curve=heldout)
    state["seconds"]["total"] = sum(v for k, v in state["seconds"].items() if k != "total")
    save()
    (run_dir / "summary.json").write_text(json.dumps(state, indent=2))
    n = state["heldout_size"]
    print(f"\nHeld-out exact-match accuracy on {n} problems ({args.config}):")
    print(f"  base model   {state['base']:.3f}")
    print(f"  after SFT    {state['after_sft']:.3f}   ({state['seconds']['sft']} s)")
    print(f"  after ESSA   {state['after_essa']:.3f}   ({state['seconds']['essa']} s, {args.ranks} ranks, "
          f"{len(records) - 1} generations: {state['why']})")
    if "es_estimate_s" in state:
        print(f"  ES stage estimated {state['es_estimate_s']} s, took {state['seconds']['essa']} s")
    print(f"  total wall time {state['seconds']['total']} s (this invocation {round(time.time() - t_start)} s); "
          f"adapter in {essa_dir / 'adapter'}")
    return 0


def _config_value(args, dotted: str):
    """A value of the demo's resolved config (the config file plus overrides)."""
    sys.path.insert(0, str(ROOT))
    from essa_hpc import config

    section, key = dotted.split(".")
    return getattr(getattr(config.load(ROOT / args.config, args.overrides), section), key)


if __name__ == "__main__":
    sys.exit(main())
