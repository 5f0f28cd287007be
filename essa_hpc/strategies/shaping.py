"""Fitness shaping: free functions with one signature, ``f(rewards[n]) -> shaped[n]``.

essa_hpc MAXIMISES reward everywhere. NaN counts as the worst reward. Tied
rewards get equal shaped values, so all-equal rewards give an all-zero signal.
"""
from __future__ import annotations

import numpy as np


def _clean(rewards: np.ndarray) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    assert r.ndim == 1, r.shape
    if np.isnan(r).all():
        return np.zeros_like(r)
    worst = np.nanmin(r)
    return np.where(np.isnan(r), worst - 1.0, r)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ascending; ties share the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for v in np.unique(values):
        tie = values == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def centered_rank(rewards: np.ndarray) -> np.ndarray:
    r = _clean(rewards)
    if len(r) < 2:
        return np.zeros_like(r)
    return average_ranks(r) / (len(r) - 1) - 0.5


def z_score(rewards: np.ndarray) -> np.ndarray:
    r = _clean(rewards)
    std = r.std()
    return np.zeros_like(r) if std == 0 else (r - r.mean()) / std


SHAPERS = {"centered_rank": centered_rank, "z_score": z_score}
