"""The ask/tell contract every strategy keeps.

Pure numpy: no MPI, no torch model, no file I/O. Rewards are MAXIMISED.
``state_dict()`` returns plain arrays and scalars so checkpoints never pickle.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


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
