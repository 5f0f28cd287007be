"""Separable natural evolution strategies (SNES; Schaul, Glasmachers & Schmidhuber 2011,
and Wierstra et al., JMLR 2014, Alg. 6): a Gaussian with a mean and one step size per
coordinate, both moved along the natural gradient of the expected utility.

    x_k = μ + σ ⊙ z_k,    z_k ~ N(0, I)
    μ ← μ + η_μ · σ ⊙ Σ_k u_k z_k
    σ ← σ ⊙ exp(η_σ / 2 · Σ_k u_k (z_k² − 1))

with the papers' rank utilities ``u`` (best first: max(0, log(λ/2+1) − log k), normalised,
minus 1/λ) and defaults η_μ = 1, η_σ = (3 + ln d) / (5 √d). Its cost is O(λ·d) like
OpenAI-ES, but it adapts a step size per singular value, which CMA-ES's separable form
also does. The noise of generation g is regenerated from ``seeding.rng(seed, "strategy",
g)``, so a checkpoint holds only μ, σ and g. Rewards are MAXIMISED.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from essa_hpc.config.options import opt, positive
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.strategies.base import Strategy


@dataclass
class Options:
    """Keys under ``strategy.snes``."""
    lr_mean: float = opt(1.0, "eta_mu, the mean's learning rate (the papers' 1.0)")
    lr_sigma: float = opt(0.0, "eta_sigma, the step sizes' learning rate; 0 = the papers' (3 + ln d) / (5 sqrt d)")


def check_config(cfg) -> None:
    o = cfg.strategy.snes
    positive(o.lr_mean, "strategy.snes.lr_mean")
    if o.lr_sigma < 0:
        raise ConfigError(f"strategy.snes.lr_sigma must be >= 0 (0 = the default rate), got {o.lr_sigma}")


def rank_utilities(rewards: np.ndarray) -> np.ndarray:
    """NES utilities: the best gets the most, the worse half 0 before centring; they sum to 0.
    Tied rewards share the mean utility of their ranks, so all-equal rewards give all zeros.
    NaN counts as the worst reward."""
    r = np.where(np.isnan(rewards), -np.inf, np.asarray(rewards, dtype=np.float64))
    lam = len(r)
    if len(np.unique(r)) == 1:
        return np.zeros(lam)  # exactly: the tie mean of the utilities is 0 only up to rounding
    raw = np.maximum(0.0, np.log(lam / 2 + 1) - np.log(np.arange(1, lam + 1)))
    utilities = np.empty(lam)
    utilities[np.argsort(-r, kind="stable")] = raw / raw.sum() - 1.0 / lam  # best first
    for v in np.unique(r):
        tie = r == v
        if tie.sum() > 1:
            utilities[tie] = utilities[tie].mean()
    return utilities


class SNES(Strategy):
    def __init__(self, x0: np.ndarray, population: int, sigma0: float, run_seed: int, lr_mean: float = 1.0,
                 lr_sigma: float = 0.0, mirrored: bool = True):
        assert not mirrored or population % 2 == 0, "mirrored sampling needs an even population"
        self.population, self.dim, self.run_seed, self.mirrored = population, len(x0), run_seed, mirrored
        self.lr_mean = lr_mean
        self.lr_sigma = lr_sigma or (3 + np.log(self.dim)) / (5 * np.sqrt(self.dim))
        self._mean = np.asarray(x0, dtype=np.float64).copy()
        self.sigma = np.full(self.dim, float(sigma0))
        self.generation = 0

    @classmethod
    def from_config(cls, strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int) -> "SNES":
        o = strategy_cfg.snes
        return cls(x0, strategy_cfg.population, sigma0, run_seed, lr_mean=o.lr_mean, lr_sigma=o.lr_sigma,
                   mirrored=strategy_cfg.mirrored)

    def noise(self, generation: int) -> np.ndarray:
        """z for every member of ``generation``; mirrored members k and k + λ/2 are ±pairs."""
        gen = seeding.rng(self.run_seed, "strategy", generation)
        if not self.mirrored:
            return gen.standard_normal((self.population, self.dim))
        half = gen.standard_normal((self.population // 2, self.dim))
        return np.concatenate([half, -half])

    def ask(self) -> np.ndarray:
        return self._mean + self.sigma * self.noise(self.generation)

    def tell(self, rewards: np.ndarray) -> dict:
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.population,)
        z = self.noise(self.generation)
        u = rank_utilities(rewards)
        self._mean = self._mean + self.lr_mean * self.sigma * (u @ z)
        self.sigma = self.sigma * np.exp(self.lr_sigma / 2 * (u @ (z * z - 1.0)))
        self.generation += 1
        return {"sigma": float(self.sigma.mean())}

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    def state_dict(self) -> dict:
        return {"mean": self._mean.copy(), "sigma": self.sigma.copy(), "generation": self.generation}

    def load_state_dict(self, state: dict) -> None:
        self._mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = np.array(state["sigma"], dtype=np.float64)
        self.generation = int(state["generation"])
