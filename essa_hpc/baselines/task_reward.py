"""Our task reward as a TRL reward function.

``GRPOTrainer(reward_funcs=[TaskReward(...)])`` calls ``reward(prompts, completions, **columns)`` with the
dataset's non-prompt columns, one entry per completion. The dataset of ``prompts.prompt_dataset`` carries
``item_index``, so the task item is looked up in the item list the dataset was built from, and scored by
the task's ``reward(item, completion)`` through ``RewardRunner`` (time limit; a reward that raises or hangs
scores 0 instead of stopping training), the same path ESSA's rewards take.
"""
from __future__ import annotations

import numpy as np

from essa_hpc.rewards import RewardRunner


def completion_text(completion) -> str:
    """The generated text of a TRL completion: a plain string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):  # conversational
        return str(completion[-1].get("content", ""))
    return str(completion)


class TaskReward:
    """TRL reward function over our task reward; ``items[i]`` is the item of dataset row ``item_index == i``.
    It also counts the completions it scored (``samples``) and keeps their rewards for ``pop_mean``, which
    is how the metrics line of a step gets its training reward."""

    def __init__(self, runner: RewardRunner, items: list[dict]):
        self.runner, self.items = runner, items
        self.__name__ = "task_reward"  # TRL logs rewards/<name>/mean
        self.samples = 0
        self._window: list[float] = []

    def __call__(self, prompts, completions, item_index, **columns) -> list[float]:
        texts = [completion_text(c) for c in completions]
        items = [dict(self.items[int(i)]) for i in item_index]  # a copy: a reward cannot alter later steps
        rewards = self.runner.rewards(items, texts).tolist()
        self.samples += len(texts)
        self._window += rewards
        return rewards

    def pop_mean(self) -> float | None:
        """Mean training reward since the last call (None when nothing was scored)."""
        window, self._window = self._window, []
        return float(np.mean(window)) if window else None
