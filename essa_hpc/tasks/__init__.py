"""Task registry: ``task.kind`` -> Task class; config checks that need no model."""
from __future__ import annotations

from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.tasks.base import Task


def registry() -> dict:
    """kind -> Task class; ``rg`` serves every ``rg:<name>`` (a reasoning-gym dataset)."""
    from essa_hpc.tasks.arithmetic import ArithmeticTask
    from essa_hpc.tasks.countdown import CountdownTask
    from essa_hpc.tasks.custom import CustomTask
    from essa_hpc.tasks.gsm8k import GSM8KTask
    from essa_hpc.tasks.math_task import MathTask
    from essa_hpc.tasks.rg import ReasoningGymTask

    return {"arithmetic": ArithmeticTask, "countdown": CountdownTask, "gsm8k": GSM8KTask, "math": MathTask,
            "rg": ReasoningGymTask, "custom": CustomTask}


def _family(kind: str) -> str:
    return "rg" if kind.startswith("rg:") else kind


def check_task_config(cfg: TaskConfig) -> None:
    """Cheap checks before any model loads: kind, options, data paths and their columns,
    the reward plug-in, the reasoning-gym name. Row-level data checks run in the task."""
    from essa_hpc.tasks import countdown, custom, gsm8k, math_task, rg

    kinds = [k for k in registry() if k != "rg"] + ["rg:<name>"]
    family = _family(cfg.kind)
    if family not in registry() or cfg.kind == "rg":
        raise ConfigError(f"task.kind={cfg.kind!r} is not one of: {', '.join(kinds)}")
    if cfg.train_reward != "exact" and family not in ("arithmetic", "gsm8k"):
        raise ConfigError(f"task.train_reward={cfg.train_reward} is for numeric answers (arithmetic, gsm8k), "
                          f"not {cfg.kind}")
    modules = {"countdown": countdown, "gsm8k": gsm8k, "math": math_task, "rg": rg, "custom": custom}
    if family in modules:
        modules[family].check_config(cfg)
    if family == "arithmetic" or (family == "custom" and not cfg.data_path):
        if not 1 <= cfg.digits <= 6:
            raise ConfigError(f"task.digits must be 1..6, got {cfg.digits}")
        if "{expr}" not in cfg.prompt_template:
            raise ConfigError(f"task.prompt_template must contain {{expr}}, got {cfg.prompt_template!r}")
        bad = set(cfg.operators) - set("+-*")
        if not cfg.operators or bad:
            raise ConfigError(f"task.operators must be a non-empty subset of '+-*', got {cfg.operators!r}")


def build_task(cfg: TaskConfig, run_seed: int) -> Task:
    return registry()[_family(cfg.kind)](cfg, run_seed)
