"""Build everything a rank needs, in data-flow order: config -> model -> search
space -> task -> rollout -> strategy. Kept apart from the loop so ``train``,
``eval`` and ``export`` build the same objects the same way.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from essa_hpc.config import Config
from essa_hpc.config.tasks import reward_isolation
from essa_hpc.generation import build_rollout
from essa_hpc.rewards import FaultCounter, RewardRunner
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.spaces import build_space
from essa_hpc.strategies import build_strategy
from essa_hpc.tasks import build_task

log = logging.getLogger(__name__)


def set_threads(requested: int, local_ranks: int) -> int:
    """Pin torch threads (``requested``, or this node's cores shared by its ``local_ranks``):
    oversubscribed ranks were measured 3-5x slower on 2 cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = requested or max(1, cores // local_ranks)
    import torch  # here: building a strategy or a test's fake parts needs no torch

    torch.set_num_threads(n)
    return n


@dataclass
class Parts:
    model: object
    tokenizer: object
    space: object
    task: object
    rollout: object
    rewarder: RewardRunner   # training reward
    scorer: RewardRunner     # held-out metric (exact)
    faults: FaultCounter     # reward faults of both, taken once per generation
    fingerprint: str         # of the base model's weights: a checkpoint resumes only on the same model


def build_parts(cfg: Config, with_space: bool = True, env: RankEnv | None = None) -> Parts:
    """``env``: where this rank runs (its device, its share of the node); None = one CPU process."""
    env = env or RankEnv()
    task = build_task(cfg.task, cfg.run.seed)  # data problems surface before the model loads
    heldout = task.heldout()
    if not heldout:
        raise ValueError(f"task {cfg.task.kind} produced no held-out items")
    from essa_hpc.model import load_model, model_fingerprint

    model, tok = load_model(cfg.model, env.device)
    space = build_space(model, cfg) if with_space else None
    if cfg.model.quantize != "none":  # after the space wraps its layers: LoRA stays float
        from essa_hpc.quantize import quantize_base
        model = quantize_base(model, cfg.model.quantize)
    rewarder, scorer, faults = build_rewards(cfg, task)
    fingerprint = model_fingerprint(model)  # of the model as the run sees it, space and quantization included
    rollout = build_rollout(model, tok, cfg, env)
    return Parts(model, tok, space, task, rollout, rewarder, scorer, faults, fingerprint)


def build_rewards(cfg: Config, task) -> tuple[RewardRunner, RewardRunner, FaultCounter]:
    """Training reward and held-out scorer, inline or sharing one worker process (rewards.py)."""
    faults = FaultCounter()
    worker = None
    if reward_isolation(cfg.task) == "process":
        from essa_hpc.reward_worker import RewardWorker
        worker = RewardWorker(cfg.task, cfg.run.seed)
    timeout = cfg.task.reward_timeout_s
    return (RewardRunner(task.reward, timeout, faults, worker, "reward"),
            RewardRunner(task.score, timeout, faults, worker, "score"), faults)


def initial_sigma(cfg: Config, space) -> float:
    return cfg.strategy.sigma0 * (space.typical_scale() if cfg.strategy.sigma_relative else 1.0)


def build_search(cfg: Config, space):
    return build_strategy(cfg.strategy, space.initial(), initial_sigma(cfg, space), cfg.run.seed,
                          seed_addressed=space.seed_addressed)
