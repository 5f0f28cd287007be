"""The search spaces: ``space.kind`` -> its declaration. Space modules import torch, so a
space's declaration lives here, where validation reads it without torch: its class as a
string, and what it needs from the rest of the config as capabilities. Adding one: its
file under ``essa_hpc/spaces/`` plus one ``Spec`` here (with an options dataclass and a
check if it has keys of its own), or an entry point in the group ``essa_hpc.spaces``."""
from __future__ import annotations

from dataclasses import dataclass

from essa_hpc.config.kinds import Kind, Spec
from essa_hpc.config.options import choice, opt


@dataclass
class SVDLoRAOptions:
    """Keys under ``space.svd_lora``."""
    factors: str = opt("both", "which factors' singular values are searched: both | B | A (after a short SFT the B "
                       "factors held about 81% of the loss gradient's squared norm on the demo; fewer dimensions "
                       "give each generation's few directions more of them)", resumable=False)


def check_svd_lora(cfg) -> None:
    choice(cfg.space.svd_lora.factors, ["both", "A", "B"], "space.svd_lora.factors")

CAPABILITIES = {
    "batched": "rows of one generate call may belong to different candidates (the population shares one batch)",
    "seed_addressed": "a candidate is a seed address and the parameters live in the space: the strategy takes its "
                      "seed-addressed form, and only strategies that have one can search it",
    "float_base": "it perturbs the base weights, so model.quantize must be none",
    "lora_targets": "space.target_modules must name modules of the model",
    "peft_factors": "a candidate is a LoRA adapter (save_candidate): the vLLM backend can serve it, and "
                    "run.select_best can keep it",
}

SPACES = Kind("space.kind", "search space", "essa_hpc.spaces", CAPABILITIES, [
    Spec("svd_lora", "essa_hpc.spaces.svd_lora:SVDLoRASpace", "ESSA: the singular values of SVD-decomposed LoRA "
         "factors", SVDLoRAOptions, check_svd_lora, caps={"batched": True, "lora_targets": True, "peft_factors": True}),
    Spec("lora", "essa_hpc.spaces.lora:LoRASpace", "plain LoRA: every entry of A and B",
         caps={"lora_targets": True, "peft_factors": True}),
    Spec("full", "essa_hpc.spaces.full:FullSpace", "every base weight, seed-addressed noise, as in ES at scale",
         caps={"seed_addressed": True, "float_base": True}),
    Spec("eggroll", "essa_hpc.spaces.eggroll:EggrollSpace", "EGGROLL: rank-r seed-addressed noise on every target "
         "linear, the population in one batch, full-rank updates",
         caps={"batched": True, "seed_addressed": True, "float_base": True, "lora_targets": True}),
])
