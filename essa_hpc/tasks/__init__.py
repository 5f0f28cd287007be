"""Task registry: ``task.kind`` -> its class, its help line and its model-free checks.

Task modules are light (no torch): each holds its class and ``check_config(task_cfg)``,
which validation calls with the task section. ``numeric=True`` marks tasks whose
answers are numbers, the only ones ``task.train_reward=dense|tiebreak`` applies to;
``inline_reward=True`` marks our own rewards with bounded evaluators, which
``task.reward_isolation=auto`` runs in the rank rather than in a worker process.
``rg`` serves every ``rg:<name>`` (a reasoning-gym dataset). Adding a task: its file
plus one ``TASKS.add`` line.
"""
from __future__ import annotations

from essa_hpc.errors import ConfigError
from essa_hpc.registry import Registry
from essa_hpc.tasks import arithmetic, countdown, custom, gsm8k, math_task, rg

TASKS = Registry("task.kind", "task")
TASKS.add("arithmetic", "essa_hpc.tasks.arithmetic:ArithmeticTask", arithmetic.HELP, check=arithmetic.check_config,
          numeric=True, inline_reward=True)
TASKS.add("countdown", "essa_hpc.tasks.countdown:CountdownTask", "ES at scale's Countdown equations, "
          "format + answer reward", check=countdown.check_config, inline_reward=True)
TASKS.add("gsm8k", "essa_hpc.tasks.gsm8k:GSM8KTask", "grade-school math word problems, exact number",
          check=gsm8k.check_config, numeric=True, inline_reward=True)
TASKS.add("math", "essa_hpc.tasks.math_task:MathTask", "competition math graded on the last \\boxed{} "
          "by math-verify", check=math_task.check_config)
TASKS.add("rg", "essa_hpc.tasks.rg:ReasoningGymTask", "rg:<name>, a reasoning-gym dataset", check=rg.check_config)
TASKS.add("custom", "essa_hpc.tasks.custom:CustomTask", "a plug-in reward, task.reward_fn='module:function'",
          check=custom.check_config)


def family(kind: str) -> str:
    """The registry name serving ``kind`` (``rg:gsm_symbolic`` -> ``rg``)."""
    return "rg" if kind.startswith("rg:") else kind


def check_task_config(cfg) -> None:
    """Cheap checks of the task section before any model loads: kind, options, data paths
    and their columns, the reward plug-in, the reasoning-gym name. Row-level data checks
    run in the task."""
    if family(cfg.kind) not in TASKS or cfg.kind == "rg":
        kinds = [k for k in TASKS.names() if k != "rg"] + ["rg:<name>"]
        raise ConfigError(f"task.kind={cfg.kind!r} is not one of: {', '.join(kinds)}")
    entry = TASKS.entry(family(cfg.kind))
    if cfg.train_reward != "exact" and not entry.get("numeric"):
        numeric = ", ".join(e.name for e in TASKS.entries() if e.get("numeric"))
        raise ConfigError(f"task.train_reward={cfg.train_reward} is for numeric answers ({numeric}), not {cfg.kind}")
    entry.check(cfg)


def reward_isolation(cfg) -> str:
    """Where the task section ``cfg``'s rewards run: ``process`` (a worker killed on timeout) or ``inline``."""
    if cfg.reward_isolation != "auto":
        return cfg.reward_isolation
    return "inline" if TASKS.entry(family(cfg.kind)).get("inline_reward") else "process"


def build_task(cfg, run_seed: int):
    """The task of the task section ``cfg``."""
    return TASKS.load(family(cfg.kind))(cfg, run_seed)
