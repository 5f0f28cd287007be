"""LoRA-wrapped linear layers used by the search spaces.

``SVDLoRALinear`` implements ESSA's factorisation (arXiv 2507.04453, §3.2) with
per-row singular values, so one batch can hold many candidates:

    A = U_A diag(s_A) V_Aᵀ (r×d_in),  B = U_B diag(s_B) V_Bᵀ (d_out×r)
    y = base(x) + scale · ((x V_A ⊙ s_A[row]) U_Aᵀ V_B ⊙ s_B[row]) U_Bᵀ
"""
from __future__ import annotations

import torch
from torch import nn


def svd_factors(matrix: torch.Tensor):
    """SVD in float64 so every rank gets the same factors after rounding."""
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    return u, s, vh.T


class SVDLoRALinear(nn.Module):
    def __init__(self, base: nn.Module, lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float):
        super().__init__()
        self.base = base
        self.scale = scale
        u_a, s_a, v_a = svd_factors(lora_a)   # u_a r×r, v_a d_in×r
        u_b, s_b, v_b = svd_factors(lora_b)   # u_b d_out×r, v_b r×r
        dtype = base.weight.dtype if hasattr(base, "weight") and base.weight.is_floating_point() else torch.float32
        device = base.weight.device if hasattr(base, "weight") else torch.device("cpu")
        self.compute_dtype = dtype
        self.register_buffer("v_a", v_a.to(device, dtype).contiguous())
        self.register_buffer("mid", (u_a.T @ v_b).to(device, dtype).contiguous())  # shared r×r between the scales
        self.register_buffer("u_b_t", u_b.T.to(device, dtype).contiguous())
        # Frozen factors kept in float64 for checkpoints and exact export.
        self.factors = {"u_a": u_a, "v_a": v_a, "u_b": u_b, "v_b": v_b}
        self.base_s = torch.stack([s_a, s_b])  # 2×r, float64
        self.set_row_scales(self.base_s[None, 0], self.base_s[None, 1])

    def set_row_scales(self, s_a: torch.Tensor, s_b: torch.Tensor) -> None:
        """s_a, s_b: [rows, r] (or [1, r] to share one candidate across all rows)."""
        self.s_a = s_a.to(self.v_a.device, self.compute_dtype)[:, None, :]
        self.s_b = s_b.to(self.v_a.device, self.compute_dtype)[:, None, :]

    def materialize(self, s_a: torch.Tensor, s_b: torch.Tensor):
        """Dense (A, B) for one candidate, float64."""
        f = self.factors
        return f["u_a"] @ torch.diag(s_a) @ f["v_a"].T, f["u_b"] @ torch.diag(s_b) @ f["v_b"].T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x.to(self.compute_dtype) @ self.v_a) * self.s_a
        h = (h @ self.mid) * self.s_b
        return self.base(x) + (self.scale * (h @ self.u_b_t)).to(x.dtype)


class DenseLoRALinear(nn.Module):
    """Plain LoRA, one candidate at a time: y = base(x) + scale · x Aᵀ Bᵀ."""

    def __init__(self, base: nn.Module, lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float):
        super().__init__()
        self.base = base
        self.scale = scale
        device = base.weight.device if hasattr(base, "weight") else torch.device("cpu")
        self.register_buffer("lora_a", lora_a.float().to(device).clone())
        self.register_buffer("lora_b", lora_b.float().to(device).clone())

    def set_factors(self, lora_a: torch.Tensor, lora_b: torch.Tensor) -> None:
        self.lora_a.copy_(lora_a)
        self.lora_b.copy_(lora_b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x.float() @ self.lora_a.T) @ self.lora_b.T
        return self.base(x) + (self.scale * h).to(x.dtype)
