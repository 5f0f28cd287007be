"""Supervised LoRA warm-up: the first stage of ESSA (arXiv 2507.04453, §3.2).

peft injects LoRA on the same target modules and rank the search space uses;
a plain torch loop trains it with the loss on the completion tokens only (the
prompt is rendered exactly as the rollout renders it). The result is a PEFT
adapter directory that ``space.init`` consumes. ``lora_model`` is also the policy
the GRPO and ESO baselines train, so a baseline without ``space.init`` starts from
the very LoRA init SFT starts from.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from essa_hpc.config import Config
from essa_hpc.runtime import seeding

log = logging.getLogger(__name__)
IGNORE = -100


def sft_examples(task, prompts, tok, items: list[dict]) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per item: labels mask the prompt and keep target + EOS. ``prompts``: the
    ``PromptRenderer`` the rollout scores with, so SFT trains on the very prompt tokens ES sees."""
    out = []
    for item in items:
        prompt = prompts.token_ids(item)
        target = tok(task.sft_target(item), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append((prompt + target, [IGNORE] * len(prompt) + target))
    return out


def collate(batch, pad_id: int):
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id)
    labels = torch.full((len(batch), width), IGNORE)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):  # left padding, as in generation
        ids[i, width - len(x):] = torch.tensor(x)
        labels[i, width - len(y):] = torch.tensor(y)
        mask[i, width - len(x):] = 1
    return ids, mask, labels


def lora_model(cfg: Config, model, start: str = ""):
    """A trainable LoRA of ``space.rank`` on ``space.target_modules`` around ``model``: the PEFT adapter
    directory ``start`` when given, else a fresh LoRA (A Kaiming from the ``sft_init`` stream, B zero).
    The RNG is forked, so building it leaves torch's global stream where it was."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if start:
        return PeftModel.from_pretrained(model, start, is_trainable=True)
    peft_cfg = LoraConfig(r=cfg.space.rank, lora_alpha=cfg.space.lora_alpha, lora_dropout=0.0, bias="none",
                          target_modules=list(cfg.space.target_modules))
    with torch.random.fork_rng():
        torch.manual_seed(seeding.int_seed(cfg.run.seed, "sft_init"))  # LoRA A init
        return get_peft_model(model, peft_cfg)


def train_sft(cfg: Config, parts, out_dir: Path, progress: bool = True) -> dict:
    model, tok, task = parts.model, parts.tokenizer, parts.task
    peft_model = lora_model(cfg, model)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.sft.learning_rate, weight_decay=0.0)
    pool = task.training_items()  # never the validation items
    t0, losses = time.perf_counter(), []
    bar = tqdm(range(cfg.sft.steps), desc="SFT", unit="step", disable=not progress, dynamic_ncols=True)
    for step in bar:
        pick = seeding.rng(cfg.run.seed, "sft_minibatch", step).choice(len(pool), cfg.sft.batch_size)
        ids, mask, labels = collate(sft_examples(task, parts.rollout.prompts, tok, [pool[i] for i in pick]),
                                    tok.pad_token_id)
        loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir))
    peft_model.eval()
    return {"steps": cfg.sft.steps, "final_loss": sum(losses[-10:]) / len(losses[-10:]),
            "sft_s": time.perf_counter() - t0, "out_dir": str(out_dir)}
