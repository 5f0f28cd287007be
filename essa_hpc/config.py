"""Run configuration: nested dataclasses, YAML files and dotted CLI overrides.

Every field carries its help text in ``metadata["help"]``; ``describe()`` renders
the reference used by ``essa-hpc config`` and the README. ``validate()`` runs
before any model loads (``validation.py``), so a bad config fails fast with one line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config problem the user can fix; the message is one line."""


def opt(default, help: str, resumable: bool = True):
    """A config field. ``resumable=False`` marks settings that define the search or the task:
    a checkpoint written under one value cannot be continued under another."""
    meta = {"help": help, "resumable": resumable}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    name: str = opt("tiny-random", "HF directory, hub id, a .gguf file, 'shipped:smollm2-135m-instruct', "
                    "or 'tiny-random[:HIDDENxLAYERS]' (built in code, for tests)", resumable=False)
    dtype: str = opt("float32", "Weights dtype on CPU/GPU: float32 | bfloat16 | float16", resumable=False)
    quantize: str = opt("none", "Base-model quantization for ES evaluation: none | int8 (CPU dynamic int8)", resumable=False)
    cache_dir: str = opt("", "Where converted (GGUF->safetensors) models are cached; default ~/.cache/essa_hpc")
    chat_template: bool = opt(True, "Wrap prompts with the tokenizer's chat template when it has one", resumable=False)


@dataclass
class SpaceConfig:
    kind: str = opt("svd_lora", "Search space: svd_lora (ESSA) | lora (plain A/B) | full (ES-at-scale)", resumable=False)
    rank: int = opt(8, "LoRA rank r", resumable=False)
    alpha_fraction: float = opt(1.0, "ESSA alpha: fraction of each factor's singular values that is trainable (top ones)", resumable=False)
    lora_alpha: float = opt(16.0, "LoRA scaling numerator (scale = lora_alpha / rank); ignored when init is a PEFT dir", resumable=False)
    target_modules: list = opt(["q_proj", "k_proj", "v_proj", "o_proj"], "Module names that get LoRA", resumable=False)
    init: str = opt("", "PEFT adapter directory to start from (the SFT adapter); empty = no-SFT init (A Kaiming, B zero)", resumable=False)


@dataclass
class StrategyConfig:
    kind: str = opt("cma_es", "Strategy: cma_es | open_es", resumable=False)
    population: int = opt(8, "Candidates per generation (lambda)", resumable=False)
    sigma0: float = opt(0.1, "Initial step size; relative to the space's scale when sigma_relative")
    sigma_relative: bool = opt(True, "Multiply sigma0 by the space's typical scale (mean |s| for svd_lora)")
    covariance: str = opt("separable", "cma_es covariance: full | separable (diagonal; fast for large dim)", resumable=False)
    mirrored: bool = opt(True, "Antithetic +/- pairs (cma_es via pycma mirrors; open_es always mirrors)", resumable=False)
    ties: str = opt("skip", "cma_es on all-equal rewards: skip (no update; pycma would random-walk the mean) "
                    "| rank (pycma's arbitrary order)")
    learning_rate: float = opt(0.05, "open_es: step size of the optimizer (the paper's alpha for full space)")
    optimizer: str = opt("adam", "open_es optimizer: sgd | adam")
    shaping: str = opt("centered_rank", "open_es fitness shaping: centered_rank | z_score")
    weight_decay: float = opt(0.0, "open_es L2 decay toward the start (0 = off)")


