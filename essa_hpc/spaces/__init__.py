"""Search-space registry: ``space.kind`` -> class."""
from __future__ import annotations

from essa_hpc.config import Config
from essa_hpc.spaces.base import SearchSpace


def registry() -> dict:
    from essa_hpc.spaces.lora import LoRASpace
    from essa_hpc.spaces.svd_lora import SVDLoRASpace

    kinds = {"svd_lora": SVDLoRASpace, "lora": LoRASpace}
    try:
        from essa_hpc.spaces.full import FullSpace
        kinds["full"] = FullSpace
    except ImportError:
        pass
    return kinds


def build_space(model, cfg: Config) -> SearchSpace:
    return registry()[cfg.space.kind](model, cfg.space, cfg.run.seed)
