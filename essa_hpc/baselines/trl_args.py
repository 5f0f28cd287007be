"""The TRL settings every baseline shares, in one place so GRPO, ESO and TR-DPO cannot drift apart.

The baselines follow the model's device (on CPU ``use_cpu=True``, no bf16, no gradient
checkpointing), save no TRL checkpoints (the methods export their own adapter or model), log every step (``logging_steps=1``, which
``MetricsCallback`` relies on for one metrics line per step) and take their seed from the
``baseline_sampling`` stream of ``essa_hpc.runtime.seeding``, so a baseline run is reproducible from ``run.seed``.
Under torchrun (``data_parallel.py``) DDP runs on gloo on CPU and nccl on GPUs, without the search for
unused parameters (every LoRA weight gets a gradient every step).
"""
from __future__ import annotations

from pathlib import Path

from essa_hpc.runtime import seeding


def trl_seed(cfg) -> int:
    """The seed TRL's ``set_seed`` gets (numpy needs < 2**32)."""
    return seeding.int_seed(cfg.run.seed, "baseline_sampling") % 2**31


def trl_common_args(cfg, run_dir: Path, device: str = "cpu", world: int = 1) -> dict:
    """TrainingArguments every baseline shares; they follow the rank's device (on CPU: no bf16 and no
    gradient checkpointing; on a GPU: bf16 when the model is bf16)."""
    b = cfg.baseline
    on_cpu = not str(device).startswith("cuda")
    ddp = dict(ddp_backend="gloo" if on_cpu else "nccl", ddp_find_unused_parameters=False) if world > 1 else {}
    return dict(**ddp, output_dir=str(run_dir / "trl"), max_steps=b.steps, learning_rate=b.learning_rate,
                lr_scheduler_type="constant", warmup_steps=0, gradient_accumulation_steps=1,
                use_cpu=on_cpu, bf16=not on_cpu and cfg.model.dtype == "bfloat16", fp16=False,
                gradient_checkpointing=False, report_to="none",
                save_strategy="no", logging_steps=1, disable_tqdm=not cfg.run.progress,
                dataloader_num_workers=0, seed=trl_seed(cfg))


def completion_length(cfg) -> int:
    """Tokens per training completion: ``baseline.max_completion_length``, 0 meaning the rollout's length,
    so by default a baseline trains on completions as long as the ones ESSA is scored on."""
    return cfg.baseline.max_completion_length or cfg.rollout.max_new_tokens


def quiet_trainer(trainer) -> None:
    """Our callback logs each step; drop transformers' printer of raw log dicts (and its progress bar
    when ``run.progress`` is off)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if not trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
