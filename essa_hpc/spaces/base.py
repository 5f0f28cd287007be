"""What every search space offers the trainer and the rollout.

A space turns a candidate vector into model behaviour. ``apply(cands, row_cand)``
makes generation row i use candidate ``row_cand[i]``; ``restore()`` returns the
model to the start adapter. Spaces that cannot mix candidates in one batch set
``batched = False`` and are given one candidate at a time.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import nn


class SearchSpace(ABC):
    batched: bool = True
    dim: int

    def __init__(self, model: nn.Module):
        self.model = model

    @abstractmethod
    def initial(self) -> np.ndarray:
        """The start point of the search (float64, shape [dim])."""

    @abstractmethod
    def typical_scale(self) -> float:
        """A magnitude that makes a relative sigma meaningful."""

    @abstractmethod
    def apply(self, cands: np.ndarray, row_cand: np.ndarray) -> None:
        """Make row i of the next forward passes use candidate ``cands[row_cand[i]]``."""

    @abstractmethod
    def restore(self) -> None:
        """Back to the start adapter."""

    @abstractmethod
    def export_peft(self, vector: np.ndarray, out_dir: str | Path) -> None:
        """Write the adapter given by ``vector`` as a PEFT directory."""

    def state_arrays(self) -> dict:
        """Arrays that define the space (frozen factors etc.), for checkpoints."""
        return {}

    @staticmethod
    def vector_sha256(vector: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float64).tobytes()).hexdigest()


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def as_tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))


class WrappedLoRASpace(SearchSpace):
    """A space whose modules wrap base Linears (``layer.base``) named ``self.names``."""

    names: list[str]
    layers: list[nn.Module]

    @abstractmethod
    def factors_for(self, vector: np.ndarray) -> dict:
        """module name -> (A, B) float32 for one candidate."""

    def export_peft(self, vector: np.ndarray, out_dir: str | Path) -> None:
        from essa_hpc.spaces.adapter_io import save_peft_adapter

        factors = self.factors_for(vector)
        # peft must see the plain base Linears; our wrappers go back afterwards.
        for name, layer in zip(self.names, self.layers):
            replace_module(self.model, name, layer.base)
        try:
            save_peft_adapter(self.model, self.start, factors, out_dir)
        finally:
            for name, layer in zip(self.names, self.layers):
                replace_module(self.model, name, layer)
