"""Read the starting LoRA adapter and write PEFT adapters, through peft itself.

The start is either an SFT adapter directory (ESSA's normal path) or the no-SFT
ablation: A Kaiming-uniform, B zero (peft's own default init).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from essa_hpc.config import ConfigError, SpaceConfig
from essa_hpc.runtime import seeding


@dataclass
class LoraStart:
    rank: int
    lora_alpha: float
    use_rslora: bool
    target_modules: list[str]
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name -> (A r×d_in, B d_out×r), float32

    @property
    def scale(self) -> float:
        return self.lora_alpha / (math.sqrt(self.rank) if self.use_rslora else self.rank)


def target_linears(model: nn.Module, targets: list[str]) -> list[str]:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    names = [n for n in linears if n.split(".")[-1] in targets]
    missing = [t for t in targets if not any(n.split(".")[-1] == t for n in names)]
    if missing:  # one typo among valid names would otherwise go silently into the exported adapter
        known = sorted({n.split(".")[-1] for n in linears})
        raise ConfigError(f"space.target_modules: {missing} match no nn.Linear of the model; its linear layers "
                          f"are named: {', '.join(known)}")
    return names


def no_sft_start(model: nn.Module, cfg: SpaceConfig, run_seed: int) -> LoraStart:
    factors = {}
    for i, name in enumerate(target_linears(model, cfg.target_modules)):
        lin = model.get_submodule(name)
        a = torch.empty(cfg.rank, lin.in_features)
        # Same init as peft's LoRA default: kaiming_uniform_(a=sqrt(5)) for A, zeros for B.
        g = seeding.torch_generator(run_seed, "init", i)
        bound = math.sqrt(6 / ((1 + 5) * lin.in_features))
        a.uniform_(-bound, bound, generator=g)
        factors[name] = (a, torch.zeros(lin.out_features, cfg.rank))
    return LoraStart(cfg.rank, cfg.lora_alpha, False, list(cfg.target_modules), factors)


def peft_start(model: nn.Module, cfg: SpaceConfig) -> LoraStart:
    from peft import LoraConfig
    from peft.utils import load_peft_weights

    pcfg = LoraConfig.from_pretrained(cfg.init)
    if pcfg.r != cfg.rank:
        raise ConfigError(f"space.rank={cfg.rank} but the adapter in {cfg.init} has r={pcfg.r}")
    targets = sorted(pcfg.target_modules) if not isinstance(pcfg.target_modules, str) else [pcfg.target_modules]
    weights = load_peft_weights(cfg.init, device="cpu")
    factors = {}
    for name in target_linears(model, targets):
        key = f"base_model.model.{name}"
        try:
            a, b = weights[f"{key}.lora_A.weight"], weights[f"{key}.lora_B.weight"]
        except KeyError:
            raise ConfigError(f"adapter {cfg.init} has no LoRA weights for module {name}") from None
        factors[name] = (a.float(), b.float())
    return LoraStart(pcfg.r, float(pcfg.lora_alpha), bool(pcfg.use_rslora), targets, factors)


def load_start(model: nn.Module, cfg: SpaceConfig, run_seed: int) -> LoraStart:
    return peft_start(model, cfg) if cfg.init else no_sft_start(model, cfg, run_seed)


def save_peft_adapter(start: LoraStart, factors: dict, out_dir: str | Path, base_model: str = "") -> None:
    """Write ``factors`` (module name -> (A, B)) as a PEFT LoRA adapter directory.

    The config is peft's own ``LoraConfig``; the weights use the key layout that
    ``load_peft_weights``/``PeftModel.from_pretrained`` read (a test round-trips it).
    No model is needed, so this works for int8 bases that peft cannot wrap."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pcfg = LoraConfig(r=start.rank, lora_alpha=start.lora_alpha, use_rslora=start.use_rslora,
                      target_modules=list(start.target_modules), lora_dropout=0.0, bias="none",
                      base_model_name_or_path=base_model or None)
    pcfg.save_pretrained(str(out))
    tensors = {}
    for name, (a, b) in factors.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = a.detach().float().contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = b.detach().float().contiguous()
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
