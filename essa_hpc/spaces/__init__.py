"""Search-space registry: ``space.kind`` -> its class and what it needs from the rest of the config.

Space modules import torch, so their entries name the class as a string (imported only
when a space is built) and state their cross-section needs as data, which validation
reads without torch: ``strategies`` (the strategy kinds that can search it; None = any),
``float_base`` (True: it perturbs the base weights, so ``model.quantize`` must be none),
``lora_targets`` (True: ``space.target_modules`` must name modules of the model),
``peft_factors`` (True: a candidate is a LoRA adapter, ``save_candidate``, which the vLLM backend serves).
Adding a space: its file plus one ``SPACES.add`` line.
"""
from __future__ import annotations

from essa_hpc.registry import Registry

SPACES = Registry("space.kind", "search space")
SPACES.add("svd_lora", "essa_hpc.spaces.svd_lora:SVDLoRASpace",
           "ESSA: the singular values of SVD-decomposed LoRA factors", lora_targets=True, peft_factors=True)
SPACES.add("lora", "essa_hpc.spaces.lora:LoRASpace", "plain LoRA: every entry of A and B", lora_targets=True,
           peft_factors=True)
SPACES.add("full", "essa_hpc.spaces.full:FullSpace", "every base weight, seed-addressed noise, as in ES at scale",
           strategies=("open_es",), float_base=True)
SPACES.add("eggroll", "essa_hpc.spaces.eggroll:EggrollSpace", "EGGROLL: rank-r seed-addressed noise on every target "
           "linear, the population in one batch, full-rank updates", strategies=("open_es",), float_base=True,
           lora_targets=True)


def build_space(model, cfg):
    """The space ``cfg.space.kind`` around ``model`` (``cfg``: the whole Config)."""
    return SPACES.load(cfg.space.kind)(model, cfg.space, cfg.run.seed)
