"""What every search space offers the trainer and the rollout.

A space turns a candidate vector into model behaviour. ``apply(cands, row_cand)``
makes generation row i use candidate ``row_cand[i]``; ``restore()`` returns the
model to the start adapter. What a space can do (``batched``: mix candidates in one batch;
``seed_addressed``) is read from its declaration in ``essa_hpc.config.spaces``, never set
on the class; a space that cannot mix candidates is given one candidate at a time.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import nn

from essa_hpc.config.spaces import SPACES
from essa_hpc.strategies.base import SeedUpdate  # noqa: F401  (the type after_tell takes)


class SearchSpace(ABC):
    dim: int

    @property
    def batched(self) -> bool:
        """Rows of one batch may belong to different candidates (declared capability)."""
        return bool(SPACES.spec_of(type(self)).get("batched"))

    @property
    def seed_addressed(self) -> bool:
        """A candidate is a seed address and the parameters live in the space (the full space): the
        strategy then takes its seed-addressed form and returns a ``SeedUpdate`` (declared capability)."""
        return bool(SPACES.spec_of(type(self)).get("seed_addressed"))

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
        """Back to the current state (the start adapter, or the full space's master weights)."""

    @abstractmethod
    def export(self, vector: np.ndarray, out_dir: str | Path) -> None:
        """Write the adapter given by ``vector`` (a PEFT directory, or full weights)."""

    def evaluation_vector(self, mean: np.ndarray) -> np.ndarray | None:
        """What to ``apply`` to score the current solution; None = the model as restored."""
        return mean

    def after_tell(self, cands: np.ndarray, update: "SeedUpdate | None") -> None:
        """Seed-addressed spaces apply the strategy's ``SeedUpdate`` here; vector spaces have nothing to do."""

    def digest(self, mean: np.ndarray) -> str:
        """SHA-256 of the current adapter (what ranks compare and metrics record)."""
        return self.vector_sha256(mean)

    def state_dict(self) -> dict:
        """Arrays that define the space (frozen factors etc.), for checkpoints."""
        return {}

    def load_state_dict(self, stored: dict) -> None:
        """Resume: by default the rebuilt space must equal the checkpoint's (it is derived, not trained)."""
        def compare(now, saved, path: str) -> None:
            if isinstance(now, dict):
                for key, value in now.items():
                    compare(value, saved.get(key) if isinstance(saved, dict) else None, f"{path}/{key}")
                return
            saved = np.asarray(saved)
            if saved.shape != now.shape or not np.allclose(saved, now, rtol=0, atol=1e-9):
                raise SpaceMismatch(f"search space '{path}' differs from the checkpoint (start adapter changed?)")

        compare(self.state_dict(), stored, "space")

    @staticmethod
    def vector_sha256(vector: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float64).tobytes()).hexdigest()


class SpaceMismatch(ValueError):
    pass


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

    def export(self, vector: np.ndarray, out_dir: str | Path) -> None:
        base = getattr(getattr(self.model, "config", None), "_name_or_path", "") or ""
        self.save_candidate(vector, out_dir, base_model=base)

    def save_candidate(self, vector: np.ndarray, out_dir: str | Path, base_model: str = "") -> None:
        """Candidate ``vector`` as a PEFT LoRA adapter directory: what ``export`` writes, and what
        the vLLM backend serves per candidate."""
        from essa_hpc.spaces.adapter_io import save_peft_adapter

        save_peft_adapter(self.start, self.factors_for(vector), out_dir, base_model=base_model)
