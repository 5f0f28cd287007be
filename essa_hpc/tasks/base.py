"""What a task provides: prompts (training mini-batches, a fixed held-out set,
an SFT split) and pure reward functions ``reward(item, completion) -> float``.

An item is a dict with at least ``prompt`` (the user message) and ``answer``.
``chat: False`` in an item means the prompt is already fully formatted.
Rewards score the completion only, never the prompt.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod

from essa_hpc import seeding


class Task(ABC):
    def __init__(self, cfg, run_seed: int):
        self.cfg = cfg
        self.run_seed = run_seed

    def split(self) -> tuple[list[dict], list[dict]]:
        """(training pool, held-out set), loaded once. Override this, or both accessors below."""
        raise NotImplementedError

    @functools.cached_property
    def _split(self) -> tuple[list[dict], list[dict]]:
        return self.split()

    def train_pool(self) -> list[dict]:
        """Items training mini-batches are drawn from (may be large)."""
        return self._split[0]

    def heldout(self) -> list[dict]:
        """The fixed held-out set (independent of the run seed)."""
        return self._split[1]

    @abstractmethod
    def score(self, item: dict, completion: str) -> float:
        """Held-out metric: exact, verifiable."""

    def reward(self, item: dict, completion: str) -> float:
        """Training reward; defaults to the held-out metric."""
        return self.score(item, completion)

    def sft_target(self, item: dict) -> str:
        """The completion SFT teaches for an item."""
        return str(item["answer"])

    def minibatch(self, generation: int, size: int) -> list[dict]:
        """The prompts every candidate of ``generation`` is scored on; identical on all ranks."""
        pool = self.train_pool()
        gen = seeding.rng(self.run_seed, "minibatch", generation)
        idx = gen.choice(len(pool), size=size, replace=size > len(pool))
        return [pool[i] for i in idx]
