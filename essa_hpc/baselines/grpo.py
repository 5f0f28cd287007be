"""GRPO baseline (DeepSeekMath, arXiv 2402.03300), through TRL's ``GRPOTrainer`` / ``GRPOConfig``.

ESSA (arXiv 2507.04453) compares against GRPO with LoRA of the same rank and lr 1e-5.
Here the policy is a LoRA of ``space.rank`` on ``space.target_modules``, started from the SFT adapter
``space.init`` when given (``PeftModel.from_pretrained(..., is_trainable=True)``), the start ESSA uses.

TRL facts that matter (trl 1.16, measured on CPU):
- ``loss_type`` defaults to "dapo" in TRL; plain GRPO is ``loss_type="grpo", scale_rewards="group"``
  (our defaults), Dr.GRPO is ``loss_type="dr_grpo", scale_rewards="none"``.
- ``per_device_train_batch_size`` counts completions: ``baseline.batch_size / num_generations`` prompts
  per step, each sampled ``num_generations`` times. Under torchrun each process takes
  ``batch_size / world`` of them, so the global batch stays ``baseline.batch_size`` (``data_parallel.py``).
  One generation round per optimizer step (``steps_per_generation = gradient_accumulation_steps = 1``,
  ``num_iterations=1``).
- ``beta=0`` (default) needs no reference model; ``beta>0`` makes TRL copy the start adapter as "ref".
- On CPU: ``use_cpu=True, bf16=False, gradient_checkpointing=False`` (on a GPU the trainer follows the
  model's device and dtype); no TRL checkpoints are saved, only
  the final PEFT adapter in ``<run_dir>/adapter``.
Prompts are tokenized by our rollout (``RolloutPrompts``); step s trains on ``task.minibatch(s, P)``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from essa_hpc.baselines.prompts import RolloutPrompts, prompt_dataset, prompt_items
from essa_hpc.baselines.run_log import BaselineRun, MetricsCallback, TimedGeneration
from essa_hpc.baselines.task_reward import TaskReward
from essa_hpc.baselines.trl_args import completion_length, quiet_trainer, trl_common_args
from essa_hpc.runtime.comm import torch_distributed_comm
from essa_hpc.sft import lora_model

log = logging.getLogger(__name__)


def grpo_args(cfg, run_dir: Path, device: str = "cpu", **overrides):
    from trl import GRPOConfig

    b, world = cfg.baseline, torch_distributed_comm().world
    kwargs = dict(trl_common_args(cfg, run_dir, device, world), per_device_train_batch_size=b.batch_size // world,
                  num_generations=b.num_generations, max_completion_length=completion_length(cfg),
                  temperature=b.temperature, top_p=1.0, top_k=0, beta=b.grpo.beta, loss_type=b.grpo.loss_type,
                  scale_rewards=b.grpo.scale_rewards, num_iterations=1, shuffle_dataset=False, log_completions=False)
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def build_trainer(cfg, parts, run_dir: Path, method: str, trainer_cls=None, args=None, **trainer_kwargs):
    """Policy, prompt set, reward adapter, metrics callback and a GRPOTrainer (or subclass) around them."""
    from trl import GRPOTrainer

    b = cfg.baseline
    policy = lora_model(cfg, parts.model, cfg.space.init)  # the SFT adapter ESSA starts from, else SFT's init
    run = BaselineRun(cfg, parts, run_dir, method)
    run.start(policy)
    items = prompt_items(parts.task, b.steps * (b.batch_size // b.num_generations), b.batch_size // b.num_generations)
    dataset = prompt_dataset(items, parts.rollout.prompts)
    reward = TaskReward(parts.rewarder, items)
    prompt_ids = {text: parts.rollout.prompts.token_ids(it) for text, it in zip(dataset["prompt"], items)}
    cls = trainer_cls or type("RolloutGRPOTrainer", (RolloutPrompts, TimedGeneration, GRPOTrainer), {})
    trainer = cls(model=policy, reward_funcs=[reward], args=args or grpo_args(cfg, run_dir, str(parts.model.device)), train_dataset=dataset,
                  processing_class=parts.tokenizer, prompt_ids=prompt_ids, **trainer_kwargs)
    trainer.baseline_items = items  # dataset row i is items[i] (item_index)
    clock = trainer if isinstance(trainer, TimedGeneration) else None
    trainer.add_callback(MetricsCallback(run, policy, reward, clock=clock))
    quiet_trainer(trainer)
    return trainer, run


def weights_checksum(model) -> float:
    """Sum of |w| over the trainable weights, in float64: DDP keeps the ranks' copies bit-identical, so any
    difference means the processes trained apart (no gradient averaging) and rank 0's adapter is not the run's."""
    return float(sum(p.detach().double().abs().sum() for p in model.parameters() if p.requires_grad))


def finish(trainer, run: BaselineRun) -> dict:
    out = run.run_dir / "adapter"
    if run.comm.mismatched_ranks(repr(weights_checksum(trainer.model))):
        raise RuntimeError(f"{run.method}: the data-parallel ranks ended with different weights")
    if run.comm.is_root:  # the ranks hold the same weights (DDP); one writes them
        trainer.model.save_pretrained(str(out), selected_adapters=["default"])
        log.info("%s: exported PEFT adapter to %s", run.method, out)
    last = run.metrics.records[-1]
    return {"method": run.method, "steps": last["generation"], "heldout_reward": last.get("heldout_reward"),
            "start_heldout_reward": run.metrics.records[0].get("heldout_reward"), "wall_s": last["wall_s"],
            "samples": last["samples"], "adapter": str(out)}


def run_grpo(cfg, parts, run_dir: Path) -> dict:
    trainer, run = build_trainer(cfg, parts, run_dir, "grpo")
    trainer.train()
    return finish(trainer, run)
