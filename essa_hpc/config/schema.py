"""Run configuration: nested dataclasses, YAML files and dotted CLI overrides.

Every field carries its help text in ``metadata["help"]`` and whether a checkpoint
survives a change of it in ``metadata["resumable"]``; ``describe()`` renders the
reference used by ``essa-hpc config`` and the README. A section with declared kinds
(space, strategy, task, rollout, baseline) holds one sub-section per kind, made from that
kind's ``Options`` in its declaration (``kinds.py``), so ``strategy.open_es.learning_rate``
exists exactly when ``open_es`` does, plug-ins included. Checking values is
``validation.validate``; nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from essa_hpc.config.backends import BACKENDS
from essa_hpc.config.baselines import BASELINES
from essa_hpc.config.dataclass_io import StrictLoader, deep_merge, fields_of, parse_overrides, section_from_dict
from essa_hpc.config.kinds import Kind
from essa_hpc.config.loggers import LOGGERS
from essa_hpc.config.options import opt
from essa_hpc.config.quantize_modes import quantize_help
from essa_hpc.config.spaces import SPACES
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.config.tasks import TASKS
from essa_hpc.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["Config", "ConfigError", "load", "from_dict", "from_saved", "save_yaml", "describe"]


def with_kind_options(name: str, common: type, kinds: Kind, section: str) -> type:
    """``common`` plus one sub-section field per declared kind that has options."""
    extra = [(s.name, s.options_class, field(default_factory=s.options_class,
                                             metadata={"help": f"{section}.{s.name}: options of {s.name}"}))
             for s in kinds.specs() if s.options is not None]
    cls = dataclasses.make_dataclass(name, extra, bases=(common,))
    cls.__module__, cls.__doc__ = __name__, common.__doc__
    return cls


@dataclass
class ModelConfig:
    name: str = opt("tiny-random", "HF directory, hub id, a .gguf file, 'shipped:smollm2-135m-instruct', "
                    "or 'tiny-random[:HIDDENxLAYERS]' (built in code, for tests)", resumable=False)
    dtype: str = opt("float32", "Weights dtype on CPU/GPU: float32 | bfloat16 | float16", resumable=False)
    quantize: str = opt("none", "Quantized frozen base for ES (LoRA spaces; the adapter stays float): "
                        + quantize_help(), resumable=False)
    cache_dir: str = opt("", "Where converted (GGUF->safetensors) models are cached; default ~/.cache/essa_hpc")
    chat_template: bool = opt(True, "Wrap prompts with the tokenizer's chat template when it has one", resumable=False)


@dataclass
class _SpaceCommon:
    """Keys every space reads; a space's own keys, if it has any, are ``space.<kind>``."""
    kind: str = opt("svd_lora", "Search space: " + SPACES.help(), resumable=False)
    rank: int = opt(8, "LoRA rank r", resumable=False)
    alpha_fraction: float = opt(1.0, "ESSA alpha: fraction of each factor's singular values that is trainable (top ones)", resumable=False)
    lora_alpha: float = opt(16.0, "LoRA scaling numerator (scale = lora_alpha / rank); ignored when init is a PEFT dir", resumable=False)
    target_modules: list = opt(["q_proj", "k_proj", "v_proj", "o_proj"], "Module names that get LoRA", resumable=False)
    init: str = opt("", "PEFT adapter directory to start from (the SFT adapter); empty = no-SFT init (A Kaiming, B zero)", resumable=False)


SpaceConfig = with_kind_options("SpaceConfig", _SpaceCommon, SPACES, "space")


@dataclass
class _StrategyCommon:
    """Keys every strategy reads; each kind's own keys are the sub-section ``strategy.<kind>``."""
    kind: str = opt("cma_es", "Strategy: " + STRATEGIES.help(), resumable=False)
    population: int = opt(8, "Candidates per generation (lambda)", resumable=False)
    sigma0: float = opt(0.1, "Initial step size; relative to the space's scale when sigma_relative")
    sigma_relative: bool = opt(True, "Multiply sigma0 by the space's typical scale (mean |s| for svd_lora)")
    mirrored: bool = opt(True, "Antithetic +/- pairs (cma_es via pycma mirrors, snes; open_es always mirrors "
                         "on vector spaces)", resumable=False)

    @property
    def options(self):
        """The chosen kind's options (``strategy.<kind>``), or None if it has none."""
        return getattr(self, self.kind, None)


