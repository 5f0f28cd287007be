"""ESO baseline (COLING 2025, as ESSA's comparison describes it): REINFORCE with a group-mean baseline over
samples drawn at several temperatures, added to the SFT loss:

    L = -(1/(B*L_max)) * sum_i (r_i - mean_group(r)) * log pi(y_i | x_i)  +  sft_weight * NLL(gold | x)

TRL has no ESO trainer. It is built as a small subclass of TRL's ``GRPOTrainer`` because GRPO already is
this estimator once configured so: ``scale_rewards="none"`` makes the advantage r - group mean (no std
division); ``loss_type="dr_grpo"`` sums token log-probs with a constant normaliser B*max_completion_length
(REINFORCE's sequence log-likelihood, no length bias); with ``num_iterations=1`` and ``beta=0`` the PPO ratio
is exactly 1 (clipping never acts), so the gradient is the plain policy gradient; ``temperature=1.0`` scores
log pi at the model's own temperature. Only two things are overridden:
- ``_generate_single_turn``: row i of a group of G samples is drawn at ``temperatures[i % len(temperatures)]``
  (one TRL generate call per temperature, via TRL's own generation path);
- ``compute_loss``: adds ``sft_weight`` x the SFT NLL on ``task.sft_target(item)`` for the batch's distinct
  prompts, built by ``essa_hpc.sft.sft_examples`` (the loss `essa-hpc sft` trains).
A hand-written loop would have to redo TRL's sampling, masking, batching and logging; this keeps ~40 lines.
"""
from __future__ import annotations

from pathlib import Path

from trl import GRPOTrainer

from essa_hpc.baselines.grpo import build_trainer, finish, grpo_args
from essa_hpc.baselines.prompts import RolloutPrompts
from essa_hpc.baselines.run_log import TimedGeneration
from essa_hpc.sft import collate, sft_examples


class ESOTrainer(RolloutPrompts, TimedGeneration, GRPOTrainer):
    def __init__(self, *args, temperatures: list[float], sft_weight: float, sft_context: tuple, **kwargs):
        self.eso_temperatures, self.sft_weight = [float(t) for t in temperatures], float(sft_weight)
        self.sft_context = sft_context  # (task, rollout, tokenizer); build_trainer sets self.baseline_items
        self._sft_batch = None
        super().__init__(*args, **kwargs)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        temps, group = self.eso_temperatures, self.num_generations
        out: list = [None] * len(prompt_ids)
        base_t = self.generation_config.temperature
        try:
            for k, t in enumerate(temps):
                rows = [i for i in range(len(prompt_ids)) if (i % group) % len(temps) == k]
                if not rows:
                    continue
                self.generation_config.temperature = t
                self.generation_kwargs["temperature"] = t
                ids, _ = super()._generate_single_turn([prompt_ids[i] for i in rows], images, multimodal_fields,
                                                       num_generations, has_tool_images)
                for i, c in zip(rows, ids):
                    out[i] = c
        finally:
            self.generation_config.temperature = base_t
            self.generation_kwargs["temperature"] = base_t
        return out, None

    def _generate_and_score_completions(self, inputs):
        (task, rollout, tok), items = self.sft_context, self.baseline_items
        distinct = list(dict.fromkeys(int(x["item_index"]) for x in inputs))
        self._sft_batch = collate(sft_examples(task, rollout.prompts, tok, [items[i] for i in distinct]), tok.pad_token_id)
        return super()._generate_and_score_completions(inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.sft_weight > 0 and self._sft_batch is not None:
            ids, mask, labels = self._sft_batch
            nll = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss = loss + self.sft_weight * nll / self.current_gradient_accumulation_steps
            self._metrics["train"]["sft_loss"].append(float(nll.detach()))
        return loss


def run_eso(cfg, parts, run_dir: Path) -> dict:
    b = cfg.baseline
    args = grpo_args(cfg, run_dir, str(parts.model.device), loss_type="dr_grpo", scale_rewards="none", beta=0.0, temperature=1.0)
    trainer, run = build_trainer(cfg, parts, run_dir, "eso", trainer_cls=ESOTrainer, args=args,
                                 temperatures=b.eso.temperatures, sft_weight=b.eso.sft_weight,
                                 sft_context=(parts.task, parts.rollout, parts.tokenizer))
    trainer.train()
    return finish(trainer, run)
