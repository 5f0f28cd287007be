#!/usr/bin/env python3
"""Diagnostic: how far can the ESSA search space (singular values only, U/V frozen) go
when searched by GRADIENT instead of ES? Trains s_A, s_B of every SVD-LoRA module on
the SFT loss and reports held-out exact match before and after. If this rises, the space
has headroom and an ES that stalls is short of signal, not of reachable solutions.

    python tools/study/probe_svd_headroom.py configs/demo.yaml space.init=runs/demo/sft [--steps 60]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from essa_hpc import config
from essa_hpc.assemble import build_parts
from essa_hpc.evaluation import heldout_score
from essa_hpc.runtime import seeding
from essa_hpc.runtime.comm import Comm
from essa_hpc.sft import collate, sft_examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=0.02, help="Adam lr, relative to mean |s|")
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = config.load(args.config, args.overrides)
    p = build_parts(cfg)
    space, comm = p.space, Comm(use_mpi=False)
    held = p.task.heldout()
    before = heldout_score(p.rollout, space, p.scorer, None, held, cfg.rollout.max_rows, comm)
    s = torch.nn.Parameter(space.base_s.clone().float())  # [modules, 2, r]
    opt = torch.optim.Adam([s], lr=args.lr * space.typical_scale())
    pool, t0 = p.task.train_pool(), time.time()
    for step in range(args.steps):
        for i, layer in enumerate(space.layers):
            layer.s_a, layer.s_b = s[i, 0][None, None, :], s[i, 1][None, None, :]
        pick = seeding.rng(0, "probe_minibatch", step).choice(len(pool), args.batch)
        ids, mask, labels = collate(sft_examples(p.task, p.rollout.prompts, p.tokenizer, [pool[j] for j in pick]),
                                    p.tokenizer.pad_token_id)
        loss = p.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    # evaluate the trained values as an ordinary candidate: offsets from the SFT singular values
    offsets = (s.detach().double() - space.base_s)[..., : space.k].reshape(-1).numpy()
    after = heldout_score(p.rollout, space, p.scorer, offsets, held, cfg.rollout.max_rows, comm)
    print(json.dumps({"heldout_before": before, "heldout_after_gradient_on_s": after, "steps": args.steps,
                      "seconds": round(time.time() - t0), "dim": space.dim}))


if __name__ == "__main__":
    main()
