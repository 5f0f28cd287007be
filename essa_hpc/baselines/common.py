"""Glue shared by the gradient baselines: our task, rollout and metrics seen through TRL.

- ``prompt_items`` / ``prompt_dataset``: the training prompts as a ``datasets.Dataset``. The ``prompt``
  column is rendered exactly as ``HFRollout.render`` renders it (chat template + ``task.system_prompt``
  when the model has a template), and ``RolloutPrompts`` makes TRL use ``HFRollout.token_ids`` for it, so
  the tokens a baseline trains on are the tokens ESSA is scored on. Every Arrow-storable item field is a
  column too (the user message as ``item_prompt``); TRL hands columns to reward functions as keyword
  arguments (TRL docs: "Reward functions receive dataset columns as keyword arguments").
- ``TaskReward``: ``reward_func(prompts, completions, **columns) -> list[float]`` for
  ``GRPOTrainer(reward_funcs=...)``; it rebuilds the task item from the columns and calls the task's
  ``reward(item, completion)`` through ``RewardRunner`` (time limit, never raises).
- ``MetricsCallback``: a ``transformers.TrainerCallback`` writing ``<run_dir>/metrics.jsonl`` lines with
  the fields ``essa-hpc train`` writes where they apply (``generation`` = optimizer step,
  ``heldout_reward``, ``reward_mean``) plus ``method``, ``wall_s`` and ``samples`` so ESSA and the
  baselines share one plot. ``wall_s`` counts from the moment line 0 is written (everything a method
  spends afterwards: TR-DPO's pair sampling, TRL setup, steps, held-out evaluations); ``eval_wall_s``
  is the part of it spent on held-out evaluation. ``samples`` counts training completions generated.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from essa_hpc import seeding
from essa_hpc.comm import Comm
from essa_hpc.evaluation import heldout_score
from essa_hpc.rewards import RewardRunner
from essa_hpc.rollout import HFRollout
from essa_hpc.runlog import MetricsLog

log = logging.getLogger(__name__)
# Names TRL itself passes to reward functions, or reads from rows: item fields must not shadow them.
RESERVED = {"prompt", "prompts", "completion", "completions", "completion_ids", "trainer_state", "log_extra",
            "log_metric", "environments", "environment", "image", "images", "item_index"}
SCALARS = (bool, int, float, str)


def trl_seed(cfg) -> int:
    """The seed TRL's ``set_seed`` gets (numpy needs < 2**32)."""
    return seeding.int_seed(cfg.run.seed, "sampling", 2**33) % 2**31


def trl_cpu_args(cfg, run_dir: Path) -> dict:
    """TrainingArguments every baseline shares (use_cpu, no bf16, no gradient checkpointing on CPU)."""
    b = cfg.baseline
    return dict(output_dir=str(run_dir / "trl"), max_steps=b.steps, learning_rate=b.learning_rate,
                lr_scheduler_type="constant", warmup_steps=0, gradient_accumulation_steps=1,
                use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to="none",
                save_strategy="no", logging_steps=1, disable_tqdm=not cfg.run.progress,
                dataloader_num_workers=0, seed=trl_seed(cfg))


def prompt_items(task, n: int, per_step: int) -> list[dict]:
    """The first ``n`` prompts of the seeded mini-batch stream: step s uses ``task.minibatch(s, per_step)``
    (the generation-s batch ESSA draws when ``task.batch_size == per_step``)."""
    out: list[dict] = []
    step = 0
    while len(out) < n:
        out += task.minibatch(step, per_step)
        step += 1
    return out[:n]


def _kind(value):
    if isinstance(value, SCALARS):
        return type(value)
    if isinstance(value, list) and value and all(type(v) is type(value[0]) and isinstance(v, SCALARS) for v in value):
        return (list, type(value[0]))
    return None  # not storable as one Arrow type: restored from the item through item_index


def column_name(key: str) -> str:
    return "item_" + key if key in RESERVED else key


def item_columns(items: list[dict]) -> list[str]:
    """Item fields that become dataset columns: present in every item with one Arrow-storable type."""
    keys = [k for k in items[0] if all(k in it for it in items)]
    return [k for k in keys if _kind(items[0][k]) is not None and all(_kind(it[k]) == _kind(items[0][k]) for it in items)]


def prompt_dataset(items: list[dict], rollout: HFRollout):
    """``datasets.Dataset``: ``prompt`` (rendered as our rollout renders it), ``item_index`` and the item fields."""
    from datasets import Dataset

    keys = item_columns(items)
    rows = [{"prompt": rollout.render(it), "item_index": i, **{column_name(k): it[k] for k in keys}}
            for i, it in enumerate(items)]
    return Dataset.from_list(rows)


class RolloutPrompts:
    """GRPOTrainer mixin: prompt token ids come from ``HFRollout.token_ids`` instead of TRL's own
    tokenization (which adds special tokens to plain-text prompts), so both see identical tokens."""

    def __init__(self, *args, prompt_ids: dict[str, list[int]], **kwargs):
        self.rollout_prompt_ids = prompt_ids
        super().__init__(*args, **kwargs)

    def _tokenize_prompts(self, prompts: list):  # overrides GRPOTrainer._tokenize_prompts (trl 1.16)
        return [list(self.rollout_prompt_ids[p]) for p in prompts], None, {}


def completion_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):  # conversational
        return str(completion[-1].get("content", ""))
    return str(completion)


