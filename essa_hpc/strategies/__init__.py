"""Strategies: pure numpy ask/tell. Their declarations are in ``essa_hpc.config.strategies``;
this builds the chosen one, in its seed-addressed form on a space whose candidates are seed
addresses (the strategy's ``seed_addressed`` capability)."""
from __future__ import annotations

import numpy as np

from essa_hpc.config.kinds import import_target
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.strategies.base import Strategy


def strategy_class(kind: str, seed_addressed: bool) -> type[Strategy]:
    spec = STRATEGIES.spec(kind)
    return import_target(spec.get("seed_addressed")) if seed_addressed else STRATEGIES.load(kind)


def build_strategy(strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int,
                   seed_addressed: bool = False) -> Strategy:
    """The strategy ``strategy_cfg.kind`` from its config section (``Config.strategy``)."""
    return strategy_class(strategy_cfg.kind, seed_addressed).from_config(strategy_cfg, x0, sigma0, run_seed)
