"""Search spaces: a candidate vector -> model behaviour. Their declarations (class,
capabilities) are in ``essa_hpc.config.spaces``; this builds the chosen one."""
from __future__ import annotations

from essa_hpc.config.spaces import SPACES


def build_space(model, cfg):
    """The space ``cfg.space.kind`` around ``model`` (``cfg``: the whole Config)."""
    return SPACES.load(cfg.space.kind)(model, cfg.space, cfg.run.seed)