class TaskReward:
    """TRL reward function over our task reward. ``items`` (optional) restores fields that could not be
    stored as columns; the columns themselves always win."""

    def __init__(self, runner: RewardRunner, items: list[dict] | None = None, columns: list[str] | None = None):
        self.runner, self.items = runner, items
        self.columns = None if columns is None else set(columns)
        self.__name__ = "task_reward"  # TRL logs rewards/<name>/mean
        self.samples = 0
        self._window: list[float] = []

    def item(self, i: int, columns: dict) -> dict:
        known = self.columns
        row = {k: v[i] for k, v in columns.items()
               if (k in known if known is not None else isinstance(v, (list, tuple)))}
        idx = row.pop("item_index", None)
        base = dict(self.items[idx]) if self.items is not None and idx is not None else {}
        for key, value in row.items():
            base[key[len("item_"):] if key.startswith("item_") and key[len("item_"):] in RESERVED else key] = value
        return base

    def __call__(self, prompts, completions, **columns) -> list[float]:
        texts = [completion_text(c) for c in completions]
        rewards = self.runner.rewards([self.item(i, columns) for i in range(len(texts))], texts)
        self.samples += len(texts)
        self._window += rewards.tolist()
        return rewards.tolist()

    def pop_mean(self) -> float | None:
        """Mean training reward since the last call (None when nothing was scored)."""
        window, self._window = self._window, []
        return float(np.mean(window)) if window else None


class BaselineRun:
    """Held-out scoring and the metrics.jsonl writer of one baseline run."""

    def __init__(self, cfg, parts, run_dir: Path, method: str):
        self.cfg, self.parts, self.run_dir, self.method = cfg, parts, Path(run_dir), method
        self.heldout_items = parts.task.heldout()
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=True)
        self.metrics.reset([])
        self.t0 = time.perf_counter()
        self.eval_wall_s = 0.0
        self.samples = 0

    def heldout(self, model) -> tuple[float, float]:
        """Exact-match held-out score of ``model`` as it is now (greedy unless rollout.temperature > 0)."""
        t = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            rollout = HFRollout(model, self.parts.tokenizer, self.cfg)
            score = heldout_score(rollout, None, self.parts.scorer, None, self.heldout_items,
                                  self.cfg.rollout.max_rows, Comm(use_mpi=False))
        finally:
            model.train(was_training)
        return score, time.perf_counter() - t

    def start(self, model, **extra) -> dict:
        score, secs = self.heldout(model)
        record = {"generation": 0, "method": self.method, "heldout_reward": score, "wall_s": 0.0, "samples": 0,
                  "heldout_s": secs, "eval_wall_s": 0.0, **extra}
        self.metrics.write(record)
        log.info("%s: held-out reward at start %.4f", self.method, score)
        self.t0 = time.perf_counter()  # wall_s counts from here
        return record

    def write(self, step: int, model, evaluate: bool, **fields) -> dict:
        record = {"generation": step, "method": self.method, **{k: v for k, v in fields.items() if v is not None}}
        if evaluate:
            record["heldout_reward"], record["heldout_s"] = self.heldout(model)
            self.eval_wall_s += record["heldout_s"]
        record.update(wall_s=time.perf_counter() - self.t0, samples=self.samples, eval_wall_s=self.eval_wall_s)
        self.metrics.write(record)
        log.info("%s step %d: %s", self.method, step,
                 " ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))
        return record


class MetricsCallback(TrainerCallback):
    """One metrics.jsonl line per optimizer step (on_log runs after the step's TRL log, logging_steps=1);
    held-out accuracy every ``baseline.eval_every`` steps and at the last step."""

    LOG_KEYS = {"loss": "loss", "grad_norm": "grad_norm", "rewards/accuracies": "dpo_accuracy",
                "rewards/margins": "dpo_margin", "sft_loss": "sft_loss", "kl": "kl",
                "frac_reward_zero_std": "frac_reward_zero_std"}

    def __init__(self, run: BaselineRun, model, reward: TaskReward | None = None, extra=None):
        self.run, self.model, self.reward, self.extra = run, model, reward, extra
        self.last_step, self.t_step = -1, time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        if not logs or "loss" not in logs or step == self.last_step:
            return
        every = self.run.cfg.baseline.eval_every
        evaluate = step >= state.max_steps or (every > 0 and step % every == 0)
        if self.reward is not None:
            self.run.samples = self.reward.samples
        fields = {name: float(logs[key]) for key, name in self.LOG_KEYS.items() if key in logs}
        fields["reward_mean"] = self.reward.pop_mean() if self.reward is not None else None
        fields["step_s"] = time.perf_counter() - self.t_step
        fields.update(self.extra(step, evaluate) if self.extra else {})
        self.run.write(step, self.model, evaluate, **fields)
        self.last_step, self.t_step = step, time.perf_counter()


def quiet_trainer(trainer) -> None:
    """Our callback logs each step; drop transformers' printer of raw log dicts."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if not trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)


def lora_policy(cfg, model):
    """The trainable LoRA policy GRPO/ESO start from: the SFT adapter ``space.init`` when given (as ESSA does),
    else a fresh LoRA (A Kaiming, B zero) of the same rank and target modules as the search space."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if cfg.space.init:
        return PeftModel.from_pretrained(model, cfg.space.init, is_trainable=True)
    peft_cfg = LoraConfig(r=cfg.space.rank, lora_alpha=cfg.space.lora_alpha, lora_dropout=0.0, bias="none",
                          target_modules=list(cfg.space.target_modules))
    with torch.random.fork_rng():
        torch.manual_seed(seeding.int_seed(cfg.run.seed, "init", 2**20))  # the same A init as `essa-hpc sft`
        return get_peft_model(model, peft_cfg)


def completion_length(cfg) -> int:
    return cfg.baseline.max_completion_length or cfg.rollout.max_new_tokens
