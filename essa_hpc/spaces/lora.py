"""Plain LoRA search space: the flattened A and B of every wrapped module.

Kept as a comparison for ESSA. A candidate changes whole matrices, so rows cannot
mix candidates and the rollout evaluates one candidate at a time.
"""
from __future__ import annotations

import numpy as np
import torch

from essa_hpc.config import SpaceConfig
from essa_hpc.spaces.adapter_io import LoraStart, load_start
from essa_hpc.spaces.base import WrappedLoRASpace, replace_module
from essa_hpc.spaces.layers import DenseLoRALinear


class LoRASpace(WrappedLoRASpace):

    def __init__(self, model, cfg: SpaceConfig, run_seed: int):
        super().__init__(model)
        self.start: LoraStart = load_start(model, cfg, run_seed)
        self.names = sorted(self.start.factors)
        self.layers: list[DenseLoRALinear] = []
        self.shapes = []
        for name in self.names:
            a, b = self.start.factors[name]
            layer = DenseLoRALinear(model.get_submodule(name), a, b, self.start.scale)
            replace_module(model, name, layer)
            self.layers.append(layer)
            self.shapes += [tuple(a.shape), tuple(b.shape)]
        self._initial = np.concatenate([t.double().numpy().ravel() for n in self.names for t in self.start.factors[n]])
        self.dim = self._initial.size

    def initial(self) -> np.ndarray:
        return self._initial.copy()

    def typical_scale(self) -> float:
        return float(np.abs(self._initial[self._initial != 0]).mean()) if self._initial.any() else 1.0

    def factors_for(self, vector: np.ndarray) -> dict:
        out, pos, tensors = {}, 0, []
        for shape in self.shapes:
            n = int(np.prod(shape))
            tensors.append(torch.from_numpy(vector[pos: pos + n].reshape(shape)).float())
            pos += n
        for i, name in enumerate(self.names):
            out[name] = (tensors[2 * i], tensors[2 * i + 1])
        return out

    def apply(self, cands: np.ndarray, row_cand: np.ndarray) -> None:
        if len(np.unique(row_cand)) != 1:
            raise ValueError("the lora space evaluates one candidate at a time")
        factors = self.factors_for(cands[int(row_cand[0])])
        for name, layer in zip(self.names, self.layers):
            layer.set_factors(*factors[name])

    def restore(self) -> None:
        self.apply(self._initial[None], np.zeros(1, dtype=int))
