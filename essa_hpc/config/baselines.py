"""The gradient baselines the ESSA papers compare against: ``essa-hpc baseline METHOD`` ->
its declaration. Their modules import TRL and torch, so each method's options
(``baseline.<method>.*``) and checks are declared here, where validation reads them
without either. Adding one: its file under ``essa_hpc/baselines/`` (``run_<name>(cfg,
parts, run_dir) -> summary``) plus its options, its check and one ``Spec`` here, or an
entry point in the group ``essa_hpc.baselines``.
"""
from __future__ import annotations

from dataclasses import dataclass

from essa_hpc.config.kinds import Kind, Spec
from essa_hpc.config.options import at_least, choice, opt, positive
from essa_hpc.errors import ConfigError


@dataclass
class GRPOOptions:
    """Keys under ``baseline.grpo``."""
    beta: float = opt(0.0, "KL coefficient to the start adapter (0 = no reference model, TRL's default)")
    loss_type: str = opt("grpo", "TRL loss_type: grpo | dr_grpo | dapo | bnpo (TRL defaults to dapo; "
                         "Dr.GRPO = dr_grpo with scale_rewards=none)")
    scale_rewards: str = opt("group", "advantage scaling: group (GRPO) | batch | none (Dr.GRPO)")


@dataclass
class TRDPOOptions:
    """Keys under ``baseline.trdpo``."""
    alpha: float = opt(0.6, "reference update ref <- alpha*theta + (1-alpha)*ref (TRL ref_model_mixup_alpha); "
                       "1 = the paper's hard rule")
    tau: int = opt(512, "apply it every tau steps (TRL ref_model_sync_steps); 1 = the paper's soft rule; a run of "
                   "fewer steps never moves the reference (plain DPO)")
    dpo_beta: float = opt(0.1, "DPO beta")
    k: int = opt(4, "completions sampled per prompt; a prompt gives the pair (best, worst) if their rewards differ")
    prompts: int = opt(0, "training prompts the pairs are sampled for; 0 = steps x batch_size")


@dataclass
class ESOOptions:
    """Keys under ``baseline.eso``."""
    temperatures: list = opt([0.5, 1.0, 1.5], "sampling temperatures; the num_generations samples of a prompt "
                             "cycle through them")
    sft_weight: float = opt(1.0, "weight of the SFT loss on the gold target added to the REINFORCE loss")


def _group_fits_batch(b) -> None:
    if b.batch_size % b.num_generations:
        raise ConfigError(f"baseline.batch_size={b.batch_size} (completions per step) must be a multiple of "
                          f"baseline.num_generations={b.num_generations}")


def check_grpo(cfg) -> None:
    b = cfg.baseline
    _group_fits_batch(b)
    if b.grpo.beta < 0:
        raise ConfigError(f"baseline.grpo.beta must be >= 0, got {b.grpo.beta}")
    choice(b.grpo.loss_type, ["grpo", "dr_grpo", "dapo", "bnpo"], "baseline.grpo.loss_type")
    choice(b.grpo.scale_rewards, ["group", "batch", "none"], "baseline.grpo.scale_rewards")


def check_trdpo(cfg) -> None:
    o = cfg.baseline.trdpo
    at_least(o.k, 2, "baseline.trdpo.k")
    at_least(o.tau, 1, "baseline.trdpo.tau")
    positive(o.dpo_beta, "baseline.trdpo.dpo_beta")
    if o.prompts < 0:
        raise ConfigError(f"baseline.trdpo.prompts must be >= 0, got {o.prompts}")
    if not 0.0 < o.alpha <= 1.0:
        raise ConfigError(f"baseline.trdpo.alpha must be in (0, 1], got {o.alpha}")


def check_eso(cfg) -> None:
    b, o = cfg.baseline, cfg.baseline.eso
    _group_fits_batch(b)
    try:
        temps = [float(t) for t in o.temperatures]
    except (TypeError, ValueError):
        raise ConfigError(f"baseline.eso.temperatures must be numbers, got {o.temperatures!r}") from None
    if not temps or min(temps) <= 0:
        raise ConfigError(f"baseline.eso.temperatures must be a non-empty list of numbers > 0, got {o.temperatures!r}")
    if len(temps) > b.num_generations:
        raise ConfigError(f"eso draws the num_generations={b.num_generations} samples of a prompt over "
                          f"{len(temps)} temperatures; raise baseline.num_generations or list fewer")
    if o.sft_weight < 0:
        raise ConfigError(f"baseline.eso.sft_weight must be >= 0, got {o.sft_weight}")


# Quantized linears peft wraps with a trainable LoRA whose gradient flows through the frozen, quantized
# weight: bitsandbytes' 4-bit and LLM.int8 layers (QLoRA) and torchao's weight-only int8. torch's
# dynamic int8 modules are not nn.Linear, so peft cannot wrap them.
QLORA_MODES = ("nf4", "bnb_int8", "int8_weight_only")

CAPABILITIES = {
    "data_parallel": "it runs on several processes under torchrun, each taking baseline.batch_size / N "
                     "completions, DDP averaging the gradient",
    "quantized_base": "it trains a LoRA over the frozen base, so the base may be quantized (QLoRA: "
                      "model.quantize in " + ", ".join(QLORA_MODES) + ")",
}

BASELINES = Kind("baseline method", "baseline", "essa_hpc.baselines", CAPABILITIES, [
    Spec("grpo", "essa_hpc.baselines.grpo:run_grpo", "GRPO through TRL's GRPOTrainer, LoRA policy", GRPOOptions,
         check_grpo, caps={"data_parallel": True, "quantized_base": True}),
    # TR-DPO samples its pairs up front and ESO has not been tried under DDP: one process each.
    Spec("trdpo", "essa_hpc.baselines.trdpo:run_trdpo", "TR-DPO: DPO with a soft-updated reference, full "
         "fine-tune", TRDPOOptions, check_trdpo),
    Spec("eso", "essa_hpc.baselines.eso:run_eso", "REINFORCE at several temperatures plus SFT on the gold answer",
         ESOOptions, check_eso, caps={"quantized_base": True}),
])


def check_method(method: str, cfg) -> None:
    """The method's config checks; one-line ConfigError, before any model or TRL import."""
    spec = BASELINES.spec(method)
    quantize = cfg.model.quantize
    if quantize != "none" and not spec.get("quantized_base"):
        raise ConfigError(f"baseline {method} trains the full model by backpropagation and needs model.quantize=none")
    if quantize != "none" and quantize not in QLORA_MODES:
        raise ConfigError(f"baseline {method} over a quantized base is QLoRA: model.quantize must be one of "
                          f"{', '.join(QLORA_MODES)}, got {quantize}")
    spec.run_check(cfg)
