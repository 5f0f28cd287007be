"""Config validation: every check that needs no model, run before any model loads, in one place.

``validate`` walks the sections in data-flow order; a section with declared kinds asks
the chosen kind's declaration for its own check and reads its capabilities, so a new
kind brings its checks with it. Every failure is a one-line ``ConfigError``. Imports no torch: a bad config
fails in milliseconds (a test holds this).
"""
from __future__ import annotations

from pathlib import Path

from essa_hpc.config.backends import BACKENDS
from essa_hpc.config.loggers import check_loggers
from essa_hpc.config.model_names import check_known_targets, check_model_name
from essa_hpc.config.options import at_least, choice, positive
from essa_hpc.config.quantize_modes import check_quantize
from essa_hpc.config.spaces import SPACES
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.config.tasks import check_task_config
from essa_hpc.errors import ConfigError


def check_model(cfg) -> None:
    check_model_name(cfg.model.name)
    choice(cfg.model.dtype, ["float32", "bfloat16", "float16"], "model.dtype")
    check_quantize(cfg)


def check_space(cfg) -> None:
    s, spec = cfg.space, SPACES.spec(cfg.space.kind)
    at_least(s.rank, 1, "space.rank")
    if not 0.0 < s.alpha_fraction <= 1.0:
        raise ConfigError(f"space.alpha_fraction must be in (0, 1], got {s.alpha_fraction}")
    if not s.target_modules:
        raise ConfigError("space.target_modules must name at least one module")
    if spec.get("lora_targets"):
        check_known_targets(cfg.model.name, list(s.target_modules))
    if s.init and not Path(s.init, "adapter_config.json").is_file():
        raise ConfigError(f"space.init={s.init!r} is not a PEFT adapter directory (no adapter_config.json)")
    if spec.get("float_base") and cfg.model.quantize != "none":
        raise ConfigError(f"model.quantize applies to the frozen base of LoRA spaces; space.kind={s.kind} perturbs "
                          f"the base weights and needs float weights")
    if spec.get("seed_addressed") and not STRATEGIES.spec(cfg.strategy.kind).get("seed_addressed"):
        able = STRATEGIES.with_capability("seed_addressed")
        raise ConfigError(f"space.kind={s.kind} needs strategy.kind in {able} (its candidates are seed addresses; "
                          f"strategy {cfg.strategy.kind} has no seed-addressed form)")
    spec.run_check(cfg)


def check_strategy(cfg) -> None:
    st, spec = cfg.strategy, STRATEGIES.spec(cfg.strategy.kind)
    at_least(st.population, 2, "strategy.population")
    positive(st.sigma0, "strategy.sigma0")
    # On a seed-addressed space the strategy takes its seed-addressed form, which mirrors only as asked.
    always_mirrored = spec.get("always_mirrored") and not SPACES.spec(cfg.space.kind).get("seed_addressed")
    if st.population % 2 and (always_mirrored or st.mirrored):
        raise ConfigError(f"strategy.population must be even for mirrored sampling, got {st.population}")
    spec.run_check(cfg)


def check_task(cfg) -> None:
    t = cfg.task
    check_task_config(t)
    at_least(t.batch_size, 1, "task.batch_size")
    at_least(t.heldout_size, 1, "task.heldout_size")
    at_least(t.validation_size, 0, "task.validation_size")
    at_least(t.late_batch_size, 0, "task.late_batch_size")
    if not (0.0 <= t.late_batch_from <= 1.0 or (t.late_batch_from > 1 and float(t.late_batch_from).is_integer())):
        raise ConfigError(f"task.late_batch_from must be a fraction in [0, 1] of run.generations or a whole "
                          f"generation number, got {t.late_batch_from}")
    choice(t.train_reward, ["exact", "dense", "tiebreak"], "task.train_reward")
    if t.reward_timeout_s <= 0:
        raise ConfigError(f"task.reward_timeout_s must be > 0 seconds (there is no unlimited setting; use a large "
                          f"value), got {t.reward_timeout_s}")
    choice(t.reward_isolation, ["auto", "process", "inline"], "task.reward_isolation")


def check_rollout(cfg) -> None:
    r = cfg.rollout
    spec = BACKENDS.spec(r.backend)
    at_least(r.max_new_tokens, 1, "rollout.max_new_tokens")
    at_least(r.group_size, 1, "rollout.group_size")
    at_least(r.max_rows, 1, "rollout.max_rows")
    if r.temperature < 0:
        raise ConfigError(f"rollout.temperature must be >= 0, got {r.temperature}")
    spec.run_check(cfg)


def check_run(cfg, world_size: int) -> None:
    run = cfg.run
    at_least(run.generations, 1, "run.generations")
    if run.seed < 0:
        raise ConfigError(f"run.seed must be >= 0 (numpy SeedSequence takes non-negative integers), got {run.seed}")
    choice(run.device, ["auto", "cpu", "cuda"], "run.device")
    if min(run.eval_every, run.checksum_every, run.threads, run.signal_window, run.resync_window) < 0:
        raise ConfigError("run.eval_every, run.checksum_every, run.threads, run.signal_window and run.resync_window "
                          "must be >= 0")
    at_least(cfg.ckpt.every, 1, "ckpt.every")
    if run.budget_s < 0:
        raise ConfigError(f"run.budget_s must be >= 0 seconds (0 = no limit), got {run.budget_s}")
    if run.select_best and cfg.task.validation_size < 1:
        raise ConfigError("run.select_best needs a validation set: set task.validation_size > 0")
    if run.select_best and not SPACES.spec(cfg.space.kind).get("peft_factors"):
        raise ConfigError(f"run.select_best keeps the best adapter as its search vector; space.kind={cfg.space.kind} "
                          f"is seed-addressed and its vector does not hold the weights")
    at_least(cfg.ckpt.keep, 1, "ckpt.keep")
    check_loggers(cfg)
    population = cfg.strategy.population
    if world_size > population:
        raise ConfigError(f"more ranks ({world_size}) than candidates (strategy.population={population})")
    groups = -(-population // cfg.rollout.group_size)
    if world_size > groups:
        raise ConfigError(f"more ranks ({world_size}) than candidate groups ({groups} groups of "
                          f"rollout.group_size={cfg.rollout.group_size}); lower rollout.group_size")


def check_sft(cfg) -> None:
    at_least(cfg.sft.steps, 1, "sft.steps")
    at_least(cfg.sft.batch_size, 1, "sft.batch_size")
    positive(cfg.sft.learning_rate, "sft.learning_rate")


def check_baseline(cfg) -> None:
    """The keys every method reads; ``config.baselines.check_method(method, cfg)`` adds the method's own."""
    b = cfg.baseline
    at_least(b.steps, 1, "baseline.steps")
    at_least(b.batch_size, 1, "baseline.batch_size")
    at_least(b.num_generations, 2, "baseline.num_generations")  # a group needs two samples for an advantage
    positive(b.learning_rate, "baseline.learning_rate")
    positive(b.temperature, "baseline.temperature")
    for key in ("max_completion_length", "eval_every", "budget_s"):
        if getattr(b, key) < 0:
            raise ConfigError(f"baseline.{key} must be >= 0, got {getattr(b, key)}")


def validate(cfg, world_size: int = 1) -> None:
    """Every model-free check of ``cfg`` for a run on ``world_size`` ranks; one-line ConfigError."""
    for check in (check_model, check_space, check_strategy, check_task, check_rollout, check_sft, check_baseline):
        check(cfg)
    check_run(cfg, world_size)