@dataclass
class TaskConfig:
    kind: str = opt("arithmetic", "Task: arithmetic | countdown | gsm8k | math | rg:<name> | custom", resumable=False)
    batch_size: int = opt(16, "Prompts per candidate per generation (the ESSA mini-batch)")
    heldout_size: int = opt(100, "Held-out problems used for heldout_reward (fixed set)", resumable=False)
    train_reward: str = opt("exact", "Training reward: exact | dense (partial credit by distance to gold) | "
                            "tiebreak (exact; partial credit only orders candidates with equal exact scores); "
                            "held-out is always exact", resumable=False)
    system_prompt: str = opt("Answer with the number only.", "System message; replaces the model's default one", resumable=False)
    digits: int = opt(2, "arithmetic: digits per operand", resumable=False)
    operators: str = opt("+-", "arithmetic: operators to draw from, any of '+-*'", resumable=False)
    prompt_template: str = opt("What is {expr}?", "arithmetic: the question, with {expr} for e.g. '12+35'; "
                               "'{expr}=' with model.chat_template=false gives short raw prompts", resumable=False)
    data_path: str = opt("", "Dataset location for datasets-backed tasks: a save_to_disk dir or json/parquet files", resumable=False)
    heldout_path: str = opt("", "Held-out split (same formats as data_path); its first heldout_size rows are the "
                            "held-out set. Empty = the last heldout_size rows of data_path", resumable=False)
    reward_fn: str = opt("", "custom: 'module:function' reward(item, completion) -> float", resumable=False)
    reward_timeout_s: float = opt(2.0, "Per-completion reward time limit in seconds (> 0); a timeout scores 0 "
                                  "and is counted in reward_faults")
    reward_isolation: str = opt("auto", "Where rewards run: process (a worker process killed and restarted on "
                                "timeout: a hard limit, even for C code) | inline (in the rank, SIGALRM limit: "
                                "cheaper, but C code cannot be interrupted) | auto (process for custom, math and "
                                "rg:* rewards, inline for the built-in arithmetic, countdown and gsm8k rewards)")


@dataclass
class RolloutConfig:
    backend: str = opt("hf", "Generation backend: hf | vllm")
    max_new_tokens: int = opt(8, "Tokens generated per prompt")
    group_size: int = opt(4, "Candidates evaluated together; groups are the unit spread over ranks, "
                          "so results do not depend on world size")
    max_rows: int = opt(128, "Row limit (prompts x candidates) per generate call")
    temperature: float = opt(0.0, "0 = greedy; >0 samples with a seed per (generation, candidate, prompt)")


@dataclass
class RunConfig:
    generations: int = opt(10, "ES generations")
    seed: int = opt(0, "Run seed; every random stream derives from it", resumable=False)
    eval_every: int = opt(5, "Held-out evaluation every N generations (also at start and end); 0 = start/end only")
    run_dir: str = opt("runs/default", "Output directory (metrics.jsonl, config.yaml, checkpoints, adapter)")
    checksum_every: int = opt(5, "Compare the adapter checksum across ranks every K generations")
    threads: int = opt(0, "torch threads per rank; 0 = cores / local ranks")
    progress: bool = opt(True, "tqdm progress bar on rank 0")


@dataclass
class CkptConfig:
    every: int = opt(1, "Checkpoint every N generations (and at the end)")
    keep: int = opt(3, "How many checkpoints to keep")


@dataclass
class SFTConfig:
    steps: int = opt(100, "SFT optimizer steps (stop early to leave ES headroom)")
    learning_rate: float = opt(2e-3, "AdamW learning rate for the LoRA factors")
    batch_size: int = opt(16, "Examples per SFT step")
    out_dir: str = opt("", "Where the SFT PEFT adapter goes; default <run.run_dir>/sft")


