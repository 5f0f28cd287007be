"""What a task provides: prompts (training mini-batches, a fixed held-out set,
an optional validation set, an SFT split) and pure reward functions
``reward(item, completion) -> float``.

Three disjoint sets: the held-out set (scored for reported numbers only), the validation set
(``task.validation_size`` items taken out of the training pool, for tuning and best-adapter
selection) and the training items every mini-batch and SFT step draws from.

An item is a dict with at least ``prompt`` (the user message) and ``answer``.
``chat: False`` in an item means the prompt is already fully formatted.
Rewards score the completion only, never the prompt.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod

from essa_hpc.runtime import seeding


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

    @functools.cached_property
    def _training_and_validation(self) -> tuple[list[dict], list[dict]]:
        pool, n = self.train_pool(), int(getattr(self.cfg, "validation_size", 0))
        if n == 0:
            return pool, []
        if n >= len(pool):
            from essa_hpc.errors import ConfigError
            raise ConfigError(f"task.validation_size={n} leaves no training items (the pool has {len(pool)})")
        # Seed 0, not the run seed: every run and every tuning arm is scored on the same items.
        chosen = set(seeding.rng(0, "validation_items").choice(len(pool), size=n, replace=False).tolist())
        return ([x for i, x in enumerate(pool) if i not in chosen], [pool[i] for i in sorted(chosen)])

    def training_items(self) -> list[dict]:
        """The pool less the validation set: what mini-batches and SFT steps draw from."""
        return self._training_and_validation[0]

    def validation(self) -> list[dict]:
        """The validation set (empty unless ``task.validation_size`` > 0), disjoint from the rest."""
        return self._training_and_validation[1]

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
        pool = self.training_items()
        gen = seeding.rng(self.run_seed, "minibatch", generation)
        idx = gen.choice(len(pool), size=size, replace=size > len(pool))
        return [pool[i] for i in idx]
