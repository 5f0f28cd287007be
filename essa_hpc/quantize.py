"""Quantized frozen bases for ES evaluation (ESSA, arXiv 2507.04453, Table 2: BF16/INT8/INT4).

ES needs only forward passes, so the base can stay quantized while the adapter path stays in
float. Every mode runs after the search space has wrapped its target layers and replaces the
frozen ``nn.Linear`` modules (the adapters hold their factors as tensors, not as linears):

- ``int8``: torch's dynamic quantization (weights and activations int8), CPU; every linear;
- ``nf4``: bitsandbytes' 4-bit NormalFloat ``Linear4bit`` (QLoRA's base), compute in the model dtype;
- ``bnb_int8``: bitsandbytes' LLM.int8 ``Linear8bitLt`` (outlier threshold 6.0);
- ``int8_weight_only``: torchao's weight-only int8 (``quantize_`` with ``Int8WeightOnlyConfig``).

The bitsandbytes and torchao modes leave ``lm_head`` in float, as transformers does when it
loads a model with those libraries, so an adapter exported from a run loads in plain peft on a
base that ``from_pretrained`` quantized the same way. The modes are declared once in
``config/quantize_modes.py`` (their packages and help); this file holds what they do.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

KEEP_FLOAT = ("lm_head",)


def _frozen_linears(model: nn.Module):
    """(parent, attribute name, linear) for every nn.Linear to quantize, lm_head left out."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not full.endswith(KEEP_FLOAT):
                yield module, child_name, child


def quantize_int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def _replace_with_bnb(model: nn.Module, make) -> nn.Module:
    for parent, name, linear in _frozen_linears(model):
        device = linear.weight.device
        quantized = make(linear)
        if linear.bias is not None:
            quantized.bias = nn.Parameter(linear.bias.data.clone(), requires_grad=False)
        # Eval mode like the linear it replaces: bitsandbytes on CPU repacks 4-bit weights for another
        # kernel at the first forward in eval mode only, and a model loaded for inference (plain peft,
        # transformers) runs that kernel; results differ by about 1e-3 between the two.
        quantized.train(linear.training)
        setattr(parent, name, quantized.to(device))  # bitsandbytes quantizes in .to(device)
    return model


def quantize_nf4(model: nn.Module) -> nn.Module:
    import bitsandbytes as bnb

    def make(linear: nn.Linear):
        # compress_statistics=False: transformers' BitsAndBytesConfig default (no double quantization),
        # so a base it loads in 4 bits is this one
        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                              compute_dtype=linear.weight.dtype, compress_statistics=False, quant_type="nf4")
        q.weight = bnb.nn.Params4bit(linear.weight.data.clone(), requires_grad=False, compress_statistics=False,
                                     quant_type="nf4")
        return q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # on CPU: "optional kernels package not found", a fallback
        return _replace_with_bnb(model, make)


def quantize_bnb_int8(model: nn.Module) -> nn.Module:
    import bitsandbytes as bnb

    def make(linear: nn.Linear):
        q = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=linear.bias is not None,
                                has_fp16_weights=False, threshold=6.0)
        q.weight = bnb.nn.Int8Params(linear.weight.data.clone(), requires_grad=False, has_fp16_weights=False)
        return q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _replace_with_bnb(model, make)


def quantize_int8_weight_only(model: nn.Module) -> nn.Module:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    targets = {id(linear) for _, _, linear in _frozen_linears(model)}
    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda module, fqn: id(module) in targets)
    return model


QUANTIZERS = {"int8": quantize_int8, "nf4": quantize_nf4, "bnb_int8": quantize_bnb_int8,
              "int8_weight_only": quantize_int8_weight_only}


def quantize_base(model: nn.Module, mode: str) -> nn.Module:
    """The model with its frozen linears quantized by ``mode`` (``model.quantize``); ``none`` leaves it."""
    return model if mode == "none" else QUANTIZERS[mode](model)
