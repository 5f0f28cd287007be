"""Task registry: ``task.kind`` -> Task class; config checks that need no model."""
from __future__ import annotations

from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.tasks.base import Task


def registry() -> dict:
    from essa_hpc.tasks.arithmetic import ArithmeticTask

    return {"arithmetic": ArithmeticTask}


def check_task_config(cfg: TaskConfig) -> None:
    kinds = registry()
    if cfg.kind not in kinds:
        raise ConfigError(f"task.kind={cfg.kind!r} is not one of: {', '.join(kinds)}")
    if cfg.kind == "arithmetic":
        if not 1 <= cfg.digits <= 6:
            raise ConfigError(f"task.digits must be 1..6, got {cfg.digits}")
        bad = set(cfg.operators) - set("+-*")
        if not cfg.operators or bad:
            raise ConfigError(f"task.operators must be a non-empty subset of '+-*', got {cfg.operators!r}")


def build_task(cfg: TaskConfig, run_seed: int) -> Task:
    return registry()[cfg.kind](cfg, run_seed)
