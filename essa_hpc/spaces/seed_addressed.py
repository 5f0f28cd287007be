"""What the seed-addressed spaces (``full``, ``eggroll``) share: a candidate is the address
``(generation, k, ±σ)`` of its noise, and the weights live in fp32 masters held here.

The update ``θ_t ← θ_t + Σ_n c_n·sign_n·ε_n,t`` is applied tensor by tensor into the
masters (mirrored members share k, so each direction is drawn once per tensor), then
the model's weights are copied from the masters, never updated in place, so restore is
exact. A checkpoint holds the masters; the digest is over them.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from essa_hpc.spaces.base import SearchSpace
from essa_hpc.strategies.base import SeedUpdate


class SeedAddressedSpace(SearchSpace):
    dim = 3  # (generation, k, signed sigma); see strategies/seed_es.py
    master: list[torch.Tensor]   # fp32, one per perturbed tensor
    master_names: list[str]      # their names in checkpoints

    def direction(self, generation: int, k: int, t: int) -> torch.Tensor:
        """ε of member k for tensor t in ``generation``: the update's direction, shaped like master[t]."""
        raise NotImplementedError

    def write_back(self) -> None:
        """Copy the masters into the model's weights and clear any perturbation."""
        raise NotImplementedError

    def initial(self) -> np.ndarray:
        return np.zeros(1)

    def typical_scale(self) -> float:
        return 1.0  # sigma is absolute (ES at scale's 0.001)

    @torch.no_grad()
    def after_tell(self, cands: np.ndarray, update: SeedUpdate | None) -> None:
        assert isinstance(update, SeedUpdate) and len(update.coefficients) == len(cands)
        weights: dict[tuple[int, int], float] = {}
        for (generation, k, scale), c in zip(cands, update.coefficients):
            key = (int(generation), int(k))
            weights[key] = weights.get(key, 0.0) + float(c) * float(np.sign(scale))
        for t in range(len(self.master)):
            step = torch.zeros_like(self.master[t])
            for (generation, k), w in sorted(weights.items()):
                if w != 0.0:
                    step.add_(self.direction(generation, k, t), alpha=w)
            self.master[t].add_(step)
        self.write_back()

    def evaluation_vector(self, mean: np.ndarray) -> None:
        return None  # the restored model already is the current solution

    def digest(self, mean: np.ndarray) -> str:
        h = hashlib.sha256()
        for tensor in self.master:
            h.update(tensor.cpu().numpy().tobytes())
        return h.hexdigest()

    def state_dict(self) -> dict:
        return {"master": {name: m.cpu().numpy() for name, m in zip(self.master_names, self.master)}}

    @torch.no_grad()
    def load_state_dict(self, stored: dict) -> None:
        for t, name in enumerate(self.master_names):
            self.master[t].copy_(torch.from_numpy(np.asarray(stored["master"][name], dtype=np.float32)))  # to its device
        self.write_back()
