"""Seed-addressed ES for the full-parameter space (ES at scale, arXiv 2509.24372).

The parameters are too large to hold as a numpy vector, so a candidate is only its
address: row n of ``ask()`` is ``(generation, noise_index, ±sigma)``. The space
regenerates the noise for that address tensor by tensor. ``tell`` turns rewards
into update coefficients with the paper's rule

    θ ← θ + α · (1/N) · Σ_n z_n · ε_n      (z = z-scored reward; 1/σ folded into α)

and hands them to the space as a ``SeedUpdate``. It is the form ``open_es`` takes on a
space whose candidates are seed addresses (the strategy registry's ``seed_addressed``).
Rewards are MAXIMISED.
"""
from __future__ import annotations

import numpy as np

from essa_hpc.strategies.base import SeedUpdate, Strategy
from essa_hpc.strategies.shaping import SHAPERS


class SeedES(Strategy):
    def __init__(self, population: int, sigma: float, learning_rate: float, shaping: str = "z_score",
                 mirrored: bool = False):
        assert not mirrored or population % 2 == 0, "mirrored sampling needs an even population"
        self.population, self.dim = population, 3
        self.sigma, self.lr, self.shaping, self.mirrored = sigma, learning_rate, shaping, mirrored
        self.generation = 0
        self._update: SeedUpdate | None = None

    @classmethod
    def from_config(cls, strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int) -> "SeedES":
        o = strategy_cfg.open_es  # x0 and run_seed are unused: the space holds the weights and the noise
        return cls(strategy_cfg.population, sigma0, o.learning_rate, shaping=o.shaping,
                   mirrored=strategy_cfg.mirrored)

    def ask(self) -> np.ndarray:
        n = np.arange(self.population)
        if self.mirrored:  # members 2k and 2k+1 share noise k with opposite signs
            noise_index, sign = n // 2, np.where(n % 2 == 0, 1.0, -1.0)
        else:
            noise_index, sign = n, np.ones(self.population)
        return np.stack([np.full(self.population, self.generation), noise_index, sign * self.sigma],
                        axis=1).astype(np.float64)

    def tell(self, rewards: np.ndarray) -> dict:
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.population,)
        z_n = SHAPERS[self.shaping](rewards)
        self._update = SeedUpdate(self.lr * z_n / self.population)  # times sign_n · ε_n, summed by the space
        self.generation += 1
        return {}

    def space_update(self) -> SeedUpdate | None:
        return self._update

    @property
    def mean(self) -> np.ndarray:
        return np.array([float(self.generation)])  # the weights themselves live in the space

    def state_dict(self) -> dict:
        return {"generation": self.generation}

    def load_state_dict(self, state: dict) -> None:
        self.generation = int(state["generation"])
