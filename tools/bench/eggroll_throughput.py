#!/usr/bin/env python3
"""EGGROLL against plain generate and the full space, on the same rows (prompts x candidates).

    python tools/bench/eggroll_throughput.py [--quick] [--model shipped:smollm2-135m-instruct]

Modes, in one process on the same prompts: plain batched ``generate`` of the base model;
the eggroll space, rank-1 noise on every linear, the whole population batched; the full
space (ES at scale), one candidate at a time. Generated tokens/s and the ratios
eggroll/plain and eggroll/full. Perturbation time is included: it is part of the cost.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import save

from essa_hpc import config
from essa_hpc.assemble import build_parts, build_search
from essa_hpc.evaluation import row_chunks

ALL_LINEARS = "[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"


def generate_rows(parts, cands, items, max_rows: int, batched: bool) -> tuple[float, int]:
    """(seconds, generated tokens) for every (candidate, prompt) row through the space."""
    t0, tokens = time.perf_counter(), 0
    for chunk in row_chunks(len(cands), len(items), max_rows, batched):
        parts.rollout.prepare(parts.space, cands, chunk // len(items))
        tokens += parts.rollout.generate([items[i] for i in chunk % len(items)]).new_tokens
    parts.rollout.release(parts.space)
    return time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped:smollm2-135m-instruct")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="population 4, 8 prompts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pop, prompts = (4, 8) if args.quick else (args.population, args.prompts)
    common = [f"model.name={args.model}", f"rollout.max_new_tokens={args.max_new_tokens}", "rollout.max_rows=128",
              f"strategy.population={pop}", "strategy.kind=open_es", "strategy.sigma_relative=false",
              "strategy.sigma0=0.001", "strategy.mirrored=true"]
    cfg_egg = config.load("configs/demo.yaml", common + ["space.kind=eggroll", "space.rank=1",
                                                           f"space.target_modules={ALL_LINEARS}"])
    cfg_full = config.load("configs/demo.yaml", common + ["space.kind=full"])
    egg, full = build_parts(cfg_egg), build_parts(cfg_full)
    plain = build_parts(cfg_egg, with_space=False)
    items = egg.task.minibatch(0, prompts)
    cands = build_search(cfg_egg, egg.space).ask()
    rows = np.arange(pop * prompts)
    chunks = [rows[i:i + 128] for i in range(0, len(rows), 128)]

    def plain_generate() -> tuple[float, int]:
        t0 = time.perf_counter()
        n = sum(plain.rollout.generate([items[i] for i in chunk % prompts]).new_tokens for chunk in chunks)
        return time.perf_counter() - t0, n

    plain_generate()  # warm-up
    result = {"population": pop, "prompts_per_candidate": prompts, "rows": int(len(rows))}
    for name, fn in (("plain", plain_generate),
                     ("eggroll_batched", lambda: generate_rows(egg, cands, items, 128, True)),
                     ("full_one_at_a_time", lambda: generate_rows(full, cands, items, 128, False))):
        sec, tok = fn()
        result[name] = {"s": round(sec, 2), "tokens": tok, "tok_s": round(tok / sec, 1)}
        print(name, result[name], flush=True)
    result["eggroll_over_plain"] = round(result["eggroll_batched"]["tok_s"] / result["plain"]["tok_s"], 3)
    result["eggroll_over_full"] = round(result["eggroll_batched"]["tok_s"] / result["full_one_at_a_time"]["tok_s"], 3)
    print(result, flush=True)
    save("eggroll_throughput", {"command": "python tools/bench/eggroll_throughput.py" + (" --quick" if args.quick else ""),
                                "model": args.model, "max_new_tokens": args.max_new_tokens, "threads": args.threads,
                                **result})


if __name__ == "__main__":
    main()
