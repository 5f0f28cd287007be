"""Tasks: prompts, held-out sets and pure rewards. Their declarations are in
``essa_hpc.config.tasks``; this builds the chosen one."""
from __future__ import annotations

from essa_hpc.config.tasks import TASKS, family


def build_task(cfg, run_seed: int):
    """The task of the task section ``cfg``."""
    return TASKS.load(family(cfg.kind))(cfg, run_seed)
