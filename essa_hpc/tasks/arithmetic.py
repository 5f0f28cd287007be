"""Seeded a∘b arithmetic: operand digits and operators are configurable.

The held-out set is fixed (independent of the run seed) and training draws never
contain a held-out problem. Reward: exact answer on the last number in the
completion; ``task.train_reward`` dense/tiebreak add partial credit during training.
"""
from __future__ import annotations

import functools

from essa_hpc import seeding
from essa_hpc.errors import ConfigError
from essa_hpc.tasks.answers import exact_reward, last_number, numeric_train_reward
from essa_hpc.tasks.base import Task

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
TRAIN_POOL_SIZE = 20_000
HELP = "seeded a∘b problems; task.digits, task.operators and task.prompt_template shape them"


def check_config(cfg) -> None:
    """``cfg``: the task section."""
    if not 1 <= cfg.digits <= 6:
        raise ConfigError(f"task.digits must be 1..6, got {cfg.digits}")
    if "{expr}" not in cfg.prompt_template:
        raise ConfigError(f"task.prompt_template must contain {{expr}}, got {cfg.prompt_template!r}")
    bad = set(cfg.operators) - set("+-*")
    if not cfg.operators or bad:
        raise ConfigError(f"task.operators must be a non-empty subset of '+-*', got {cfg.operators!r}")


class ArithmeticTask(Task):
    def _draw(self, gen, n: int, exclude: set) -> list[dict]:
        lo, hi = 10 ** (self.cfg.digits - 1) if self.cfg.digits > 1 else 0, 10 ** self.cfg.digits
        ops = list(self.cfg.operators)
        out, seen = [], set(exclude)
        space = (hi - lo) ** 2 * len(ops)
        while len(out) < min(n, space - len(exclude)):
            a, b = (int(x) for x in gen.integers(lo, hi, size=2))
            op = ops[int(gen.integers(len(ops)))]
            if (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            prompt = self.cfg.prompt_template.format(expr=f"{a}{op}{b}")
            out.append({"prompt": prompt, "answer": _OPS[op](a, b), "key": (a, op, b)})
        return out

    @functools.cached_property
    def _heldout(self) -> list[dict]:
        # Seed 0, not the run seed: every run is compared on the same problems.
        return self._draw(seeding.rng(0, "heldout", self.cfg.digits), self.cfg.heldout_size, set())

    def heldout(self) -> list[dict]:
        return self._heldout

    @functools.cached_property
    def _pool(self) -> list[dict]:
        exclude = {item["key"] for item in self._heldout}
        return self._draw(seeding.rng(0, "train_items", self.cfg.digits), TRAIN_POOL_SIZE, exclude)

    def train_pool(self) -> list[dict]:
        return self._pool

    def score(self, item: dict, completion: str) -> float:
        return exact_reward(completion, item["answer"])

    def reward(self, item: dict, completion: str) -> float:
        return numeric_train_reward(self.cfg.train_reward, last_number(completion), item["answer"])

    def sft_target(self, item: dict) -> str:
        return str(item["answer"])
