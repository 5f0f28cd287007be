"""Real architectures with seeded random weights: ``model.name=random:<arch>[:LAYERS]``.

For speed and memory at the sizes users run (the GPU check, throughput benchmarks), never for
learning: the weights are random and the tokenizer is the tiny model's character tokenizer,
whose ids fall inside the architecture's full vocabulary, so embedding and LM-head sizes are
real. ``:LAYERS`` keeps the width and vocabulary and cuts the depth, for CPU tests. The fields
are the published configs' architecture fields (no download: nothing else is needed).
"""
from __future__ import annotations

import re

from essa_hpc.errors import ConfigError

RANDOM = re.compile(r"^random:([a-z0-9.\-]+)(?::(\d+))?$")

RANDOM_ARCHS = {
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
    "qwen2.5-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
    "llama-3.2-1b": dict(model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True,
                         rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=131072),
}


def random_arch(name: str) -> tuple[dict, int] | None:
    """(architecture fields, layers) of a ``random:`` name, None for other names; one-line error if unknown."""
    if not name.startswith("random:"):
        return None
    m = RANDOM.match(name)
    if not m or m.group(1) not in RANDOM_ARCHS:
        raise ConfigError(f"model.name={name!r}: random models are 'random:ARCH' or 'random:ARCH:LAYERS' with ARCH "
                          f"one of: {', '.join(RANDOM_ARCHS)}")
    fields = RANDOM_ARCHS[m.group(1)]
    layers = int(m.group(2)) if m.group(2) else fields["num_hidden_layers"]
    if layers < 1:
        raise ConfigError(f"model.name={name!r}: at least 1 layer")
    return fields, layers
