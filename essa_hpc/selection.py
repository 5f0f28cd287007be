"""Best-on-validation selection: the adapter with the highest validation score seen so far.

ES scores its mean every ``run.eval_every`` generations anyway, so keeping the best one costs
one vector copy. The first of equal scores wins (strictly greater replaces), so the choice is
the same on every rank and on a resume. It lives in the checkpoint, so a resumed run selects
what the uninterrupted run would have.
"""
from __future__ import annotations

import numpy as np


class BestOnValidation:
    def __init__(self):
        self.generation: int | None = None
        self.score = -np.inf
        self.vector: np.ndarray | None = None

    def offer(self, generation: int, score: float, vector: np.ndarray) -> bool:
        """Keep ``vector`` if ``score`` beats the best so far; True when it did."""
        if not score > self.score:
            return False
        self.generation, self.score, self.vector = int(generation), float(score), np.array(vector, copy=True)
        return True

    def state_dict(self) -> dict:
        if self.vector is None:
            return {"generation": -1}
        return {"generation": self.generation, "score": self.score, "vector": self.vector}

    def load_state_dict(self, state: dict) -> None:
        # A checkpoint written before selection existed, or before the first validation, holds none.
        if int(state.get("generation", -1)) < 0:
            self.__init__()
            return
        self.generation, self.score = int(state["generation"]), float(state["score"])
        self.vector = np.asarray(state["vector"]).copy()
