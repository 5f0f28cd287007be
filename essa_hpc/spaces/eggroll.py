"""Low-rank full-parameter ES (EGGROLL, arXiv 2511.16652): the whole population in one batch,
with full-rank updates.

Candidate ``(generation, k, ±σ)`` perturbs every target weight matrix t by a rank-r product,

    W_t + (±σ/√r) · A_k,t B_k,tᵀ,   A ∈ R^{d_out×r}, B ∈ R^{d_in×r},

with A and B regenerated from ``seeding`` (run seed, generation, k, t); mirrored members
share k with opposite signs. Nothing of size d_out×d_in is made per candidate: each row
of a batch computes ``y = W x + (±σ/√r) · A (Bᵀ x)`` with its own candidate's factors, so
a population shares one forward as the svd_lora rows do. The update, through ``open_es``
(``SeedES``), is full-rank in sum:

    W_t ← W_t + Σ_n c_n · sign_n · A_n,t B_n,tᵀ / √r     (c = α·z/N, z the shaped rewards)

applied tensor by tensor into an fp32 master (peak extra memory: one weight matrix), and
the model's weights are copied from the master, never updated in place, so restore is
exact. A checkpoint holds the masters, as the full space's does.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from essa_hpc.runtime import seeding
from essa_hpc.spaces.adapter_io import target_linears
from essa_hpc.spaces.base import replace_module
from essa_hpc.spaces.seed_addressed import SeedAddressedSpace


class EggrollLinear(nn.Module):
    """A frozen linear plus a rank-r perturbation per candidate. The batch's rows are
    candidate-major (``counts[c]`` rows of candidate c in a row); with equal counts x is viewed
    as [C, rows_per, ...] and one batched matmul per factor serves every candidate, otherwise
    each candidate's slice of rows gets its own two matmuls. No per-row copy of the factors."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.a: torch.Tensor | None = None  # [C, d_out, r], scaled by ±σ/√r
        self.b: torch.Tensor | None = None  # [C, d_in, r]
        self.counts: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.a is None:
            return y
        xc = x.to(self.b.dtype)
        if len(set(self.counts)) == 1:
            xc = xc.reshape(len(self.counts), -1, x.shape[-1])                # [C, rows_per·seq, d_in]
            delta = torch.bmm(torch.bmm(xc, self.b), self.a.transpose(1, 2))  # [C, rows_per·seq, d_out]
        else:
            delta = torch.cat([(part @ self.b[c]) @ self.a[c].T
                               for c, part in enumerate(torch.split(xc, self.counts))])
        if torch.is_grad_enabled():
            return y + delta.reshape(y.shape).to(y.dtype)
        return y.add_(delta.reshape(y.shape).to(y.dtype))  # generation: y is this call's own output


class EggrollSpace(SeedAddressedSpace):

    def __init__(self, model, cfg, run_seed: int):
        super().__init__(model)
        self.run_seed, self.rank = run_seed, cfg.rank
        self.names = target_linears(model, list(cfg.target_modules))
        self.layers: list[EggrollLinear] = []
        for name in self.names:
            layer = EggrollLinear(model.get_submodule(name))
            replace_module(model, name, layer)
            self.layers.append(layer)
        self.master_names = self.names
        self.master = [layer.base.weight.detach().to(torch.float32, copy=True) for layer in self.layers]
        self._cache: dict = {}
        self._cached_generation: int | None = None

    def noise(self, generation: int, k: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) of member k's perturbation of tensor t in ``generation``, on the weight's device."""
        w = self.master[t]
        gen = seeding.torch_generator(self.run_seed, "noise", generation, k, t, device=w.device)
        z = torch.randn(w.shape[0] + w.shape[1], self.rank, generator=gen, dtype=torch.float32, device=w.device)
        return z[: w.shape[0]], z[w.shape[0]:]

    def _factors(self, generation: int, k: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``noise``, kept for the current generation: its groups, chunks and update reuse the draws."""
        if self._cached_generation != generation:
            self._cache, self._cached_generation = {}, generation
        key = (k, t)
        if key not in self._cache:
            self._cache[key] = self.noise(generation, k, t)
        return self._cache[key]

    @torch.no_grad()
    def apply(self, cands: np.ndarray, row_cand: np.ndarray) -> None:
        """Rows must be candidate-major, as ``evaluation`` cuts them (a chunk may split a candidate)."""
        row_cand = np.asarray(row_cand)
        starts = np.flatnonzero(np.r_[True, row_cand[1:] != row_cand[:-1]])
        used = row_cand[starts]
        if len(set(used.tolist())) != len(used):
            raise ValueError("the eggroll space needs candidate-major rows (each candidate's rows together)")
        counts = np.diff(np.r_[starts, len(row_cand)]).tolist()
        for t, layer in enumerate(self.layers):
            a_c, b_c = [], []
            for c in used:
                generation, k, scale = cands[int(c)]
                a, b = self._factors(int(generation), int(k), t)
                a_c.append(a * (float(scale) / math.sqrt(self.rank)))
                b_c.append(b)
            dtype = layer.base.weight.dtype
            layer.a, layer.b, layer.counts = torch.stack(a_c).to(dtype), torch.stack(b_c).to(dtype), counts

    def restore(self) -> None:
        for layer in self.layers:
            layer.a = layer.b = None

    def materialize(self, candidate: np.ndarray, t: int) -> torch.Tensor:
        """The dense perturbed weight W_t + (±σ/√r) A Bᵀ of one candidate (for tests)."""
        generation, k, scale = candidate
        a, b = self.noise(int(generation), int(k), t)
        return self.master[t] + float(scale) / math.sqrt(self.rank) * (a @ b.T)

    def direction(self, generation: int, k: int, t: int) -> torch.Tensor:
        a, b = self._factors(generation, k, t)
        return (a @ b.T) / math.sqrt(self.rank)  # the update's sum over members is full-rank

    @torch.no_grad()
    def write_back(self) -> None:
        for t, layer in enumerate(self.layers):
            layer.base.weight.copy_(self.master[t])
        self.restore()

    def export(self, vector: np.ndarray, out_dir: str | Path) -> None:
        """The trained model as an HF directory: the wrappers come out for the save and go back in."""
        self.restore()
        for name, layer in zip(self.names, self.layers):
            replace_module(self.model, name, layer.base)
        try:
            self.model.save_pretrained(str(out_dir))
        finally:
            for name, layer in zip(self.names, self.layers):
                replace_module(self.model, name, layer)
