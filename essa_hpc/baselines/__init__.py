"""The gradient baselines, built on TRL: ``grpo`` (GRPOTrainer, LoRA), ``trdpo`` (DPOTrainer
with a soft-updated reference, full fine-tune) and ``eso`` (REINFORCE + SFT on a GRPOTrainer
subclass). Each writes ``metrics.jsonl`` with the fields ``essa-hpc train`` writes, so one
plot holds ESSA and the baselines. Their declarations are in ``essa_hpc.config.baselines``.
"""
from __future__ import annotations


class BaselineError(RuntimeError):
    """A run that cannot go on for a reason the user can fix (e.g. no preference pairs); one line."""
