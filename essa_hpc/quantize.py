"""INT8 base model for ES evaluation (ESSA, arXiv 2507.04453, Table 2: BF16/INT8/INT4).

CPU route: torch dynamic quantization of every frozen ``nn.Linear`` (weights int8,
activations quantized on the fly). It runs after the search space has wrapped its
target layers, so the LoRA path stays in floating point and only the frozen
base weights are int8 — the same split as ESSA's quantized runs.

GPU route (not exercised here, no GPU): load with
``BitsAndBytesConfig(load_in_8bit=True)`` (or ``load_in_4bit``) in ``from_pretrained``,
or torchao's ``Int8WeightOnlyConfig``; the SVD-LoRA wrappers work unchanged because
they only call ``base(x)``.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
