"""The wall-time budget (``run.budget_s``, ``baseline.budget_s``): tuning arms at equal time.

One rule for ES and the gradient baselines: a run counts its training seconds (evaluations
excluded; each counts its own), and rank 0's count decides for every rank, so all ranks stop
at the same step. A rank that stopped on its own clock would leave the others waiting in the
next collective.
"""
from __future__ import annotations


def spent(comm, budget_s: float, seconds: float) -> bool:
    """Whether ``budget_s`` (0 = no budget) is spent after ``seconds`` of training on rank 0. One
    collective of 4 bytes, only when a budget is set."""
    return bool(budget_s) and comm.root_decides(seconds >= budget_s)
