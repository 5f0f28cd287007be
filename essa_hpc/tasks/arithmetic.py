"""Seeded a∘b arithmetic: operand digits and operators are configurable.

The held-out set is fixed (independent of the run seed) and training draws never
contain a held-out problem. Reward: exact answer on the last number in the
completion; ``task.train_reward`` dense/tiebreak add partial credit during training.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from essa_hpc.config.options import opt
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.tasks.answers import exact_reward, last_number, numeric_train_reward
from essa_hpc.tasks.base import Task

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
TRAIN_POOL_SIZE = 20_000


@dataclass
class Options:
    """Keys under ``task.arithmetic`` (also the problems of ``task.kind=custom`` without data)."""
    digits: int = opt(2, "digits per operand", resumable=False)
    operators: str = opt("+-", "operators to draw from, any of '+-*'", resumable=False)
    prompt_template: str = opt("What is {expr}?", "the question, with {expr} for e.g. '12+35'; '{expr}=' with "
                               "model.chat_template=false gives short raw prompts", resumable=False)


def check_config(cfg) -> None:
    """``cfg``: the task section."""
    o = cfg.arithmetic
    if not 1 <= o.digits <= 6:
        raise ConfigError(f"task.arithmetic.digits must be 1..6, got {o.digits}")
    if "{expr}" not in o.prompt_template:
        raise ConfigError(f"task.arithmetic.prompt_template must contain {{expr}}, got {o.prompt_template!r}")
    bad = set(o.operators) - set("+-*")
    if not o.operators or bad:
        raise ConfigError(f"task.arithmetic.operators must be a non-empty subset of '+-*', got {o.operators!r}")


class ArithmeticTask(Task):
    def _draw(self, gen, n: int, exclude: set) -> list[dict]:
        lo, hi = 10 ** (self.cfg.arithmetic.digits - 1) if self.cfg.arithmetic.digits > 1 else 0, 10 ** self.cfg.arithmetic.digits
        ops = list(self.cfg.arithmetic.operators)
        out, seen = [], set(exclude)
        space = (hi - lo) ** 2 * len(ops)
        while len(out) < min(n, space - len(exclude)):
            a, b = (int(x) for x in gen.integers(lo, hi, size=2))
            op = ops[int(gen.integers(len(ops)))]
            if (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            prompt = self.cfg.arithmetic.prompt_template.format(expr=f"{a}{op}{b}")
            out.append({"prompt": prompt, "answer": _OPS[op](a, b), "key": (a, op, b)})
        return out

    @functools.cached_property
    def _heldout(self) -> list[dict]:
        # Seed 0, not the run seed: every run is compared on the same problems.
        return self._draw(seeding.rng(0, "heldout", self.cfg.arithmetic.digits), self.cfg.heldout_size, set())

    def heldout(self) -> list[dict]:
        return self._heldout

    @functools.cached_property
    def _pool(self) -> list[dict]:
        exclude = {item["key"] for item in self._heldout}
        return self._draw(seeding.rng(0, "train_items", self.cfg.arithmetic.digits), TRAIN_POOL_SIZE, exclude)

    def train_pool(self) -> list[dict]:
        return self._pool

    def score(self, item: dict, completion: str) -> float:
        return exact_reward(completion, item["answer"])

    def reward(self, item: dict, completion: str) -> float:
        return numeric_train_reward(self.cfg.train_reward, last_number(completion), item["answer"])

    def sft_target(self, item: dict) -> str:
        return str(item["answer"])
