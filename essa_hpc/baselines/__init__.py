"""Gradient baselines the ESSA papers compare against, built on TRL: ``grpo`` (GRPOTrainer, LoRA), ``trdpo`` (DPOTrainer with a soft-updated reference,
full fine-tune) and ``eso`` (REINFORCE + SFT on a GRPOTrainer subclass). Each writes ``metrics.jsonl``
with the fields ``essa-hpc train`` writes, so one plot holds ESSA and the baselines.

Imports of TRL are lazy: ``check`` runs before any model or TRL import.
"""
from __future__ import annotations

from pathlib import Path

from essa_hpc.config import Config, ConfigError

METHODS = ("grpo", "trdpo", "eso")


class BaselineError(RuntimeError):
    """A run that cannot go on for a reason the user can fix (e.g. no preference pairs); one line."""


def check(method: str, cfg: Config) -> None:
    """Method-specific config checks; one-line ConfigError, before any model loads."""
    if method not in METHODS:
        raise ConfigError(f"unknown baseline {method!r}; choose one of: {', '.join(METHODS)}")
    b = cfg.baseline
    if cfg.model.quantize != "none":
        raise ConfigError("baselines train by backpropagation and need model.quantize=none")
    if method in ("grpo", "eso") and b.batch_size % b.num_generations:
        raise ConfigError(f"baseline.batch_size={b.batch_size} (completions per step) must be a multiple of "
                          f"baseline.num_generations={b.num_generations}")
    if method == "eso" and len(b.temperatures) > b.num_generations:
        raise ConfigError(f"eso draws the num_generations={b.num_generations} samples of a prompt over "
                          f"{len(b.temperatures)} temperatures; raise baseline.num_generations or list fewer")


def run(method: str, cfg: Config, run_dir: Path) -> dict:
    """Build the parts, train the baseline, return a summary (also in metrics.jsonl)."""
    from essa_hpc.assemble import build_parts

    check(method, cfg)
    parts = build_parts(cfg, with_space=False)
    if method == "grpo":
        from essa_hpc.baselines.grpo import run_grpo
        return run_grpo(cfg, parts, run_dir)
    if method == "trdpo":
        from essa_hpc.baselines.trdpo import run_trdpo
        return run_trdpo(cfg, parts, run_dir)
    from essa_hpc.baselines.eso import run_eso
    return run_eso(cfg, parts, run_dir)
