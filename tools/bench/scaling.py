#!/usr/bin/env python3
"""Scaling, time breakdown, communication and peak memory of ESSA training.

    python tools/bench/scaling.py [--quick]

Runs the same ESSA config (SmolLM2, fixed population and mini-batch) as
  (a) 1 rank x 1 thread, (b) 2 ranks x 1 thread (mpiexec), (c) 1 rank x 2 threads,
then reads each run's metrics.jsonl:
- time per generation (median step_s over generations without held-out eval) and the
  1->2-rank parallel efficiency T_a / (2·T_b);
- the breakdown of a generation: eval (generation + reward), ask, tell, comm, checkpoint,
  and the share that is not generation;
- bytes sent per rank per generation, for SmolLM and the tiny model, next to what a
  DDP gradient allreduce of the same LoRA would move, and the same on paper for
  Qwen2.5-Math-7B with the paper's settings;
(peak memory is tools/bench/memory.py.)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, save

BIN = Path(sys.executable).parent


def run_train(run_dir: Path, ranks: int, threads: int, overrides: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    env.pop("ESSA_NO_MPI", None)
    cmd = [str(BIN / "essa-hpc"), "train", "configs/demo.yaml", *overrides, f"run.threads={threads}",
           "run.progress=false", "--run-dir", str(run_dir), "--resume", "never"]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks), *cmd]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    # generation 1 carries one-off warm-up costs (first forward, allocator); the rest are steady
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()][2:]
    plain = [r for r in recs if "heldout_reward" not in r] or recs
    med = {k: statistics.median(r.get(k) or 0.0 for r in plain)
           for k in ("step_s", "eval_s", "apply_s", "reward_s", "ask_s", "tell_s", "comm_s")}
    med["ckpt_s"] = statistics.mean(r.get("ckpt_s") or 0.0 for r in plain)  # amortised over ckpt.every
    # "generation" = model.generate only; apply/restore and reward scoring count as overhead
    med["generate_s"] = med["eval_s"] - med["apply_s"] - med["reward_s"]
    med["other_s"] = med["step_s"] - med["eval_s"] - med["ask_s"] - med["tell_s"] - med["comm_s"]
    total = med["step_s"] + med["ckpt_s"]
    return {"ranks": ranks, "threads": threads, "wall_s": round(wall, 1),
            "median": {k: round(v, 4) for k, v in med.items()},
            "non_generation_share": round((total - med["generate_s"]) / total, 4),
            "non_generation_share_without_comm": round((total - med["generate_s"] - med["comm_s"]) / total, 4),
            "bytes_sent_per_generation": statistics.median(r["bytes_sent"] for r in plain),
            "generations": len(recs)}


def lora_params(dims: list[tuple[int, int]], layers: int, rank: int) -> int:
    return layers * sum(rank * (d_in + d_out) for d_in, d_out in dims)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 generations, population 8, 8 prompts")
    ap.add_argument("--out", default="runs/bench-scaling")
    args = ap.parse_args()
    gens, pop, batch = (4, 8, 8) if args.quick else (8, 16, 32)
    overrides = [f"run.generations={gens}", f"strategy.population={pop}", f"task.batch_size={batch}",
                 "run.eval_every=0", "task.heldout_size=32"]
    out = ROOT / args.out
    runs = {}
    for name, ranks, threads in (("a_1rank_1thread", 1, 1), ("b_2ranks_1thread", 2, 1), ("c_1rank_2threads", 1, 2)):
        runs[name] = run_train(out / name, ranks, threads, overrides)
        print(name, runs[name], flush=True)
    t1, t2 = runs["a_1rank_1thread"]["median"]["step_s"], runs["b_2ranks_1thread"]["median"]["step_s"]
    tiny = out / "tiny"
    subprocess.run([str(BIN / "essa-hpc"), "train", "configs/tiny.yaml", f"strategy.population={pop}",
                    "run.generations=2", "--run-dir", str(tiny), "--resume", "never"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tiny_bytes = json.loads((tiny / "metrics.jsonl").read_text().splitlines()[1])["bytes_sent"]
    # LoRA on q,k,v,o. SmolLM2-135M: 30 layers, hidden 576, kv 192 (config.json of the model).
    # Qwen2.5-Math-7B: 28 layers, hidden 3584, 4 KV heads x 128 = 512 (its config.json).
    smol = lora_params([(576, 576), (576, 192), (576, 192), (576, 576)], 30, 8)
    qwen = lora_params([(3584, 3584), (3584, 512), (3584, 512), (3584, 3584)], 28, 32)
    comm = {
        "tiny_bytes_per_generation": tiny_bytes,
        "smollm_bytes_per_generation": runs["b_2ranks_1thread"]["bytes_sent_per_generation"],
        "smollm_lora_params_r8": smol,
        "smollm_ddp_grad_allreduce_bytes_fp32": smol * 4,
        "qwen7b_paper_essa_bytes_per_generation": 8 * (96 + 1) + 4 + 8,  # lambda=96 rewards + tokens, flag, checksum
        "qwen7b_lora_params_r32": qwen,
        "qwen7b_ddp_grad_allreduce_bytes_bf16": qwen * 2,
        "note": "ESSA bytes are what each rank contributes to collectives; a ring allreduce of the DDP "
                "gradient moves about 2x its size per rank per step.",
    }
    result = {"command": "python tools/bench/scaling.py" + (" --quick" if args.quick else ""),
              "overrides": overrides, "runs": runs,
              "parallel_efficiency_1_to_2_ranks": round(t1 / (2 * t2), 3), "comm": comm}
    print(json.dumps({k: result[k] for k in ("parallel_efficiency_1_to_2_ranks", "comm")}, indent=1))
    save("scaling", result)


if __name__ == "__main__":
    main()
