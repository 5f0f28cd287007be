"""How much of a generation's update is more than noise, measured from what every rank already
has (the candidates, their rewards and the mean they were drawn around). Pure numpy.

Per generation (``generation_signal``, one line of metrics.jsonl each):
- ``distinct_rewards``: how many different rewards the population got.
- ``tied_fraction``: the share of candidates whose reward another candidate also got. A tied
  group tells the update nothing about the differences inside it.
- ``mirror_ties``: mirrored pairs whose two members scored alike: zero antithetic signal.
- ``update_snr``: the agreement of two independent estimates of the update direction, one from
  each half of the population (alternate mirrored pairs when the population is mirrored, else
  alternate candidates), each ``sum_i (r_i - mean r) (x_i - m)``: their cosine. Two estimates of
  pure noise in n dimensions agree at 0 +/- 1/sqrt(n); a real gradient makes them agree above
  that. It is a signal-to-noise proxy, not the alignment with the true gradient, and is None
  when a half has no reward spread (then it carries no direction).

``SignalMonitor`` watches a window of generations and says once, on rank 0, when their updates
were no better than chance, with the measured cause and the levers.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from essa_hpc.strategies.mean_update import mirrored_pairs


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """cos(a, b), or None when either is zero (no direction)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else None


def generation_signal(rewards: np.ndarray, cands: np.ndarray | None = None, mean: np.ndarray | None = None) -> dict:
    """The diagnostics of one generation. ``cands`` and ``mean`` are None where candidates are not
    points of the searched space (seed addresses): then only the reward-based fields are filled."""
    rewards = np.asarray(rewards, dtype=np.float64)
    _, inverse, counts = np.unique(rewards, return_inverse=True, return_counts=True)
    out = {"distinct_rewards": int(len(counts)), "tied_fraction": float(np.mean(counts[inverse] > 1)),
           "mirror_ties": None, "update_snr": None}
    if cands is None or mean is None:
        return out
    pairs = mirrored_pairs(cands, mean)
    centred = (rewards - rewards.mean())[:, None] * (cands - mean)
    if pairs is not None:
        out["mirror_ties"] = int(np.sum(rewards[pairs[:, 0]] == rewards[pairs[:, 1]]))
        halves = [pairs[0::2].ravel(), pairs[1::2].ravel()]
    else:
        halves = [np.arange(0, len(rewards), 2), np.arange(1, len(rewards), 2)]
    out["update_snr"] = cosine(centred[halves[0]].sum(axis=0), centred[halves[1]].sum(axis=0))
    return out


class SignalMonitor:
    """Over the last ``window`` generations: were the updates better than chance? ``observe`` returns
    a one-line warning the first time they were not (None otherwise, and always after that)."""

    def __init__(self, window: int):
        self.window, self.warned = window, False
        self.snr, self.tied = deque(maxlen=max(window, 1)), deque(maxlen=max(window, 1))

    def observe(self, record: dict, dim: int) -> str | None:
        """``record``: a generation's metrics line; ``dim``: the searched dimensions (0 where candidates
        are seed addresses, which have no direction to judge)."""
        if not self.window or dim <= 0 or "tied_fraction" not in record:
            return None
        self.snr.append(record["update_snr"] or 0.0)  # no reward spread in a half: no direction at all
        self.tied.append(record["tied_fraction"])
        if self.warned or len(self.snr) < self.window:
            return None
        agreement, chance = float(np.mean(self.snr)), 2.0 / math.sqrt(dim * self.window)
        if agreement > chance:
            return None
        self.warned = True
        return (f"the last {self.window} updates were mostly noise: the two half-populations' update directions "
                f"agreed at cos {agreement:.3f} on average (chance: below {chance:.3f} in {dim} dimensions), with "
                f"{100 * float(np.mean(self.tied)):.0f}% of candidates tied. Levers: search fewer dimensions "
                f"(space.alpha_fraction, space.factors), probe more directions per update (strategy.population), "
                f"or average the steps (strategy.cma_es.momentum)")
