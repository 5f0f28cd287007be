"""Strategy registry: ``strategy.kind`` -> a constructor taking (config, x0, sigma0)."""
from __future__ import annotations

import numpy as np

from essa_hpc.config import Config
from essa_hpc.strategies.base import Strategy
from essa_hpc.strategies.cma_es import CMAES
from essa_hpc.strategies.open_es import OpenES
from essa_hpc.strategies.seed_es import SeedES


def build_strategy(cfg: Config, x0: np.ndarray, sigma0: float) -> Strategy:
    s = cfg.strategy
    if s.kind == "cma_es":
        return CMAES(x0, s.population, sigma0, cfg.run.seed, covariance=s.covariance, mirrored=s.mirrored,
                     ties=s.ties)
    if s.kind == "open_es" and cfg.space.kind == "full":
        return SeedES(s.population, sigma0, s.learning_rate, shaping=s.shaping, mirrored=s.mirrored)
    if s.kind == "open_es":
        return OpenES(x0, s.population, sigma0, cfg.run.seed, learning_rate=s.learning_rate,
                      optimizer=s.optimizer, shaping=s.shaping, weight_decay=s.weight_decay)
    raise KeyError(s.kind)


KINDS = ["cma_es", "open_es"]
