"""``model.quantize`` modes: name -> (the package it needs, its help line). What each mode does
is ``essa_hpc/quantize.py``; this table lets validation refuse a mode whose package is missing,
in one line and without torch."""
from __future__ import annotations

import importlib.util

from essa_hpc.config.options import choice
from essa_hpc.errors import ConfigError

QUANTIZE_MODES = {
    "none": (None, "the base in model.dtype"),
    "int8": (None, "torch dynamic int8, weights and activations; CPU"),
    "nf4": ("bitsandbytes", "bitsandbytes 4-bit NormalFloat, QLoRA's base"),
    "bnb_int8": ("bitsandbytes", "bitsandbytes LLM.int8"),
    "int8_weight_only": ("torchao", "torchao weight-only int8"),
}


def quantize_help() -> str:
    return " | ".join(f"{name} ({what})" for name, (_, what) in QUANTIZE_MODES.items())


def check_quantize(cfg) -> None:
    choice(cfg.model.quantize, list(QUANTIZE_MODES), "model.quantize")
    package = QUANTIZE_MODES[cfg.model.quantize][0]
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(f"model.quantize={cfg.model.quantize} needs the {package} package: pip install {package}")


def package_versions(cfg) -> dict[str, str]:
    """The versions a run's numbers depend on (torch, transformers, peft, and the quantizing package)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers", "peft"] + [p for p in [QUANTIZE_MODES[cfg.model.quantize][0]] if p]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
