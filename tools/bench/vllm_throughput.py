#!/usr/bin/env python3
"""Generation backends on the same rows: HF population-batched svd_lora, vLLM multi-LoRA
(one adapter per candidate, one engine call per group), and vLLM on the base model.

    python tools/bench/vllm_throughput.py [--quick] [--model shipped:smollm2-135m-instruct]

Tokens/s (prompt plus generated, and generated alone) per mode, and the seconds one ESSA
generation's evaluation takes on each backend (``evaluate_population``, the full
population on one rank). One process, modes interleaved, so the ratios share the
machine's state. Needs the vLLM environment (make venv-vllm).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import save

from essa_hpc import config
from essa_hpc.assemble import build_parts, build_search
from essa_hpc.config.backends import find_vllm_python
from essa_hpc.errors import ConfigError
from essa_hpc.evaluation import evaluate_population
from essa_hpc.generation.rollout import HFRollout
from essa_hpc.runtime.comm import Comm


def run_rows(rollout, space, cands, items, max_rows: int, adapters: bool) -> tuple[float, int, int]:
    """(seconds, prompt+generated tokens, generated tokens) for every (candidate, prompt) row."""
    rows = np.arange(len(cands) * len(items))
    t0, total, new = time.perf_counter(), 0, 0
    for start in range(0, len(rows), max_rows):
        chunk = rows[start:start + max_rows]
        batch = [items[i] for i in chunk % len(items)]
        prepared = rollout.prepare(space, cands, chunk // len(items)) if adapters else None
        out = rollout.generate(batch, rows=prepared)
        if adapters:
            rollout.release(space)
        new += out.new_tokens
        total += out.new_tokens + sum(len(rollout.token_ids(it)) for it in batch)
    return time.perf_counter() - t0, total, new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped:smollm2-135m-instruct")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=16, help="prompts per candidate")
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="population 4, 8 prompts")
    args = ap.parse_args()
    try:
        find_vllm_python("")
    except ConfigError as exc:
        print(f"vllm_throughput skipped: {exc}")
        return
    torch.set_num_threads(args.threads)
    pop, prompts = (4, 8) if args.quick else (args.population, args.prompts)
    overrides = [f"model.name={args.model}", f"rollout.max_new_tokens={args.max_new_tokens}", "rollout.max_rows=128",
                 f"strategy.population={pop}", f"rollout.group_size={pop}", f"task.batch_size={prompts}",
                 "rollout.vllm.kv_cache_gib=2"]
    cfg_hf = config.load("configs/demo.yaml", overrides)
    cfg_vllm = config.load("configs/demo.yaml", overrides + ["rollout.backend=vllm"])
    parts = build_parts(cfg_vllm)  # svd_lora space around the HF model, and the vLLM engine
    hf = HFRollout(parts.model, parts.tokenizer, cfg_hf)
    vllm = parts.rollout
    try:
        cands = build_search(cfg_hf, parts.space).ask()
        items = parts.task.minibatch(0, prompts)
        modes = {"hf_batched": (hf, True), "vllm_multi_lora": (vllm, True), "vllm_base": (vllm, False)}
        for rollout, adapters in modes.values():  # warm-up: first calls pay one-time costs
            run_rows(rollout, parts.space, cands[:2], items[:2], 128, adapters)
        result = {"population": pop, "prompts_per_candidate": prompts, "rows": pop * prompts}
        for name, (rollout, adapters) in modes.items():
            sec, total, new = run_rows(rollout, parts.space, cands, items, 128, adapters)
            result[name] = {"s": round(sec, 2), "tok_s": round(total / sec, 1), "new_tok_s": round(new / sec, 1)}
            print(name, result[name], flush=True)
        for name, cfg, rollout in (("hf", cfg_hf, hf), ("vllm", cfg_vllm, vllm)):
            t0 = time.perf_counter()
            evaluate_population(rollout, parts.space, parts.rewarder, cands, items, cfg, Comm(use_mpi=False), 0)
            result[f"essa_generation_s_{name}"] = round(time.perf_counter() - t0, 2)
        result["vllm_multi_lora_over_hf"] = round(result["vllm_multi_lora"]["tok_s"] / result["hf_batched"]["tok_s"], 3)
        result["vllm_base_over_multi_lora"] = round(result["vllm_base"]["tok_s"] / result["vllm_multi_lora"]["tok_s"], 3)
        print(result, flush=True)
    finally:
        vllm.close()
    save("vllm_throughput", {"command": "python tools/bench/vllm_throughput.py" + (" --quick" if args.quick else ""),
                             "model": args.model, "max_new_tokens": args.max_new_tokens, "threads": args.threads,
                             **result})


if __name__ == "__main__":
    main()
