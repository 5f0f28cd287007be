"""What CMA-ES's mean does with one generation's rewards, besides pycma's own recombination.

One generation of ESSA's search is mostly noise (a handful of directions in hundreds or
thousands of dimensions, most candidates tied on a 0/1 reward), so three things here keep
more of its signal. All are pure numpy, the same on every rank, and MAXIMISE reward.

- ``average_ties``: pycma ranks with an argsort, so tied candidates get different weights in
  index order, and the mean moves along their differences. Replacing each tied group's
  candidates by their mean gives every order the same update: pycma's weighted sum over a
  group is then (sum of the group's weights) x (the group's mean), which is the update with
  each tied candidate weighted by the mean of its group's weights. The mean update and CSA's
  step-size path are exactly tie-aware; the rank-mu covariance term loses the group's spread
  (its members' outer products become one point's), so with many ties the covariance adapts
  more slowly. With mirrored pairs whose members tie, the pair collapses to the mean itself.
- ``antithetic_direction``: OpenAI-ES's estimate from mirrored pairs, sum_j (r+_j - r-_j) eps_j,
  which uses every pair's difference rather than the top half's positive weights.
- ``StepAverage``: an average of the mean's steps over generations (Adam's first moment, with
  its bias correction), so the small bias that each generation's step shares with the next
  adds up while their independent noise averages out.
"""
from __future__ import annotations

import numpy as np


def average_ties(cands: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """``cands`` [population, dim] with every group of equal ``rewards`` replaced by its mean."""
    out = np.array(cands, dtype=np.float64, copy=True)
    for value in np.unique(rewards):
        tied = rewards == value
        if tied.sum() > 1:
            out[tied] = cands[tied].mean(axis=0)
    return out


def mirrored_pairs(cands: np.ndarray, mean: np.ndarray) -> np.ndarray | None:
    """Indices [pairs, 2] of the candidates that mirror each other about ``mean`` (x+ + x- = 2 mean),
    in the order they were asked; None when the population is not made of such pairs."""
    n = len(cands)
    if n % 2:
        return None
    pairs = np.arange(n).reshape(-1, 2)  # pycma puts a mirror right after its original
    scale = max(1.0, float(np.abs(cands).max()))
    if not np.allclose(cands[pairs[:, 0]] + cands[pairs[:, 1]], 2 * mean, rtol=0, atol=1e-9 * scale):
        return None
    return pairs


def antithetic_direction(cands: np.ndarray, rewards: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """sum_j (r+_j - r-_j) (x+_j - mean): the mirrored pairs' estimate of the reward's gradient direction
    (times sigma^2 and the pair count); zero where every pair tied. Needs a mirrored population."""
    pairs = mirrored_pairs(cands, mean)
    if pairs is None:
        raise ValueError("the antithetic mean update needs a mirrored population (strategy.mirrored=true)")
    diff_p = rewards[pairs[:, 0]] - rewards[pairs[:, 1]]
    return diff_p @ (cands[pairs[:, 0]] - mean)


def along(direction: np.ndarray, length: float) -> np.ndarray:
    """``direction`` rescaled to ``length`` (zero when the direction is zero)."""
    norm = float(np.linalg.norm(direction))
    return direction * (length / norm) if norm > 0 else np.zeros_like(direction)


class StepAverage:
    """v_t = beta v_(t-1) + (1 - beta) step_t, applied as v_t / (1 - beta^t): the mean moves by the
    average of its recent steps. beta 0 is the plain step."""

    def __init__(self, beta: float, dim: int):
        self.beta, self.v, self.t = float(beta), np.zeros(dim), 0

    def __call__(self, step: np.ndarray) -> np.ndarray:
        if self.beta == 0:
            return step
        self.t += 1
        self.v = self.beta * self.v + (1 - self.beta) * step
        return self.v / (1 - self.beta ** self.t)

    def state_dict(self) -> dict:
        return {"v": self.v.copy(), "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.v, self.t = np.array(state["v"], dtype=np.float64), int(state["t"])
