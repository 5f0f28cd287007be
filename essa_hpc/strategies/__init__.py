"""Strategy registry: ``strategy.kind`` -> its class, options (``strategy.<kind>.*``) and checks.

Strategies are pure numpy, so their files are light and hold their own ``Options`` and
``check_config``; adding one is its file plus one ``STRATEGIES.add`` line here.
``seed_addressed`` names the form a strategy takes on a space whose candidates are
seed addresses (the full space); a strategy without one cannot search such a space.
"""
from __future__ import annotations

import numpy as np

from essa_hpc.registry import Registry, import_target
from essa_hpc.strategies import cma_es, open_es, snes
from essa_hpc.strategies.base import Strategy

STRATEGIES = Registry("strategy.kind", "strategy")
STRATEGIES.add("cma_es", "essa_hpc.strategies.cma_es:CMAES", cma_es.HELP, cma_es.Options, cma_es.check_config)
STRATEGIES.add("open_es", "essa_hpc.strategies.open_es:OpenES", open_es.HELP, open_es.Options, open_es.check_config,
               seed_addressed="essa_hpc.strategies.seed_es:SeedES")
STRATEGIES.add("snes", "essa_hpc.strategies.snes:SNES", snes.HELP, snes.Options, snes.check_config)


def strategy_class(kind: str, seed_addressed: bool) -> type[Strategy]:
    entry = STRATEGIES.entry(kind)
    return import_target(entry.get("seed_addressed") if seed_addressed else entry.target)


def build_strategy(strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int,
                   seed_addressed: bool = False) -> Strategy:
    """The strategy ``strategy_cfg.kind`` from its config section (``Config.strategy``)."""
    return strategy_class(strategy_cfg.kind, seed_addressed).from_config(strategy_cfg, x0, sigma0, run_seed)
