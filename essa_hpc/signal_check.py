"""The signal check: how much of one generation's update is signal, for several settings, in
minutes rather than a 30-minute run (``essa-hpc signal``).

For each setting (a list of config overrides on top of the run's config) it builds the run's
start, draws ``populations`` independent populations (other strategy seeds, other
mini-batches), scores them exactly as the trainer does (``evaluate_candidates``: the same
groups, chunks and rewards), and forms each population's update with the strategy's own rule
(ask, tell, and the mean's move). It reports:

- ``agreement``: the mean cosine between the updates of independent populations. Pure noise
  gives 0 +/- 1/sqrt(dim); it estimates the squared alignment of one update with its own
  expectation, a signal-to-noise ratio.
- ``cos_sft_gradient``: where the space is svd_lora and the task has gold answers, the mean cosine
  between each update and the negative gradient of the SFT loss on the searched singular values
  (``gradient_examples`` examples); a direction known to be good.
- ``cos_summed_updates``: the cosine between the sum of the independent updates and that
  gradient: what averaging steps over ``populations`` generations (momentum) could reach while
  the gradient changes slowly.
- ``tied_fraction``: the share of candidates whose reward another candidate also got.
- ``gradient_share``: the share of that gradient's squared norm that lies in the searched
  dimensions, out of all singular values of both factors.

Single process; rewards are MAXIMISED. The model is loaded once per setting (a setting may
change the space).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from essa_hpc import config as config_mod
from essa_hpc.assemble import build_parts, initial_sigma
from essa_hpc.evaluation import evaluate_candidates
from essa_hpc.runtime import seeding
from essa_hpc.strategies import build_strategy
from essa_hpc.strategies.diagnostics import cosine, generation_signal


@dataclass
class SettingResult:
    name: str
    overrides: list
    dim: int
    sigma: float             # absolute sigma0
    samples: int             # completions scored per population
    tied_fraction: float
    agreement: float | None
    cos_sft_gradient: float | None
    cos_summed_updates: float | None
    gradient_share: float | None
    seconds: float


def sft_gradient(parts, examples: int, batch: int = 16) -> tuple[np.ndarray, np.ndarray] | None:
    """(gradient on the searched values in candidate layout, gradient on every singular value
    [modules, 2, r]) of the SFT loss at the start, or None where there is none to take."""
    import torch

    from essa_hpc.sft import collate, sft_examples

    space, task = parts.space, parts.task
    if not hasattr(space, "base_s") or not hasattr(task, "sft_target"):
        return None
    s = torch.nn.Parameter(space.base_s.clone().float())  # [modules, 2, r]
    for i, layer in enumerate(space.layers):
        layer.s_a, layer.s_b = s[i, 0][None, None, :], s[i, 1][None, None, :]
    pool = task.training_items()
    pick = seeding.rng(0, "signal_examples").choice(len(pool), size=min(examples, len(pool)), replace=False)
    try:
        for start in range(0, len(pick), batch):
            items = [pool[j] for j in pick[start:start + batch]]
            ids, mask, labels = collate(sft_examples(task, parts.rollout.prompts, parts.tokenizer, items),
                                        parts.tokenizer.pad_token_id)
            device = parts.model.device
            loss = parts.model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            (loss * len(items) / len(pick)).backward()
    finally:
        space.restore()
    full = s.grad.double().numpy()
    return full[:, space.searched, : space.k].reshape(-1), full


def measure(cfg: config_mod.Config, name: str, overrides: list[str], populations: int,
            gradient_examples: int) -> SettingResult:
    """One setting: ``populations`` independent updates at the start of ``cfg``."""
    t0 = time.perf_counter()
    parts = build_parts(cfg)
    space, lam = parts.space, cfg.strategy.population
    sigma = initial_sigma(cfg, space)
    directions, tied = [], []
    for k in range(populations):
        strategy = build_strategy(cfg.strategy, space.initial(), sigma, cfg.run.seed * 1000 + k,
                                  seed_addressed=space.seed_addressed)
        before = np.array(strategy.mean)
        cands = strategy.ask()
        items = parts.task.minibatch(k, cfg.task.batch_size)
        rewards, _ = evaluate_candidates(parts.rollout, space, parts.rewarder, cands, items, cfg.rollout.max_rows,
                                         sample_key=(k,))
        strategy.tell(rewards)
        directions.append(np.array(strategy.mean) - before)
        tied.append(generation_signal(rewards)["tied_fraction"])
    pairs = [cosine(a, b) for a, b in itertools.combinations(directions, 2)]
    pairs = [c if c is not None else 0.0 for c in pairs]  # a zero update agrees with nothing
    gradient = sft_gradient(parts, gradient_examples) if gradient_examples else None
    cos_gradient = cos_summed = share = None
    if gradient is not None:
        searched, full = gradient
        cosines = [cosine(d, -searched) for d in directions]
        cos_gradient = float(np.mean([c if c is not None else 0.0 for c in cosines]))
        cos_summed = cosine(np.sum(directions, axis=0), -searched) or 0.0
        share = float(searched @ searched / np.sum(full * full)) if np.any(full) else None
    return SettingResult(name, list(overrides), space.dim, sigma, lam * cfg.task.batch_size, float(np.mean(tied)),
                         float(np.mean(pairs)) if pairs else None, cos_gradient, cos_summed, share,
                         round(time.perf_counter() - t0, 1))