StrategyConfig = with_kind_options("StrategyConfig", _StrategyCommon, STRATEGIES, "strategy")


@dataclass
class _TaskCommon:
    """Keys every task reads; a task's own keys are ``task.<kind>``."""
    kind: str = opt("arithmetic", "Task: " + TASKS.help(), resumable=False)
    batch_size: int = opt(16, "Prompts per candidate per generation (the ESSA mini-batch)")
    late_batch_size: int = opt(0, "Prompts per candidate from generation task.late_batch_from x run.generations "
                               "on: a larger mini-batch late in the run, when small batches overfit; 0 = "
                               "task.batch_size throughout")
    late_batch_from: float = opt(0.5, "Fraction of run.generations after which task.late_batch_size applies, or "
                                 "the whole number > 1 of the first generation it applies to (for a run.budget_s "
                                 "run, whose length is not known in generations)")
    heldout_size: int = opt(100, "Held-out problems used for heldout_reward (fixed set)", resumable=False)
    validation_size: int = opt(0, "Validation problems taken out of the training pool (fixed set, never trained "
                               "on), scored as validation_reward at each held-out evaluation; for tuning and "
                               "run.select_best. 0 = none", resumable=False)
    train_reward: str = opt("exact", "Training reward: exact | dense (partial credit by distance to gold) | "
                            "tiebreak (exact; partial credit only orders candidates with equal exact scores); "
                            "held-out is always exact", resumable=False)
    system_prompt: str = opt("Answer with the number only.", "System message; replaces the model's default one", resumable=False)
    data_path: str = opt("", "Dataset location for datasets-backed tasks: a save_to_disk dir or json/parquet files", resumable=False)
    heldout_path: str = opt("", "Held-out split (same formats as data_path); its first heldout_size rows are the "
                            "held-out set. Empty = the last heldout_size rows of data_path", resumable=False)
    reward_timeout_s: float = opt(2.0, "Per-completion reward time limit in seconds (> 0); a timeout scores 0 "
                                  "and is counted in reward_faults")
    reward_isolation: str = opt("auto", "Where rewards run: process (a worker process killed and restarted on "
                                "timeout: a hard limit, even for C code) | inline (in the rank, SIGALRM limit: "
                                "cheaper, but C code cannot be interrupted) | auto (inline for the tasks with "
                                "bounded built-in rewards: " + ", ".join(TASKS.with_capability("inline_reward")) +
                                "; process for the others)")


TaskConfig = with_kind_options("TaskConfig", _TaskCommon, TASKS, "task")


@dataclass
class _RolloutCommon:
    """Keys every backend reads; a backend's own keys are ``rollout.<backend>``."""
    backend: str = opt("hf", "Generation backend: " + BACKENDS.help())
    max_new_tokens: int = opt(8, "Tokens generated per prompt")
    group_size: int = opt(4, "Candidates evaluated together; groups are the unit spread over ranks, "
                          "so results do not depend on world size")
    max_rows: int = opt(128, "Row limit (prompts x candidates) per generate call")
    temperature: float = opt(0.0, "0 = greedy; >0 samples with a seed per (generation, candidate, prompt)")


RolloutConfig = with_kind_options("RolloutConfig", _RolloutCommon, BACKENDS, "rollout")


