"""Successive halving for the signal study's screen: pure functions of the recorded scores, so the
choice can be recomputed from the committed record.

Round r runs every surviving arm for ``first_budget_s * 2**r`` seconds with seed r, scores it on the
validation set, and keeps the better half (rounded up) for the next round, until two arms have run
their last round. The ranking after each round is an arm's mean validation score over every round it
ran: the survivors have run the same rounds, so their means compare budgets alike, and the final
choice rests on three independent runs (the longest counted once, like the others) instead of one
short noisy one. With 6 arms: 6 at B, 3 at 2B, 2 at 4B; 20B of training per method.
"""
from __future__ import annotations

import math
import statistics


def rounds_for(arms: int) -> int:
    """How many rounds ``arms`` arms take until the last round has at most two."""
    n, rounds = arms, 1
    while n > 2:
        n, rounds = math.ceil(n / 2), rounds + 1
    return rounds


def budget(first_budget_s: float, round_index: int) -> float:
    return first_budget_s * 2 ** round_index


def total_budget(arms: int, first_budget_s: float) -> float:
    """Training seconds the whole screen spends on one method's arms."""
    n, total = arms, 0.0
    for r in range(rounds_for(arms)):
        total += n * budget(first_budget_s, r)
        n = math.ceil(n / 2)
    return total


def ranking(scores: dict[str, list[float]]) -> list[str]:
    """Arms by mean score, best first; equal means keep the arms' declared order (dicts keep it)."""
    order = list(scores)
    return sorted(order, key=lambda name: (-statistics.mean(scores[name]), order.index(name)))


def survivors(arms: list[str], scores: dict[str, list[float]], round_index: int) -> list[str]:
    """The arms that run round ``round_index``, given every arm's scores of the rounds before it, in
    declared order. Raises if a survivor of an earlier round lacks a score (the record is incomplete)."""
    alive = list(arms)
    for r in range(round_index):
        missing = [a for a in alive if len(scores.get(a, [])) <= r]
        if missing:
            raise ValueError(f"round {r} has no score for {', '.join(missing)}")
        ranked = ranking({a: scores[a][:r + 1] for a in alive})
        keep = set(ranked[:math.ceil(len(alive) / 2)])
        alive = [a for a in alive if a in keep]
    return alive


def winner(arms: list[str], scores: dict[str, list[float]]) -> str:
    """The arm chosen after the last round: the best mean over every round among the last round's arms."""
    last = rounds_for(len(arms)) - 1
    final = survivors(arms, scores, last)
    missing = [a for a in final if len(scores.get(a, [])) <= last]
    if missing:
        raise ValueError(f"round {last} has no score for {', '.join(missing)}")
    return ranking({a: scores[a][:last + 1] for a in final})[0]