@dataclass
class BaselineConfig:
    steps: int = opt(20, "Gradient baselines (`essa-hpc baseline grpo|trdpo|eso`): optimizer steps")
    learning_rate: float = opt(1e-5, "Baselines: AdamW learning rate (the papers' GRPO uses 1e-5); LoRA factors for "
                               "grpo/eso, every weight for trdpo")
    batch_size: int = opt(16, "grpo/eso: completions per optimizer step (TRL per_device_train_batch_size; a multiple "
                          "of num_generations); trdpo: preference pairs per step")
    num_generations: int = opt(4, "grpo/eso: completions sampled per prompt (the group G)")
    max_completion_length: int = opt(0, "Baselines: tokens generated per completion; 0 = rollout.max_new_tokens")
    temperature: float = opt(1.0, "grpo: sampling temperature; trdpo: temperature of the samples pairs are built from")
    beta: float = opt(0.0, "grpo: KL coefficient to the start adapter (0 = no reference model, TRL's default)")
    loss_type: str = opt("grpo", "grpo: TRL loss_type: grpo | dr_grpo | dapo | bnpo (TRL defaults to dapo; "
                         "Dr.GRPO = dr_grpo with scale_rewards=none)")
    scale_rewards: str = opt("group", "grpo: advantage scaling: group (GRPO) | batch | none (Dr.GRPO)")
    eval_every: int = opt(5, "Baselines: held-out evaluation every N optimizer steps (also at start and end); "
                          "0 = start/end only")
    alpha: float = opt(0.6, "trdpo: soft reference update ref <- alpha*theta + (1-alpha)*ref (TRL ref_model_mixup_alpha)")
    tau: int = opt(512, "trdpo: update the reference every tau steps (TRL ref_model_sync_steps)")
    dpo_beta: float = opt(0.1, "trdpo: DPO beta")
    k: int = opt(4, "trdpo: completions sampled per prompt; a prompt gives the pair (best, worst) if their rewards differ")
    prompts: int = opt(0, "trdpo: training prompts the pairs are sampled for; 0 = steps x batch_size")
    temperatures: list = opt([0.5, 1.0, 1.5], "eso: sampling temperatures; the num_generations samples of a prompt "
                             "cycle through them")
    sft_weight: float = opt(1.0, "eso: weight of the SFT loss on the gold target added to the REINFORCE loss")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ckpt: CkptConfig = field(default_factory=CkptConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def validate(self, world_size: int = 1) -> None:
        from essa_hpc.validation import validate  # validation imports this module

        validate(self, world_size)


SECTIONS = [f.name for f in dataclasses.fields(Config)]


def non_resumable_keys() -> list[str]:
    """'section.key' of every field marked ``resumable=False``: the settings that define the
    search (model, space, strategy shape, seed) and the task (what the metrics measure)."""
    keys = []
    for sec in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[sec.name]
        keys += [f"{sec.name}.{f.name}" for f in dataclasses.fields(cls) if not f.metadata["resumable"]]
    return keys


NON_RESUMABLE = non_resumable_keys()


# --- building from dicts, YAML and overrides ---------------------------------

def _coerce(value: Any, typ: Any, where: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):  # nan/inf would be accepted by every `< 0` check and learn nothing
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if typ is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if typ is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return value
    return value


def _section_from_dict(cls, data: dict, section: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(f"unknown key '{section}.{key}'; allowed: {', '.join(allowed)}")
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**kwargs)


def from_dict(data: dict | None) -> Config:
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping of sections, got {type(data).__name__}")
    hints = typing.get_type_hints(Config)
    parts = {}
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigError(f"unknown section '{key}'; allowed: {', '.join(SECTIONS)}")
        parts[key] = _section_from_dict(hints[key], value or {}, key)
    return Config(**parts)


_OVERRIDE = re.compile(r"^([a-z_]+)\.([a-z_0-9]+)=(.*)$", re.S)


def parse_overrides(items: list[str]) -> dict:
    """'strategy.population=16' -> {'strategy': {'population': '16'}} (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        m = _OVERRIDE.match(item)
        if not m:
            raise ConfigError(f"bad override {item!r}; expected section.key=value, e.g. strategy.population=16")
        section, key, raw = m.groups()
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(section, {})[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); "
                                  f"each section and key may appear once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: str | os.PathLike | None, overrides: list[str] = ()) -> Config:
    data: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.load(p.read_text(), Loader=_StrictLoader) or {}
        except ConfigError as e:
            raise ConfigError(f"config file {p}: {e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections")
    for section, values in parse_overrides(list(overrides)).items():
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"section '{section}' in {path} is not a mapping")
        data[section] = {**current, **values}
    return from_dict(data)


def save_yaml(cfg: Config, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def describe() -> str:
    """Markdown reference of every section and key with its default and help."""
    lines = []
    for sec in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[sec.name]
        lines.append(f"\n**{sec.name}**\n\n| key | default | meaning |\n|---|---|---|")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            help_text = f.metadata["help"].replace("|", "\\|")  # keep Markdown table cells intact
            lines.append(f"| `{sec.name}.{f.name}` | `{default!r}` | {help_text} |")
    return "\n".join(lines).strip() + "\n"
