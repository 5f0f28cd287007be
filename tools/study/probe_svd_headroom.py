#!/usr/bin/env python3
"""Diagnostic: how far can the ESSA search space (singular values only, U/V frozen) go
when searched by GRADIENT instead of ES? Trains the searched singular values (the top
``space.alpha_fraction`` of the factors ``space.svd_lora.factors`` of every SVD-LoRA module;
the others keep their values) on the SFT loss and reports held-out exact match before,
every ``--eval-every`` steps and after. If this rises, the space has headroom and an ES that
stalls is short of signal, not of reachable solutions; run it to a plateau for the ceiling,
once in the searched subspace and once with alpha 1 and both factors for the full space.

    python tools/study/probe_svd_headroom.py configs/demo.yaml space.init=runs/demo/sft [--steps 300]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
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
    ap.add_argument("--eval-every", type=int, default=0, help="held-out every N steps too (0 = start and end only)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = config.load(args.config, args.overrides)
    p = build_parts(cfg)
    space, comm = p.space, Comm(use_mpi=False)
    held = p.task.heldout()
    before = heldout_score(p.rollout, space, p.scorer, None, held, cfg.rollout.max_rows, comm)
    s = torch.nn.Parameter(space.base_s.clone().float())  # [modules, 2, r]
    searched = torch.zeros_like(s)
    searched[:, space.searched, : space.k] = 1.0  # the values ES searches; Adam leaves zero-gradient ones alone
    opt = torch.optim.Adam([s], lr=args.lr * space.typical_scale())
    pool, t0, curve = p.task.train_pool(), time.time(), [(0, before)]

    def offsets() -> np.ndarray:  # the trained values as an ordinary candidate: offsets from the start
        return (s.detach().double() - space.base_s)[:, space.searched, : space.k].reshape(-1).numpy()

    for step in range(args.steps):
        for i, layer in enumerate(space.layers):
            layer.s_a, layer.s_b = s[i, 0][None, None, :], s[i, 1][None, None, :]
        pick = seeding.rng(0, "probe_minibatch", step).choice(len(pool), args.batch)
        ids, mask, labels = collate(sft_examples(p.task, p.rollout.prompts, p.tokenizer, [pool[j] for j in pick]),
                                    p.tokenizer.pad_token_id)
        loss = p.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        s.grad *= searched
        opt.step()
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            curve.append((step + 1, heldout_score(p.rollout, space, p.scorer, offsets(), held, cfg.rollout.max_rows,
                                                  comm)))
            print(json.dumps({"step": curve[-1][0], "heldout": curve[-1][1]}), flush=True)
    after = heldout_score(p.rollout, space, p.scorer, offsets(), held, cfg.rollout.max_rows, comm)
    curve.append((args.steps, after))
    print(json.dumps({"heldout_before": before, "heldout_after_gradient_on_s": after, "steps": args.steps,
                      "seconds": round(time.time() - t0), "dim": space.dim, "alpha_fraction": cfg.space.alpha_fraction,
                      "factors": cfg.space.svd_lora.factors, "curve": curve}))


if __name__ == "__main__":
    main()
