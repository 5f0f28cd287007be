"""Scoring candidates: population groups spread over ranks, and the held-out metric.

Determinism contract (README, "Determinism"): the population is cut into fixed groups of
``rollout.group_size`` candidates; group g runs on rank g % world. Inside a group
rows (candidate-major: c0p0 c0p1 … c1p0 …) are cut into fixed chunks of at most
``rollout.max_rows`` rows. The padding and batch shape of every chunk therefore
depend only on the group, never on the world size, so a candidate's reward is the
same with 1 or N ranks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from essa_hpc.rewards import RewardRunner
from essa_hpc.runtime import seeding
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.runlog import Stopwatch


def candidate_groups(population: int, group_size: int) -> list[range]:
    return [range(s, min(s + group_size, population)) for s in range(0, population, group_size)]


def row_chunks(n_cands: int, n_items: int, max_rows: int, batched: bool) -> list[np.ndarray]:
    """Row indices per chunk. Unbatched spaces never mix candidates in a chunk."""
    if batched:
        rows = np.arange(n_cands * n_items)
        return [rows[i: i + max_rows] for i in range(0, len(rows), max_rows)]
    chunks = []
    for c in range(n_cands):
        rows = np.arange(c * n_items, (c + 1) * n_items)
        chunks += [rows[i: i + max_rows] for i in range(0, len(rows), max_rows)]
    return chunks


@dataclass
class PopulationResult:
    rewards_local: np.ndarray   # [population]; zero where another rank owns the candidate
    new_tokens: int
    eval_s: float
    apply_s: float   # part of eval_s: adapters in and out of the model
    reward_s: float  # part of eval_s: scoring the completions


def evaluate_candidates(rollout, space, rewarder: RewardRunner, cands: np.ndarray, items: list[dict],
                        max_rows: int, sample_key: tuple = (), watch: Stopwatch | None = None
                        ) -> tuple[np.ndarray, int]:
    """Mean training reward of each candidate in ``cands`` [C, dim] over ``items``.
    ``watch`` (optional) accumulates apply/restore and reward-scoring seconds."""
    watch = watch or Stopwatch()
    n_cands, n_items = len(cands), len(items)
    rewards = np.zeros(n_cands * n_items)
    tokens = 0
    try:
        mixed = space.batched or rollout.serves_adapters
        for j, rows in enumerate(row_chunks(n_cands, n_items, max_rows, mixed)):
            with watch("apply"):
                prepared = rollout.prepare(space, cands, rows // n_items)
            seed = seeding.int_seed(0, "sampling", *sample_key, j)
            out = rollout.generate([items[i] for i in rows % n_items], sample_seed=seed, rows=prepared)
            with watch("reward"):
                rewards[rows] = rewarder.rewards([items[i] for i in rows % n_items], out.texts)
            tokens += out.new_tokens
    finally:
        with watch("apply"):
            rollout.release(space)
    return rewards.reshape(n_cands, n_items).mean(axis=1), tokens


def evaluate_population(rollout, space, rewarder, cands: np.ndarray, items: list[dict], cfg, comm: Comm,
                        generation: int) -> PopulationResult:
    t0, watch = time.perf_counter(), Stopwatch()
    local = np.zeros(len(cands))
    tokens = 0
    for g, group in enumerate(candidate_groups(len(cands), cfg.rollout.group_size)):
        if g % comm.world != comm.rank:
            continue
        idx = np.asarray(group)
        local[idx], n = evaluate_candidates(rollout, space, rewarder, cands[idx], items, cfg.rollout.max_rows,
                                            sample_key=(cfg.run.seed, generation, g), watch=watch)
        tokens += n
    return PopulationResult(local, tokens, time.perf_counter() - t0, watch.seconds.get("apply", 0.0),
                            watch.seconds.get("reward", 0.0))


def heldout_score(rollout, space, scorer: RewardRunner, vector: np.ndarray | None, items: list[dict],
                  max_rows: int, comm: Comm) -> float:
    """Mean held-out metric of one adapter (``vector``; None = the space's start), chunks spread
    over ranks; one float per rank crosses the wire."""
    total = 0.0
    chunks = [range(i, min(i + max_rows, len(items))) for i in range(0, len(items), max_rows)]
    try:
        for j, rows in enumerate(chunks):
            if j % comm.world != comm.rank:
                continue
            prepared = None
            if space is not None and vector is not None:
                prepared = rollout.prepare(space, vector[None], np.zeros(len(rows), dtype=int))
            batch = [items[i] for i in rows]
            out = rollout.generate(batch, sample_seed=seeding.int_seed(0, "heldout_sampling", 0, j), rows=prepared)
            total += float(np.sum(scorer.rewards(batch, out.texts)))
            if space is not None and vector is not None:
                rollout.release(space)
    finally:
        if space is not None:
            rollout.release(space)
    return float(comm.allreduce_sum(np.array([total]))[0]) / len(items)
