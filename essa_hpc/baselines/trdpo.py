"""TR-DPO baseline (Gorbatovski et al., "Learn Your Reference Model for Real Good Alignment", arXiv 2404.09656),
through TRL's ``DPOTrainer`` / ``DPOConfig(sync_ref_model=True, ref_model_mixup_alpha=alpha,
ref_model_sync_steps=tau)``: every tau steps the reference becomes ``alpha*theta + (1-alpha)*ref``
(TRL's ``SyncRefModelCallback``, after the optimizer step). The paper writes two rules: soft,
ref <- alpha*theta + (1-alpha)*ref, and hard, ref <- theta every tau steps. TRL's one rule is the soft rule
at ``tau=1`` and the hard rule at ``alpha=1``; ``alpha<1`` with ``tau>1`` mixes the two, which the paper
does not describe (tests/unit/test_baseline_objectives.py replays all three). The defaults, alpha=0.6 and
tau=512, are TRL's: a run shorter than 512 steps never moves the reference and is plain DPO.

TRL refuses ``sync_ref_model`` with a PEFT model, so TR-DPO is a full fine-tune: the SFT adapter
``space.init`` (the start ESSA uses) is merged into the base first (``merge_and_unload``), and the reference
is a frozen copy of that merged model, passed explicitly (TRL would otherwise reload the model's own path,
which is the base, not the merged SFT model).

Preference pairs come from the task's verifiable reward: for each training prompt (step s's prompts are
``task.minibatch(s, batch_size)``) the starting model samples ``k`` completions at ``baseline.temperature``
through ``HFRollout.generate``, the generation path ESSA is scored with (its batching, left padding and EOS
handling; one seed per chunk of ``rollout.max_rows`` rows from ``essa_hpc.runtime.seeding``); the pair is
(best, worst) when their rewards differ, else the prompt is dropped. Pairs are stored as token ids
(the sampled tokens themselves, prompt ids from ``HFRollout.token_ids``), so DPO scores exactly the
sequences the policy produced; ``<run_dir>/pairs.jsonl`` keeps them as text with their rewards.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
from trl import DPOConfig, DPOTrainer

from essa_hpc.baselines import BaselineError
from essa_hpc.baselines.prompts import prompt_items
from essa_hpc.baselines.run_log import BaselineRun, MetricsCallback
from essa_hpc.baselines.trl_args import completion_length, quiet_trainer, trl_common_args
from essa_hpc.generation.rollout import HFRollout
from essa_hpc.model import model_fingerprint
from essa_hpc.runtime import seeding

log = logging.getLogger(__name__)


class TokenizedDPOTrainer(DPOTrainer):
    """Skips TRL's re-tokenization when rows already hold prompt_ids / chosen_ids / rejected_ids."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):  # trl 1.16
        if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)


def sample_completions(rollout: HFRollout, items: list[dict], k: int, temperature: float, max_new_tokens: int,
                       max_rows: int, seed: int) -> list[list[tuple[list[int], str]]]:
    """``k`` sampled (token ids up to and including EOS, text) per item, prompt-major: the k copies of each
    prompt are consecutive rows, cut into chunks of ``max_rows``, chunk j seeded by ("trdpo_pairs", 0, j)."""
    rows = [it for it in items for _ in range(k)]
    flat: list[tuple[list[int], str]] = []
    for j, start in enumerate(range(0, len(rows), max_rows)):
        out = rollout.generate(rows[start:start + max_rows], sample_seed=seeding.int_seed(seed, "trdpo_pairs", 0, j),
                               temperature=temperature, max_new_tokens=max_new_tokens)
        flat += zip(out.token_ids, out.texts)
    return [flat[i * k:(i + 1) * k] for i in range(len(items))]


