"""Generation-backend registry: ``rollout.backend`` -> the class that turns prompts into completions.

Backends import torch (and, later, vLLM), so the entries name their classes as strings,
imported only when a rollout is built. Adding a backend: its file plus one ``add`` line.
"""
from __future__ import annotations

from essa_hpc.registry import Registry

BACKENDS = Registry("rollout.backend", "generation backend")
BACKENDS.add("hf", "essa_hpc.rollout:HFRollout", "transformers generate; one call serves many candidates, "
             "each row with its own adapter state")


def build_rollout(model, tokenizer, cfg):
    return BACKENDS.load(cfg.rollout.backend)(model, tokenizer, cfg)
