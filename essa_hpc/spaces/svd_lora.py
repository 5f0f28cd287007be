"""ESSA's search space (arXiv 2507.04453, §3.2, Alg. 1).

Each LoRA factor gets its own SVD; U and V stay frozen and a candidate is a vector
of offsets added to the top alpha-fraction of s_A and s_B (or of one of them,
``space.svd_lora.factors``) of every wrapped module. Length = modules × factors ×
ceil(alpha·r). sigma is relative to the mean |s| of the searched values. Many candidates share one batch because a
candidate only changes per-row diagonal scales.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from essa_hpc.config import SpaceConfig
from essa_hpc.spaces.adapter_io import LoraStart, load_start
from essa_hpc.spaces.base import WrappedLoRASpace, as_tensor, replace_module
from essa_hpc.spaces.layers import SVDLoRALinear


class SVDLoRASpace(WrappedLoRASpace):

    def __init__(self, model, cfg: SpaceConfig, run_seed: int):
        super().__init__(model)
        self.start: LoraStart = load_start(model, cfg, run_seed)
        self.names = sorted(self.start.factors)
        self.layers: list[SVDLoRALinear] = []
        for name in self.names:
            a, b = self.start.factors[name]
            layer = SVDLoRALinear(model.get_submodule(name), a, b, self.start.scale)
            replace_module(model, name, layer)
            self.layers.append(layer)
        self.k = max(1, math.ceil(cfg.alpha_fraction * self.start.rank))
        self.searched = {"both": [0, 1], "A": [0], "B": [1]}[cfg.svd_lora.factors]  # base_s[:, 0] is A's, [:, 1] B's
        self.base_s = torch.stack([layer.base_s for layer in self.layers])  # [modules, 2, r] float64
        self.dim = len(self.layers) * len(self.searched) * self.k

    def initial(self) -> np.ndarray:
        return np.zeros(self.dim)

    def typical_scale(self) -> float:
        trainable = self.base_s[:, self.searched, : self.k].abs()
        nonzero = trainable[trainable > 0]
        return float(nonzero.mean()) if nonzero.numel() else 1.0

    def singular_values(self, cands: np.ndarray) -> torch.Tensor:
        """[C, dim] offsets -> [C, modules, 2, r] singular values (float64)."""
        offsets = as_tensor(cands).reshape(len(cands), len(self.layers), len(self.searched), self.k)
        s = self.base_s.expand(len(cands), -1, -1, -1).clone()
        s[:, :, self.searched, : self.k] += offsets
        return s

    def apply(self, cands: np.ndarray, row_cand: np.ndarray) -> None:
        s_rows = self.singular_values(cands)[torch.as_tensor(row_cand, dtype=torch.long)]
        for i, layer in enumerate(self.layers):
            layer.set_row_scales(s_rows[:, i, 0], s_rows[:, i, 1])

    def restore(self) -> None:
        for layer in self.layers:
            layer.set_row_scales(layer.base_s[None, 0], layer.base_s[None, 1])

    def factors_for(self, vector: np.ndarray) -> dict:
        s = self.singular_values(vector[None])[0]
        return {name: tuple(t.float() for t in layer.materialize(s[i, 0], s[i, 1]))
                for i, (name, layer) in enumerate(zip(self.names, self.layers))}

    def state_dict(self) -> dict:
        out = {"base_s": self.base_s.numpy()}
        for name, layer in zip(self.names, self.layers):
            out[name] = {key: t.numpy() for key, t in layer.factors.items()}
        return out