@dataclass
class _RunCommon:
    """Keys of the run itself; a logger's own keys are ``run.<logger>``."""
    generations: int = opt(10, "ES generations")
    seed: int = opt(0, "Run seed; every random stream derives from it", resumable=False)
    eval_every: int = opt(5, "Held-out evaluation every N generations (also at start and end); 0 = start/end only")
    budget_s: float = opt(0.0, "Stop after this many seconds of ES (generation steps less their held-out and "
                          "validation evaluations; checkpoints excluded) and finish as if run.generations were "
                          "reached: tuning arms at equal wall time. 0 = no limit")
    select_best: bool = opt(False, "Export the adapter with the best validation_reward (scored with the held-out "
                            "one; needs task.validation_size > 0) as run_dir/adapter, the last one as "
                            "run_dir/adapter_last")
    run_dir: str = opt("runs/default", "Output directory (metrics.jsonl, config.yaml, checkpoints, adapter)")
    checksum_every: int = opt(5, "Compare the adapter checksum across ranks every K generations")
    resync_window: int = opt(10, "When the checksum finds ranks that differ, broadcast rank 0's state and go on; "
                             "a second mismatch within this many generations stops the run. 0 = stop at the first")
    threads: int = opt(0, "torch threads per rank; 0 = cores / local ranks")
    device: str = opt("auto", "Where each rank computes: auto (cuda:LOCAL_RANK when CUDA is present, else cpu) | cpu "
                      "| cuda (fails before the model loads when there is no CUDA device)")
    progress: bool = opt(True, "tqdm progress bar on rank 0")
    signal_window: int = opt(10, "Warn once (rank 0) when the updates of this many generations in a row agreed no "
                             "better than chance (metrics update_snr); 0 = never")
    report_to: str = opt("", "Also send the metrics rows (rank 0) to these loggers, comma-separated: "
                         + LOGGERS.help() + "; metrics.jsonl stays the record")


RunConfig = with_kind_options("RunConfig", _RunCommon, LOGGERS, "run")


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
class _BaselineCommon:
    """Keys of `essa-hpc baseline METHOD` that every method reads; a method's own keys are ``baseline.<method>``."""
    steps: int = opt(20, "Optimizer steps")
    learning_rate: float = opt(1e-5, "AdamW learning rate (the papers' GRPO uses 1e-5); LoRA factors for "
                               "grpo/eso, every weight for trdpo")
    batch_size: int = opt(16, "grpo/eso: completions per optimizer step (TRL per_device_train_batch_size; a multiple "
                          "of num_generations); trdpo: preference pairs per step")
    num_generations: int = opt(4, "grpo/eso: completions sampled per prompt (the group G)")
    max_completion_length: int = opt(0, "Tokens generated per completion; 0 = rollout.max_new_tokens")
    temperature: float = opt(1.0, "Sampling temperature (grpo; trdpo's samples the pairs are built from)")
    eval_every: int = opt(5, "Held-out evaluation every N optimizer steps (also at start and end); 0 = start/end only")
    budget_s: float = opt(0.0, "Stop after this many seconds of training (wall time less held-out and validation "
                          "evaluations), evaluated as the last step: tuning arms at equal wall time. 0 = no limit")


BaselineConfig = with_kind_options("BaselineConfig", _BaselineCommon, BASELINES, "baseline")


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


SECTIONS = [f.name for f in dataclasses.fields(Config)]
_SECTION_TYPES = typing.get_type_hints(Config)


def non_resumable_keys(cfg: Config | None = None) -> list[str]:
    """Dotted keys of every field marked ``resumable=False``: the settings that define the search
    (model, space, strategy shape, seed) and the task. With ``cfg``, a kind's sub-section counts
    only for the chosen kind (changing cma_es options cannot matter to an open_es run)."""
    keys = []
    for section in SECTIONS:
        chosen = getattr(getattr(cfg, section), "kind", None) if cfg is not None else None
        for dotted, f in fields_of(_SECTION_TYPES[section], section):
            parts = dotted.split(".")
            if len(parts) > 2 and chosen is not None and parts[1] != chosen:
                continue
            if not f.metadata["resumable"]:
                keys.append(dotted)
    return keys


# --- building from dicts, YAML and overrides ---------------------------------

