"""The ask/tell contract every strategy keeps.

Pure numpy: no MPI, no torch model, no file I/O. Rewards are MAXIMISED.
``state_dict()`` returns plain arrays and scalars so checkpoints never pickle.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SeedUpdate:
    """The update of a space whose parameters live in the space, not in the strategy
    (the full space): ``θ ← θ + Σ_n coefficients[n] · ε_n``, where ``ε_n`` is the noise
    of candidate n of the generation just told, signed as in ``ask()``. The space
    regenerates ``ε_n`` from the seeds and applies the sum tensor by tensor."""
    coefficients: np.ndarray  # [population], float64


class Strategy(ABC):
    population: int
    dim: int

    @abstractmethod
    def ask(self) -> np.ndarray:
        """Candidates for this generation, shape [population, dim]."""

    @abstractmethod
    def tell(self, rewards: np.ndarray) -> dict:
        """Update from rewards (higher is better) for the candidates of the last ask."""

    @property
    @abstractmethod
    def mean(self) -> np.ndarray:
        """The current best estimate: the adapter that is evaluated and exported."""

    def space_update(self) -> SeedUpdate | None:
        """What the space must apply after the last ``tell``; None when ``mean`` is the whole state."""
        return None

    @abstractmethod
    def state_dict(self) -> dict:
        ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        ...


def rng_state(gen: np.random.Generator) -> dict:
    return gen.bit_generator.state


def set_rng_state(gen: np.random.Generator, state: dict) -> None:
    gen.bit_generator.state = state
