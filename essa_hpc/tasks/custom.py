"""A task whose reward is a user plug-in: ``task.custom.reward_fn="package.module:function"``.

The function is called as ``fn(item, completion) -> float`` for both the training
reward and the held-out metric (under the ``RewardRunner``'s time limit, so it may
raise or hang without taking the run down; such calls score 0). Items are the
``arithmetic`` generator's (the keys ``task.arithmetic.*``;
``item["answer"]`` is the integer result) or rows of ``task.data_path`` with columns
prompt, answer (``item["answer"]`` as stored; extra columns are kept in the item).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from essa_hpc.config.options import opt
from essa_hpc.errors import ConfigError
from essa_hpc.tasks import data
from essa_hpc.tasks.arithmetic import ArithmeticTask
from essa_hpc.tasks.arithmetic import check_config as check_arithmetic
from essa_hpc.tasks.base import Task

LAYOUTS = [("prompt", "answer")]


def load_reward_fn(spec: str):
    """The callable named by 'module:function' (dots allowed in both parts), or a one-line ConfigError."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"task.custom.reward_fn must look like 'module:function', got {spec!r}")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        raise ConfigError(f"task.custom.reward_fn={spec!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"task.custom.reward_fn={spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"task.custom.reward_fn={spec!r}: {attr!r} is not callable")
    return obj


def row_to_item(row: dict, where: str) -> dict:
    if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        raise ConfigError(f"{where}: empty or non-text 'prompt'")
    if row.get("answer") is None:
        raise ConfigError(f"{where}: missing 'answer'")
    return dict(row)


@dataclass
class Options:
    """Keys under ``task.custom``."""
    reward_fn: str = opt("", "'module:function', reward(item, completion) -> float", resumable=False)


def check_config(cfg) -> None:
    if not cfg.custom.reward_fn:
        raise ConfigError("task.kind=custom needs task.custom.reward_fn='module:function'")
    load_reward_fn(cfg.custom.reward_fn)
    data.check_paths(cfg, LAYOUTS)
    if not cfg.data_path:  # problems come from the arithmetic generator
        check_arithmetic(cfg)


class CustomTask(Task):
    def __init__(self, cfg, run_seed: int):
        super().__init__(cfg, run_seed)
        self.fn = load_reward_fn(cfg.custom.reward_fn)

    def split(self) -> tuple[list[dict], list[dict]]:
        if self.cfg.data_path:
            return data.train_and_heldout(self.cfg, row_to_item)
        generated = ArithmeticTask(self.cfg, self.run_seed)
        return generated.train_pool(), generated.heldout()

    def score(self, item: dict, completion: str) -> float:
        # As returned: the RewardRunner counts a non-number or NaN as a fault instead of coercing it.
        return self.fn(item, completion)