def from_dict(data: dict | None) -> Config:
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping of sections, got {type(data).__name__}")
    data = _move_flat_keys(data, _DEPRECATED_FLAT, notice=True)
    parts = {}
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigError(f"unknown section '{key}'; allowed: {', '.join(SECTIONS)}")
        parts[key] = section_from_dict(_SECTION_TYPES[key], value or {}, key)
    return Config(**parts)


# Keys that moved from their section into a kind's sub-section: format 2 moved the strategy
# and baseline keys, format 3 the task keys. Saved configs (checkpoints, run dirs) are
# upgraded silently; a user's config may still set the format-3 keys flat for one release.
MOVED_KEYS = {
    "strategy": {"covariance": "cma_es", "ties": "cma_es", "learning_rate": "open_es", "optimizer": "open_es",
                 "shaping": "open_es", "weight_decay": "open_es"},
    "baseline": {"beta": "grpo", "loss_type": "grpo", "scale_rewards": "grpo", "alpha": "trdpo", "tau": "trdpo",
                 "dpo_beta": "trdpo", "k": "trdpo", "prompts": "trdpo", "temperatures": "eso", "sft_weight": "eso"},
    "task": {"digits": "arithmetic", "operators": "arithmetic", "prompt_template": "arithmetic",
             "reward_fn": "custom"},
}
_DEPRECATED_FLAT = ("task",)  # sections whose flat keys a user's config may still use, with a notice


def _move_flat_keys(data: dict, sections, notice: bool) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for section in sections:
        values = out.get(section)
        if not isinstance(values, dict):
            continue
        for key, kind in MOVED_KEYS[section].items():
            if key in values:
                nested = values.get(kind) if isinstance(values.get(kind), dict) else {}
                values[kind] = {**nested, key: values.pop(key)}
                if notice:
                    log.warning("%s.%s is deprecated: use %s.%s.%s (the flat key goes in the next release)",
                                section, key, section, kind, key)
    return out


# Keys added with a default that behaves differently from what came before: a saved config
# without one was written under the earlier behaviour, which this value names.
ADDED_KEYS = {("strategy", "cma_es", "tie_weights"): "index"}


def upgrade_saved(data: dict) -> dict:
    """A config saved by an earlier version (a checkpoint's, a run dir's config.yaml) in today's
    layout: flat kind keys move into their kind's sub-section, and a key added since then takes
    the value that names the behaviour the config ran under. Today's layout passes unchanged."""
    out = _move_flat_keys(data, MOVED_KEYS, notice=False)
    for (section, kind, key), earlier in ADDED_KEYS.items():
        options = out.get(section, {}).get(kind) if isinstance(out.get(section), dict) else None
        if isinstance(options, dict) and key not in options:
            out[section][kind] = {**options, key: earlier}
    return out


def from_saved(data: dict) -> Config:
    """The Config of a checkpoint or a run dir, from this version or an earlier one."""
    return from_dict(upgrade_saved(data))


def load(path: str | os.PathLike | None, overrides: list[str] = (), saved: bool = False) -> Config:
    """The config in the YAML file ``path`` (None: the defaults) with ``overrides`` applied.
    ``saved=True`` reads a file this or an earlier version wrote (a run dir's config.yaml)."""
    data: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.load(p.read_text(), Loader=StrictLoader) or {}
        except ConfigError as e:
            raise ConfigError(f"config file {p}: {e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections")
        if saved:
            data = upgrade_saved(data)
    for section, values in parse_overrides(list(overrides)).items():
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"section '{section}' in {path} is not a mapping")
        data[section] = deep_merge(current, values)
    return from_dict(data)


def save_yaml(cfg: Config, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def describe() -> str:
    """Markdown reference of every section and key with its default and help."""
    lines = []
    for section in SECTIONS:
        lines.append(f"\n**{section}**\n\n| key | default | meaning |\n|---|---|---|")
        for dotted, f in fields_of(_SECTION_TYPES[section], section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            help_text = f.metadata["help"].replace("|", "\\|")  # keep Markdown table cells intact
            lines.append(f"| `{dotted}` | `{default!r}` | {help_text} |")
    return "\n".join(lines).strip() + "\n"
