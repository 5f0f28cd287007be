"""Turning prompts into completions: HF ``generate`` with the population in one batch, or a
vLLM engine per rank, and the one prompt rendering every method uses."""
from __future__ import annotations

from essa_hpc.config.backends import BACKENDS


def build_rollout(model, tokenizer, cfg, env=None):
    """The backend ``rollout.backend`` for this rank (``env``: its device, its share of the node's cores)."""
    return BACKENDS.load(cfg.rollout.backend)(model, tokenizer, cfg, env=env)
