"""The only place random streams are made.

Every stream is ``SeedSequence([run_seed, purpose, *keys])`` so that any rank,
at any time, can rebuild the exact stream for (generation, member, tensor, ...)
without communicating or carrying RNG state. No global RNG, no ``hash()``.
"""
from __future__ import annotations

import numpy as np

# Fixed integer per purpose: streams for different purposes never collide.
PURPOSES = {
    "strategy": 1,    # the CMA-ES / OpenAI-ES sampling stream
    "minibatch": 2,   # which training prompts a generation uses
    "heldout": 3,     # the fixed held-out problem set
    "train_items": 4, # seeded task generators
    "init": 5,        # LoRA init (A Kaiming) and tiny-model weights
    "sampling": 6,    # temperature sampling per (generation, candidate, prompt)
    "noise": 7,       # full-space noise per (generation, member, tensor)
}

# Streams that share a base purpose with per-generation ones: name -> (base purpose, offset).
# The offset is added to the first key (it is the only key when none is given), and sits far
# above any generation number, so these streams never meet the per-generation ones.
SUBSTREAMS = {
    "sft_init": ("init", 2**20),               # LoRA A init of `essa-hpc sft` and of the GRPO/ESO policy
    "sft_minibatch": ("minibatch", 2**30),     # key: SFT step
    "probe_minibatch": ("minibatch", 2**29),   # key: step of tools/study/probe_svd_headroom.py
    "signal_examples": ("minibatch", 2**28),   # the SFT examples whose loss gradient `essa-hpc signal` compares with
    "heldout_sampling": ("sampling", 2**31),   # keys: 0, chunk (held-out decoding at temperature > 0)
    "baseline_sampling": ("sampling", 2**33),  # TRL's generation seed for the baselines
    "trdpo_pairs": ("sampling", 2**33 + 1),    # keys: 0, prompt chunk (TR-DPO's preference samples)
    "validation_items": ("heldout", 2**20),    # which pool items form the validation set (run-seed 0)
}


def seed_sequence(run_seed: int, purpose: str, *keys: int) -> np.random.SeedSequence:
    if purpose in SUBSTREAMS:
        purpose, offset = SUBSTREAMS[purpose]
        keys = (offset + int(keys[0]), *keys[1:]) if keys else (offset,)
    if purpose not in PURPOSES:
        raise KeyError(f"unknown random purpose {purpose!r}; known: {sorted(PURPOSES) + sorted(SUBSTREAMS)}")
    return np.random.SeedSequence([int(run_seed), PURPOSES[purpose], *(int(k) for k in keys)])


def rng(run_seed: int, purpose: str, *keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(run_seed, purpose, *keys)))


def int_seed(run_seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit integer seed, for libraries that take an int (torch, pycma's RandomState)."""
    return int(seed_sequence(run_seed, purpose, *keys).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def torch_generator(run_seed: int, purpose: str, *keys: int, device="cpu"):
    """A torch generator for the stream. The seed is the same on every device, but the streams are
    not: CPU generators are Mersenne Twister, CUDA ones Philox. Ranks on one device type draw
    identical numbers; a run moved between CPU and GPU draws other (equally valid) noise."""
    import torch  # here, not at the top: reward workers and config checks import seeding without torch

    g = torch.Generator(device=device)
    g.manual_seed(int_seed(run_seed, purpose, *keys))
    return g
