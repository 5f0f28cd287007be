"""Config validation: every check that needs no model, run before any model loads.

One-line ``ConfigError`` for every bad value; called through ``Config.validate``.
"""
from __future__ import annotations

from pathlib import Path

from essa_hpc.config import BaselineConfig, Config, ConfigError


def _choice(value: str, allowed: list[str], where: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}={value!r} is not one of: {', '.join(allowed)}")


def _positive(value, where: str, minimum=1) -> None:
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value}")


def validate(cfg: Config, world_size: int = 1) -> None:
    from essa_hpc.model import check_known_targets, check_model_name
    from essa_hpc.tasks import check_task_config

    check_model_name(cfg.model.name)
    _choice(cfg.model.dtype, ["float32", "bfloat16", "float16"], "model.dtype")
    _choice(cfg.model.quantize, ["none", "int8"], "model.quantize")
    _choice(cfg.space.kind, ["svd_lora", "lora", "full"], "space.kind")
    _positive(cfg.space.rank, "space.rank")
    if not 0.0 < cfg.space.alpha_fraction <= 1.0:
        raise ConfigError(f"space.alpha_fraction must be in (0, 1], got {cfg.space.alpha_fraction}")
    if not cfg.space.target_modules:
        raise ConfigError("space.target_modules must name at least one module")
    if cfg.space.kind != "full":
        check_known_targets(cfg.model.name, list(cfg.space.target_modules))
    if cfg.space.init and not Path(cfg.space.init, "adapter_config.json").is_file():
        raise ConfigError(f"space.init={cfg.space.init!r} is not a PEFT adapter directory (no adapter_config.json)")
    _choice(cfg.strategy.kind, ["cma_es", "open_es"], "strategy.kind")
    _positive(cfg.strategy.population, "strategy.population", 2)
    always_mirrored = cfg.strategy.kind == "open_es" and cfg.space.kind != "full"  # OpenAI-ES
    if cfg.strategy.population % 2 and (always_mirrored or cfg.strategy.mirrored):
        raise ConfigError(f"strategy.population must be even for mirrored sampling, got {cfg.strategy.population}")
    if cfg.strategy.sigma0 <= 0:
        raise ConfigError(f"strategy.sigma0 must be > 0, got {cfg.strategy.sigma0}")
    _choice(cfg.strategy.covariance, ["full", "separable"], "strategy.covariance")
    _choice(cfg.strategy.ties, ["skip", "rank"], "strategy.ties")
    _choice(cfg.strategy.optimizer, ["sgd", "adam"], "strategy.optimizer")
    _choice(cfg.strategy.shaping, ["centered_rank", "z_score"], "strategy.shaping")
    if cfg.space.kind == "full" and cfg.model.quantize != "none":
        raise ConfigError("model.quantize applies to the frozen base of LoRA spaces; the full space perturbs "
                          "every weight and needs float weights")
    if cfg.space.kind == "full" and cfg.strategy.kind != "open_es":
        raise ConfigError("space.kind=full needs strategy.kind=open_es (CMA-ES cannot hold a full-model covariance)")
    check_task_config(cfg.task)
    _positive(cfg.task.batch_size, "task.batch_size")
    _positive(cfg.task.heldout_size, "task.heldout_size")
    _choice(cfg.task.train_reward, ["exact", "dense", "tiebreak"], "task.train_reward")
    _choice(cfg.rollout.backend, ["hf", "vllm"], "rollout.backend")
    if cfg.rollout.backend == "vllm":
        raise ConfigError("rollout.backend=vllm is not implemented yet (vLLM serves one adapter per call, not "
                          "per-row singular values); use rollout.backend=hf")
    _positive(cfg.rollout.max_new_tokens, "rollout.max_new_tokens")
    _positive(cfg.rollout.group_size, "rollout.group_size")
    _positive(cfg.rollout.max_rows, "rollout.max_rows")
    if cfg.rollout.temperature < 0:
        raise ConfigError(f"rollout.temperature must be >= 0, got {cfg.rollout.temperature}")
    if cfg.task.reward_timeout_s <= 0:
        raise ConfigError(f"task.reward_timeout_s must be > 0 seconds (there is no unlimited setting; use a large "
                          f"value), got {cfg.task.reward_timeout_s}")
    _choice(cfg.task.reward_isolation, ["auto", "process", "inline"], "task.reward_isolation")
    _positive(cfg.run.generations, "run.generations")
    if cfg.run.seed < 0:
        raise ConfigError(f"run.seed must be >= 0 (numpy SeedSequence takes non-negative integers), got {cfg.run.seed}")
    if cfg.run.eval_every < 0 or cfg.run.checksum_every < 0 or cfg.run.threads < 0:
        raise ConfigError("run.eval_every, run.checksum_every and run.threads must be >= 0")
    _positive(cfg.ckpt.every, "ckpt.every")
    _positive(cfg.ckpt.keep, "ckpt.keep")
    _positive(cfg.sft.steps, "sft.steps")
    _positive(cfg.sft.batch_size, "sft.batch_size")
    if cfg.sft.learning_rate <= 0:
        raise ConfigError(f"sft.learning_rate must be > 0, got {cfg.sft.learning_rate}")
    validate_baseline(cfg.baseline)
    if world_size > cfg.strategy.population:
        raise ConfigError(f"more ranks ({world_size}) than candidates (strategy.population={cfg.strategy.population})")
    groups = -(-cfg.strategy.population // cfg.rollout.group_size)
    if world_size > groups:
        raise ConfigError(f"more ranks ({world_size}) than candidate groups ({groups} groups of "
                          f"rollout.group_size={cfg.rollout.group_size}); lower rollout.group_size")


def validate_baseline(b: BaselineConfig) -> None:
    for key in ("steps", "batch_size", "k", "tau"):
        _positive(getattr(b, key), f"baseline.{key}", 2 if key == "k" else 1)
    _positive(b.num_generations, "baseline.num_generations", 2)  # a group needs two samples for an advantage
    for key in ("learning_rate", "temperature", "dpo_beta"):
        if getattr(b, key) <= 0:
            raise ConfigError(f"baseline.{key} must be > 0, got {getattr(b, key)}")
    for key in ("max_completion_length", "beta", "eval_every", "prompts", "sft_weight"):
        if getattr(b, key) < 0:
            raise ConfigError(f"baseline.{key} must be >= 0, got {getattr(b, key)}")
    _choice(b.loss_type, ["grpo", "dr_grpo", "dapo", "bnpo"], "baseline.loss_type")
    _choice(b.scale_rewards, ["group", "batch", "none"], "baseline.scale_rewards")
    if not 0.0 < b.alpha <= 1.0:
        raise ConfigError(f"baseline.alpha must be in (0, 1], got {b.alpha}")
    try:
        temps = [float(t) for t in b.temperatures]
    except (TypeError, ValueError):
        raise ConfigError(f"baseline.temperatures must be numbers, got {b.temperatures!r}") from None
    if not temps or min(temps) <= 0:
        raise ConfigError(f"baseline.temperatures must be a non-empty list of numbers > 0, got {b.temperatures!r}")