def make_pairs(items: list[dict], samples, rewarder, prompts) -> list[dict]:
    """(best, worst) by the task reward per prompt; prompts whose samples all tie are dropped."""
    pairs = []
    for idx, (item, group) in enumerate(zip(items, samples)):
        rewards = rewarder.rewards([item] * len(group), [text for _, text in group])
        best, worst = int(np.argmax(rewards)), int(np.argmin(rewards))
        if rewards[best] > rewards[worst]:
            pairs.append({"prompt_ids": list(prompts.token_ids(item)), "chosen_ids": group[best][0],
                          "rejected_ids": group[worst][0], "chosen": group[best][1], "rejected": group[worst][1],
                          "chosen_reward": float(rewards[best]), "rejected_reward": float(rewards[worst]),
                          "item_index": idx})
    return pairs


def full_policy(cfg, model):
    """The base with the SFT adapter merged in (when given), every weight trainable."""
    if cfg.space.init:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.space.init).merge_and_unload()
    return model.requires_grad_(True)


def build_trdpo(cfg, parts, run_dir: Path):
    """The policy, its preference pairs and a DPOTrainer whose reference TRL's ``SyncRefModelCallback`` moves;
    returns (trainer, run, pairs). Split from ``run_trdpo`` so a test can watch the reference update."""
    from datasets import Dataset

    b = cfg.baseline
    policy = full_policy(cfg, parts.model)
    run = BaselineRun(cfg, parts, run_dir, "trdpo")
    run.start(policy, ref_fingerprint=model_fingerprint(policy))
    ref = copy.deepcopy(policy).requires_grad_(False).eval()

    items = prompt_items(parts.task, b.trdpo.prompts or b.steps * b.batch_size, b.batch_size)
    policy.eval()
    # the policy is parts.model itself unless an SFT adapter was merged in: sample from the policy either way
    sampler = parts.rollout if parts.rollout.model is policy else HFRollout(policy, parts.tokenizer, cfg)
    samples = sample_completions(sampler, items, b.trdpo.k, b.temperature, completion_length(cfg),
                                 cfg.rollout.max_rows, cfg.run.seed)
    run.samples = len(items) * b.trdpo.k
    pairs = make_pairs(items, samples, parts.rewarder, parts.rollout.prompts)
    with open(run.run_dir / "pairs.jsonl", "w") as fh:
        for p in pairs:
            item = items[p["item_index"]]
            fh.write(json.dumps({"prompt": parts.rollout.prompts.render(item), "item": item, **{
                key: p[key] for key in ("chosen", "rejected", "chosen_reward", "rejected_reward", "item_index")}},
                default=str) + "\n")
    log.info("trdpo: %d preference pairs from %d prompts x %d samples", len(pairs), len(items), b.trdpo.k)
    if not pairs:
        raise BaselineError(f"no preference pairs: all {b.trdpo.k} samples of every prompt scored alike; "
                           "raise baseline.trdpo.k or baseline.temperature, or use task.train_reward=dense")

    args = DPOConfig(**trl_common_args(cfg, run_dir, str(policy.device)), per_device_train_batch_size=b.batch_size, beta=b.trdpo.dpo_beta,
                     sync_ref_model=True, ref_model_mixup_alpha=b.trdpo.alpha, ref_model_sync_steps=b.trdpo.tau,
                     precompute_ref_log_probs=False)
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for p in pairs])
    trainer = TokenizedDPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=dataset,
                                  processing_class=parts.tokenizer)

    def extra(step: int, evaluate: bool) -> dict:  # the reference moves every tau steps: record it where we evaluate
        return {"ref_fingerprint": model_fingerprint(trainer.ref_model)} if evaluate else {}

    trainer.add_callback(MetricsCallback(run, policy, None, extra=extra))
    quiet_trainer(trainer)
    return trainer, run, pairs


def run_trdpo(cfg, parts, run_dir: Path) -> dict:
    trainer, run, pairs = build_trdpo(cfg, parts, run_dir)
    trainer.train()
    out = run.run_dir / "adapter"
    trainer.model.save_pretrained(str(out))
    parts.tokenizer.save_pretrained(str(out))
    last = run.metrics.records[-1]
    return {"method": "trdpo", "steps": last["generation"], "heldout_reward": last.get("heldout_reward"),
            "start_heldout_reward": run.metrics.records[0]["heldout_reward"], "wall_s": last["wall_s"],
            "samples": last["samples"], "pairs": len(pairs), "adapter": str(out), "full_model": True}
