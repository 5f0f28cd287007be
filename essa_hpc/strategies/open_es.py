"""OpenAI-ES (Salimans et al. 2017): mirrored Gaussian sampling, shaped fitness,
SGD or Adam ascent on the estimated reward gradient.

Noise for generation g is regenerated from ``seeding.rng(seed, "strategy", g)``,
so a checkpoint needs only the mean, the optimizer moments and g.
Rewards are MAXIMISED.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from essa_hpc.config.options import choice, opt, positive
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.strategies.base import Strategy
from essa_hpc.strategies.shaping import SHAPERS


@dataclass
class Options:
    """Keys under ``strategy.open_es``."""
    learning_rate: float = opt(0.05, "step size of the optimizer (the paper's alpha for the full space)")
    optimizer: str = opt("adam", "sgd | adam (the full space always takes plain SGD steps)")
    shaping: str = opt("centered_rank", "fitness shaping: centered_rank | z_score")
    weight_decay: float = opt(0.0, "L2 decay toward the start (0 = off; vector spaces only)")


def check_config(cfg) -> None:
    o = cfg.strategy.open_es
    positive(o.learning_rate, "strategy.open_es.learning_rate")
    choice(o.optimizer, ["sgd", "adam"], "strategy.open_es.optimizer")
    choice(o.shaping, sorted(SHAPERS), "strategy.open_es.shaping")
    if o.weight_decay < 0:
        raise ConfigError(f"strategy.open_es.weight_decay must be >= 0, got {o.weight_decay}")


class OpenES(Strategy):
    def __init__(self, x0: np.ndarray, population: int, sigma: float, run_seed: int, learning_rate: float = 0.05,
                 optimizer: str = "adam", shaping: str = "centered_rank", weight_decay: float = 0.0):
        assert population % 2 == 0, "mirrored sampling needs an even population"
        self.population, self.dim = population, len(x0)
        self.sigma, self.lr, self.run_seed = sigma, learning_rate, run_seed
        self.optimizer, self.shaping, self.weight_decay = optimizer, shaping, weight_decay
        self.x0 = np.asarray(x0, dtype=np.float64).copy()
        self._mean = self.x0.copy()
        self.m = np.zeros(self.dim)
        self.v = np.zeros(self.dim)
        self.generation = 0

    @classmethod
    def from_config(cls, strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int) -> "OpenES":
        o = strategy_cfg.open_es  # always mirrored: the +/- pairs are the estimator
        return cls(x0, strategy_cfg.population, sigma0, run_seed, learning_rate=o.learning_rate,
                   optimizer=o.optimizer, shaping=o.shaping, weight_decay=o.weight_decay)

    def noise(self, generation: int) -> np.ndarray:
        """The half-population of directions; row i and row i+half are ±pairs."""
        return seeding.rng(self.run_seed, "strategy", generation).standard_normal((self.population // 2, self.dim))

    def ask(self) -> np.ndarray:
        eps_h = self.noise(self.generation)
        return np.concatenate([self._mean + self.sigma * eps_h, self._mean - self.sigma * eps_h])

    def tell(self, rewards: np.ndarray) -> dict:
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.population,)
        shaped_n = SHAPERS[self.shaping](rewards)
        half = self.population // 2
        eps_h = self.noise(self.generation)
        grad = (shaped_n[:half] - shaped_n[half:]) @ eps_h / (self.population * self.sigma)
        grad -= self.weight_decay * (self._mean - self.x0)
        self._mean = self._mean + self._step(grad)
        self.generation += 1
        return {"grad_norm": float(np.linalg.norm(grad))}

    def _step(self, grad: np.ndarray) -> np.ndarray:
        if self.optimizer == "sgd":
            return self.lr * grad
        b1, b2, t = 0.9, 0.999, self.generation + 1
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        step = self.lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return step * self.m / (np.sqrt(self.v) + 1e-8)

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    def state_dict(self) -> dict:
        return {"mean": self._mean.copy(), "m": self.m.copy(), "v": self.v.copy(), "generation": self.generation}

    def load_state_dict(self, state: dict) -> None:
        self._mean = np.array(state["mean"], dtype=np.float64)
        self.m = np.array(state["m"], dtype=np.float64)
        self.v = np.array(state["v"], dtype=np.float64)
        self.generation = int(state["generation"])
