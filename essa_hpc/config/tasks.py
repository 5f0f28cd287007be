"""The tasks: ``task.kind`` -> its declaration. Adding one: its file under ``essa_hpc/tasks/``
(a ``Task`` subclass, ``check_config(task_cfg)`` and, if it has keys of its own, an
``Options`` dataclass: the section ``task.<kind>``; all without torch) plus one ``Spec``
here, or an entry point in the group ``essa_hpc.tasks`` from another package.
``rg`` serves every ``rg:<name>`` (a reasoning-gym dataset)."""
from __future__ import annotations

from essa_hpc.config.kinds import Kind, Spec
from essa_hpc.errors import ConfigError

CAPABILITIES = {
    "numeric": "its answers are numbers, so task.train_reward=dense|tiebreak can give partial credit",
    "inline_reward": "its rewards are our own bounded evaluators, which task.reward_isolation=auto runs in the rank "
                     "rather than in a worker process",
    "family": "it serves every kind '<name>:<dataset>' (e.g. rg:gsm_symbolic); the bare name alone is not a task",
}

TASKS = Kind("task.kind", "task", "essa_hpc.tasks", CAPABILITIES, [
    Spec("arithmetic", "essa_hpc.tasks.arithmetic:ArithmeticTask", "seeded a∘b problems shaped by task.arithmetic.*",
         "essa_hpc.tasks.arithmetic:Options", "essa_hpc.tasks.arithmetic:check_config",
         caps={"numeric": True, "inline_reward": True}),
    Spec("countdown", "essa_hpc.tasks.countdown:CountdownTask", "ES at scale's Countdown equations, format + answer "
         "reward", check="essa_hpc.tasks.countdown:check_config", caps={"inline_reward": True}),
    Spec("gsm8k", "essa_hpc.tasks.gsm8k:GSM8KTask", "grade-school math word problems, exact number",
         check="essa_hpc.tasks.gsm8k:check_config", caps={"numeric": True, "inline_reward": True}),
    Spec("math", "essa_hpc.tasks.math_task:MathTask", "competition math graded on the last \\boxed{} by "
         "math-verify", check="essa_hpc.tasks.math_task:check_config"),
    Spec("rg", "essa_hpc.tasks.rg:ReasoningGymTask", "rg:<name>, a reasoning-gym dataset",
         check="essa_hpc.tasks.rg:check_config", caps={"family": True}),
    Spec("custom", "essa_hpc.tasks.custom:CustomTask", "a plug-in reward, task.custom.reward_fn='module:function', "
         "on task.data_path or the arithmetic problems", "essa_hpc.tasks.custom:Options",
         "essa_hpc.tasks.custom:check_config"),
])


def family(kind: str) -> str:
    """The declared name serving ``kind`` (``rg:gsm_symbolic`` -> ``rg``)."""
    head, sep, _ = kind.partition(":")
    return head if sep and head in TASKS and TASKS.spec(head).get("family") else kind


def check_task_config(cfg) -> None:
    """Cheap checks of the task section before any model loads: kind, options, data paths
    and their columns, the reward plug-in, the reasoning-gym name. Row-level data checks
    run in the task."""
    name = family(cfg.kind)
    if name not in TASKS or (name == cfg.kind and TASKS.spec(name).get("family")):
        kinds = [s.name + (":<name>" if s.get("family") else "") for s in TASKS.specs()]
        raise ConfigError(f"task.kind={cfg.kind!r} is not one of: {', '.join(kinds)}")
    spec = TASKS.spec(name)
    if cfg.train_reward != "exact" and not spec.get("numeric"):
        numeric = ", ".join(TASKS.with_capability("numeric"))
        raise ConfigError(f"task.train_reward={cfg.train_reward} is for numeric answers ({numeric}), not {cfg.kind}")
    spec.run_check(cfg)


def reward_isolation(cfg) -> str:
    """Where the task section ``cfg``'s rewards run: ``process`` (a worker killed on timeout) or ``inline``."""
    if cfg.reward_isolation != "auto":
        return cfg.reward_isolation
    return "inline" if TASKS.spec(family(cfg.kind)).get("inline_reward") else "process"
