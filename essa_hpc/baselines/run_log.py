"""Held-out scoring and ``<run_dir>/metrics.jsonl`` of a baseline run, in the format ``essa-hpc train`` writes.

The lines carry the fields ``essa-hpc train`` writes where they apply (``generation`` = optimizer step,
``heldout_reward``, ``reward_mean``) plus ``method``, ``wall_s`` and ``samples``, so ESSA and the baselines
share one plot. ``wall_s`` counts from the moment line 0 is written (everything a method spends afterwards:
TR-DPO's pair sampling, TRL setup, steps, held-out evaluations); ``eval_wall_s`` is the part of it spent on
held-out evaluation. ``samples`` counts training completions generated (by all processes). ``generate_s``
is the part of a GRPO step spent generating and scoring completions, the rest being the backward pass and the
optimizer. Held-out scores go through the same ``heldout_score`` as ESSA's, so the numbers are comparable.
Under torchrun rank 0 evaluates and writes; the training-stop decision is rank 0's (``data_parallel.py``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from transformers import TrainerCallback

from essa_hpc.evaluation import heldout_score
from essa_hpc.generation.rollout import HFRollout
from essa_hpc.runtime import budget
from essa_hpc.runtime.comm import Comm, torch_distributed_comm
from essa_hpc.runtime.loggers import MetricsLoggers
from essa_hpc.runtime.runlog import MetricsLog

log = logging.getLogger(__name__)


class BaselineRun:
    """Held-out scoring and the metrics.jsonl writer of one baseline run."""

    def __init__(self, cfg, parts, run_dir: Path, method: str):
        self.cfg, self.parts, self.run_dir, self.method = cfg, parts, Path(run_dir), method
        self.comm = torch_distributed_comm()  # one process unless torchrun started several
        self.heldout_items = parts.task.heldout()
        self.validation_items = parts.task.validation()  # empty unless task.validation_size > 0
        # run.report_to's loggers too; they flush every row, and W&B finishes its run at exit
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.comm.is_root,
                                  loggers=MetricsLoggers(cfg, self.run_dir))
        self.metrics.reset([])
        self.t0 = time.perf_counter()
        self.eval_wall_s = 0.0
        self.samples = 0

    def evaluate(self, model) -> dict:
        """Exact-match held-out score of ``model`` as it is now (greedy unless rollout.temperature > 0),
        the validation score too when there is a validation set, and the seconds both took. Rank 0 only:
        the other data-parallel ranks return at once and wait for it at the next collective."""
        t = time.perf_counter()
        if not self.comm.is_root:
            return {"heldout_s": 0.0}
        was_training = model.training
        model.eval()
        try:
            rollout = HFRollout(model, self.parts.tokenizer, self.cfg)
            out = {f"{name}_reward": heldout_score(rollout, None, self.parts.scorer, None, items,
                                                   self.cfg.rollout.max_rows, Comm(use_mpi=False))
                   for name, items in (("heldout", self.heldout_items), ("validation", self.validation_items))
                   if items}
        finally:
            model.train(was_training)
        return {**out, "heldout_s": time.perf_counter() - t}

    def training_seconds(self) -> float:
        """Training time so far as ``baseline.budget_s`` counts it: wall time less evaluations."""
        return time.perf_counter() - self.t0 - self.eval_wall_s

    def start(self, model, **extra) -> dict:
        record = {"generation": 0, "method": self.method, **self.evaluate(model), "wall_s": 0.0, "samples": 0,
                  "eval_wall_s": 0.0, **extra}
        self.metrics.write(record)
        log.info("%s: held-out reward at start %.4f", self.method, record.get("heldout_reward", float("nan")))
        self.t0 = time.perf_counter()  # wall_s counts from here
        return record

    def write(self, step: int, model, evaluate: bool, **fields) -> dict:
        record = {"generation": step, "method": self.method, **{k: v for k, v in fields.items() if v is not None}}
        if evaluate:
            record.update(self.evaluate(model))
            self.eval_wall_s += record["heldout_s"]
        record.update(wall_s=time.perf_counter() - self.t0, samples=self.samples, eval_wall_s=self.eval_wall_s)
        self.metrics.write(record)
        log.info("%s step %d: %s", self.method, step,
                 " ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))
        return record


class TimedGeneration:
    """GRPOTrainer mixin: the seconds spent in ``_generate`` (sampling completions; trl 1.16), summed, so a
    step's time splits into generation and the backward pass with the optimizer."""

    generate_seconds = 0.0

    def _generate(self, prompts):
        t = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self.generate_seconds += time.perf_counter() - t


class MetricsCallback(TrainerCallback):
    """One metrics.jsonl line per optimizer step (on_log runs after the step's TRL log, logging_steps=1);
    held-out accuracy every ``baseline.eval_every`` steps and at the last step. ``reward`` is the run's
    ``TaskReward`` (None for TR-DPO, whose samples are drawn up front); ``clock`` a ``TimedGeneration``
    trainer, whose generation seconds each line then reports as ``generate_s``."""

    LOG_KEYS = {"loss": "loss", "grad_norm": "grad_norm", "rewards/accuracies": "dpo_accuracy",
                "rewards/margins": "dpo_margin", "sft_loss": "sft_loss", "kl": "kl",
                "frac_reward_zero_std": "frac_reward_zero_std"}

    def __init__(self, run: BaselineRun, model, reward=None, extra=None, clock=None):
        self.run, self.model, self.reward, self.extra, self.clock = run, model, reward, extra, clock
        self.last_step, self.t_step, self.generated_s = -1, time.perf_counter(), 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        if not logs or "loss" not in logs or step == self.last_step:
            return
        every, budget_s = self.run.cfg.baseline.eval_every, self.run.cfg.baseline.budget_s
        comm = self.run.comm
        over_budget = budget.spent(comm, budget_s, self.run.training_seconds())
        evaluate = step >= state.max_steps or over_budget or (every > 0 and step % every == 0)
        if over_budget:  # finish as if baseline.steps were reached: this step is the last, and evaluated
            control.should_training_stop = True
        if self.reward is not None:
            self.run.samples = self.reward.samples * comm.world  # every rank scores an equal share
        fields = {name: float(logs[key]) for key, name in self.LOG_KEYS.items() if key in logs}
        fields["reward_mean"] = comm.mean_of_present(self.reward.pop_mean()) if self.reward is not None else None
        fields["step_s"] = time.perf_counter() - self.t_step
        if self.clock is not None:
            fields["generate_s"] = self.clock.generate_seconds - self.generated_s
            self.generated_s = self.clock.generate_seconds
        fields.update(self.extra(step, evaluate) if self.extra else {})
        fields["budget_stop"] = True if over_budget else None
        self.run.write(step, self.model, evaluate, **fields)
        self.last_step, self.t_step = step, time.perf_counter()
