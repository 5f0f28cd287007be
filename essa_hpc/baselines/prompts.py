"""The training prompts of a baseline, seen through TRL.

The prompt set is the seeded mini-batch stream ESSA draws from (``prompt_items``), and the ``prompt``
column is rendered by the ``PromptRenderer`` the rollout scores with (chat template + ``task.system_prompt``
when the model has a template). ``RolloutPrompts`` then makes TRL take the token ids from
``PromptRenderer.token_ids`` instead of tokenizing the text itself, so the tokens a baseline trains on are
the tokens ESSA is scored on.

Besides ``prompt`` the dataset holds only ``item_index``, the row's position in the item list: TRL hands
every non-prompt column to reward functions, so ``TaskReward`` looks the full task item up by it (and
ESO finds the gold answers of a batch by it). Items never travel through Arrow, whatever their fields.
"""
from __future__ import annotations

from essa_hpc.generation.prompts import PromptRenderer


def prompt_items(task, n: int, per_step: int) -> list[dict]:
    """The first ``n`` prompts of the seeded mini-batch stream: step s uses ``task.minibatch(s, per_step)``
    (the generation-s batch ESSA draws when ``task.batch_size == per_step``)."""
    out: list[dict] = []
    step = 0
    while len(out) < n:
        out += task.minibatch(step, per_step)
        step += 1
    return out[:n]


def prompt_dataset(items: list[dict], prompts: PromptRenderer):
    """``datasets.Dataset`` with ``prompt`` (rendered by ``prompts``, the rollout's renderer) and ``item_index``."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": prompts.render(it), "item_index": i} for i, it in enumerate(items)])


class RolloutPrompts:
    """GRPOTrainer mixin: prompt token ids come from ``HFRollout.token_ids`` instead of TRL's own
    tokenization (which adds special tokens to plain-text prompts), so both see identical tokens."""

    def __init__(self, *args, prompt_ids: dict[str, list[int]], **kwargs):
        self.rollout_prompt_ids = prompt_ids
        super().__init__(*args, **kwargs)

    def _tokenize_prompts(self, prompts: list):  # overrides GRPOTrainer._tokenize_prompts (trl 1.16)
        return [list(self.rollout_prompt_ids[p]) for p in prompts], None, {}
