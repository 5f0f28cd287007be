"""The generation backends: ``rollout.backend`` -> its declaration.

Backends import torch (and vLLM), so a backend's declaration lives here, where validation
reads it without torch: its class as a string, its options and its check. Every backend
keeps one protocol (``generation.rollout.HFRollout``): ``prepare(space, cands, row_cand)`` ->
``generate(items, sample_seed, rows)`` -> ``release(space)``. Adding one: its file under
``essa_hpc/generation/`` plus one ``Spec`` here, or an entry point in the group
``essa_hpc.backends``.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from essa_hpc.config.kinds import Kind, Spec
from essa_hpc.config.model_names import TINY
from essa_hpc.config.options import at_least, choice, opt, positive
from essa_hpc.config.spaces import SPACES
from essa_hpc.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class VLLMOptions:
    """Keys under ``rollout.vllm``."""
    python: str = opt("", "Python of the vLLM environment; empty = this one if it has vLLM, else the project's "
                      ".venv-vllm (make venv-vllm)")
    dtype: str = opt("float32", "engine weights: float32 | bfloat16 | float16 (bfloat16 on GPUs; float32 is "
                     "faster than bfloat16 on CPUs without AVX-512 BF16)")
    max_model_len: int = opt(512, "longest prompt plus completion the engine serves, in tokens")
    kv_cache_gib: int = opt(1, "CPU only: the engine's KV cache (VLLM_CPU_KVCACHE_SPACE), whole GiB")
    gpu_memory_utilization: float = opt(0.5, "GPU only: fraction of the GPU's memory the engine may take; the "
                                        "rank's own HF copy of the model needs the rest")
    tensor_parallel_size: int = opt(1, "GPUs one engine spans")
    enforce_eager: bool = opt(True, "no CUDA graphs (vLLM needs eager mode for LoRA with tensor parallelism)")
    start_timeout_s: float = opt(900.0, "how long the engine may take to start (about 30 s on a quiet 2-core CPU)")


def find_vllm_python(configured: str) -> str:
    """The Python that runs the vLLM engine: ``rollout.vllm.python``, else this one if it has vLLM,
    else the project's ``.venv-vllm``. One-line ConfigError when there is none."""
    if configured:
        if not Path(configured).is_file():
            raise ConfigError(f"rollout.vllm.python={configured!r} does not exist")
        return configured
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    candidate = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
    if candidate.is_file():
        return str(candidate)
    raise ConfigError("rollout.backend=vllm: no vLLM found (not in this environment, no .venv-vllm); run "
                      "`make venv-vllm` on CPU or `pip install essa-hpc[vllm]` on GPU, or set rollout.vllm.python")


def check_vllm(cfg) -> None:
    o = cfg.rollout.vllm
    if not SPACES.spec(cfg.space.kind).get("peft_factors"):
        served = ", ".join(SPACES.with_capability("peft_factors"))
        raise ConfigError(f"rollout.backend=vllm serves candidates as LoRA adapters ({served}); space.kind="
                          f"{cfg.space.kind} would need its weights perturbed inside the engine, which is not built")
    if cfg.model.quantize != "none":
        raise ConfigError(f"model.quantize={cfg.model.quantize} quantizes the HF backend's base; vLLM loads its own "
                          f"weights (its own quantization is not wired here)")
    choice(o.dtype, ["float32", "bfloat16", "float16"], "rollout.vllm.dtype")
    at_least(o.max_model_len, 16, "rollout.vllm.max_model_len")
    at_least(o.tensor_parallel_size, 1, "rollout.vllm.tensor_parallel_size")
    at_least(o.kv_cache_gib, 1, "rollout.vllm.kv_cache_gib")
    positive(o.start_timeout_s, "rollout.vllm.start_timeout_s")
    if not 0.0 < o.gpu_memory_utilization <= 1.0:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization must be in (0, 1], got {o.gpu_memory_utilization}")
    if cfg.rollout.max_new_tokens >= o.max_model_len:
        raise ConfigError(f"rollout.max_new_tokens={cfg.rollout.max_new_tokens} leaves no room for the prompt in "
                          f"rollout.vllm.max_model_len={o.max_model_len}")
    tiny = TINY.match(cfg.model.name)
    hidden = int(tiny.group(1)) if tiny and tiny.group(1) else 32
    if tiny and hidden // 4 < 32:  # tiny models have 4 attention heads
        raise ConfigError(f"model.name={cfg.model.name}: vLLM's CPU attention needs a head size of at least 32 "
                          f"(this one has {hidden // 4}); use e.g. model.name=tiny-random:256x2")
    find_vllm_python(o.python)


CAPABILITIES = {
    "serves_adapters": "every row carries its own adapter, so candidates of any LoRA space share one call",
}

BACKENDS = Kind("rollout.backend", "generation backend", "essa_hpc.backends", CAPABILITIES, [
    Spec("hf", "essa_hpc.generation.rollout:HFRollout", "transformers generate; one call serves many candidates, "
         "each row with its own adapter state"),
    Spec("vllm", "essa_hpc.generation.vllm_rollout:VLLMRollout", "a vLLM engine per rank serving each candidate as "
         "a LoRA adapter (multi-LoRA); LoRA spaces", VLLMOptions, check_vllm, caps={"serves_adapters": True}),
])
