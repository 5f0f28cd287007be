#!/usr/bin/env python3
"""Rollout throughput: population-batched svd_lora vs one candidate at a time vs plain
batched HF generate of the base model, on the SAME rows (prompts x candidates).

    python tools/bench/rollout_throughput.py [--quick] [--model shipped:smollm2-135m-instruct]

Generated tokens/s per mode and the ratio batched/plain, at populations 8, 16, 32.
All three modes run in one process, interleaved per population, so the ratios
share the machine's state.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import save

from essa_hpc import config
from essa_hpc.assemble import build_parts
from essa_hpc.generation.rollout import HFRollout


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=16, help="prompts per candidate")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--max-rows", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="populations 8 only, fewer prompts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pops = [8] if args.quick else [8, 16, 32]
    prompts = 8 if args.quick else args.prompts
    cfg = config.load("configs/demo.yaml", [f"model.name={args.model}", f"rollout.max_rows={args.max_rows}",
                                            f"rollout.max_new_tokens={args.max_new_tokens}"])
    parts = build_parts(cfg)  # model wrapped by the svd_lora space
    plain_parts = build_parts(cfg, with_space=False)  # an unwrapped copy of the base model
    plain = HFRollout(plain_parts.model, plain_parts.tokenizer, cfg)
    space, rollout = parts.space, parts.rollout
    items = parts.task.minibatch(0, prompts)
    rng = np.random.default_rng(0)
    results = []
    for pop in pops:
        cands = space.initial() + 0.1 * space.typical_scale() * rng.standard_normal((pop, space.dim))
        rows = np.arange(pop * prompts)
        chunks = [rows[i:i + args.max_rows] for i in range(0, len(rows), args.max_rows)]

        def batched() -> int:
            n = 0
            for chunk in chunks:
                space.apply(cands, chunk // prompts)
                n += rollout.generate([items[i] for i in chunk % prompts]).new_tokens
            space.restore()
            return n

        def one_at_a_time() -> int:
            n = 0
            for c in range(pop):
                space.apply(cands[c:c + 1], np.zeros(prompts, dtype=int))
                n += rollout.generate(items).new_tokens
            space.restore()
            return n

        def plain_generate() -> int:
            return sum(plain.generate([items[i] for i in chunk % prompts]).new_tokens for chunk in chunks)

        plain_generate()  # warm-up
        t = {name: timed(fn) for name, fn in (("plain", plain_generate), ("batched", batched),
                                               ("one_at_a_time", one_at_a_time))}
        row = {"population": pop, "rows": int(len(rows)), "prompts_per_candidate": prompts}
        for name, (sec, tok) in t.items():
            row[f"{name}_s"], row[f"{name}_tokens"], row[f"{name}_tok_s"] = round(sec, 2), tok, round(tok / sec, 1)
        row["batched_over_plain"] = round(row["batched_tok_s"] / row["plain_tok_s"], 3)
        row["batched_over_one_at_a_time"] = round(row["batched_tok_s"] / row["one_at_a_time_tok_s"], 3)
        print(row, flush=True)
        results.append(row)
    save("rollout_throughput", {"command": "python tools/bench/rollout_throughput.py" + (" --quick" if args.quick else ""),
                                "model": args.model, "max_new_tokens": args.max_new_tokens,
                                "max_rows": args.max_rows, "threads": args.threads, "rows": results})


if __name__ == "__main__":
    main()
