"""GSM8K grade-school math (Cobbe et al., arXiv 2110.14168), the ESSA paper's main benchmark
(arXiv 2507.04453, §4).

Data: ``task.data_path`` (local save_to_disk/json/parquet) or, when empty, the hub's
``openai/gsm8k`` "main" config (train for training, test for held-out; needs network).
Two layouts are read: the original (question, answer with a final ``#### N`` line) and a
numeric one (problem, answer).

Reward: exact numeric match of the number after the last ``####`` in the completion,
or of its last number when there is no ``####``; ``task.train_reward=dense`` gives
partial credit by distance during training only.
"""
from __future__ import annotations

import re

from essa_hpc.errors import ConfigError
from essa_hpc.tasks import data
from essa_hpc.tasks.answers import final_number, number_after_marker, numbers_equal, numeric_train_reward, parse_number
from essa_hpc.tasks.base import Task

HUB_ID, HUB_CONFIG = "openai/gsm8k", "main"
LAYOUTS = [("question", "answer"), ("problem", "answer")]
INSTRUCTION = "\n\nSolve the problem step by step, then give the final answer on its own line as '#### <number>'."


def _format(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def row_to_item(row: dict, where: str) -> dict:
    question = row.get("question", row.get("problem"))
    if not isinstance(question, str) or not question.strip():
        raise ConfigError(f"{where}: empty or non-text question/problem")
    raw = row.get("answer")
    reasoning = None
    if isinstance(raw, str) and "####" in raw:
        gold = number_after_marker(raw)
        reasoning = re.sub(r"<<[^>]*>>", "", raw).strip()  # drop GSM8K's calculator annotations
    else:
        gold = parse_number(raw)
    if gold is None:
        raise ConfigError(f"{where}: cannot parse the answer {str(raw)[-60:]!r} as a number")
    return {"prompt": question.strip() + INSTRUCTION, "answer": gold, "reasoning": reasoning}


def check_config(cfg) -> None:
    if cfg.heldout_path and not cfg.data_path:
        data.require_columns(cfg.heldout_path, LAYOUTS, "task.heldout_path")
        return
    data.check_paths(cfg, LAYOUTS)


def _hub_rows(split: str) -> list[dict]:
    import datasets
    try:
        return datasets.load_dataset(HUB_ID, HUB_CONFIG, split=split).to_list()
    except Exception as e:  # noqa: BLE001 - no network, no cache: say what to do instead
        raise ConfigError(f"cannot load {HUB_ID} ({HUB_CONFIG}/{split}) from the hub ({type(e).__name__}); "
                          "set task.data_path to local json/parquet/save_to_disk files") from None


class GSM8KTask(Task):
    def split(self) -> tuple[list[dict], list[dict]]:
        cfg = self.cfg
        if cfg.data_path:
            return data.train_and_heldout(cfg, row_to_item)
        train = [row_to_item(r, f"{HUB_ID} train row {i}") for i, r in enumerate(_hub_rows("train"))]
        if cfg.heldout_path:
            rows = data.load_rows(cfg.heldout_path, "task.heldout_path")
            where = f"task.heldout_path={cfg.heldout_path} row"
        else:
            rows, where = _hub_rows("test"), f"{HUB_ID} test row"
        heldout = [row_to_item(r, f"{where} {i}") for i, r in enumerate(rows[:cfg.heldout_size])]
        seen = {it["prompt"] for it in heldout}
        return [it for it in train if it["prompt"] not in seen], heldout

    def score(self, item: dict, completion: str) -> float:
        return 1.0 if numbers_equal(final_number(completion), item["answer"]) else 0.0

    def reward(self, item: dict, completion: str) -> float:
        return numeric_train_reward(self.cfg.train_reward, final_number(completion), item["answer"])

    def sft_target(self, item: dict) -> str:
        """The worked solution when the data has one, else a one-line answer; both end in '#### N'."""
        if item.get("reasoning"):
            return item["reasoning"]
        n = _format(item["answer"])
        return f"The answer is {n}.\n#### {n}"
