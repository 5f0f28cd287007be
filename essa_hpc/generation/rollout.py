"""Generation backends: turn rendered prompts into completions.

``HFRollout`` (default) runs transformers ``generate`` with left padding. It does
not know about candidates: the caller sets per-row adapter state on the search
space first, so one ``generate`` call can serve many candidates (see
``spaces/layers.py``). Rows map one-to-one to sequences: no beam
search, one sequence per prompt.

``generate`` is the one place prompts are batched and sampled: ESSA's candidates, held-out
scoring and TR-DPO's preference samples all go through it (TR-DPO with its own temperature
and length), so every method sees the same padding, seeding and EOS handling.

Backends are registered in ``backends.py``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from essa_hpc.config import Config
from essa_hpc.config.backends import BACKENDS
from essa_hpc.generation.prompts import PromptRenderer


@dataclass
class Completions:
    texts: list[str]
    new_tokens: int  # generated tokens up to and including EOS, summed over rows
    token_ids: list[list[int]]  # per row: the generated ids up to and including the first EOS (all if none)


class HFRollout:
    @property
    def serves_adapters(self) -> bool:
        """Whether one generate call can mix candidates whatever the space (each row brings its own
        adapter; declared capability). HF cannot: it runs the model the space wrapped, so that is
        the space's ``batched``."""
        return bool(BACKENDS.spec_of(type(self)).get("serves_adapters"))

    def __init__(self, model, tokenizer, cfg: Config, env=None):
        self.model, self.tok = model, tokenizer
        self.rcfg = cfg.rollout
        self.prompts = PromptRenderer(tokenizer, cfg)
        self.render, self.token_ids = self.prompts.render, self.prompts.token_ids  # what callers ask a rollout

    def _batch(self, items: list[dict]):
        ids = [self.token_ids(it) for it in items]
        width = max(len(x) for x in ids)
        pad = self.tok.pad_token_id
        device = self.model.device  # every tensor is made where the model is
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        return input_ids, mask

    # --- the backend protocol: prepare -> generate -> release ---------------------------
    def prepare(self, space, cands, row_cand):
        """Make row i of the next ``generate`` use candidate ``cands[row_cand[i]]``. HF runs the model
        the space wrapped, so the space sets per-row adapter state in it; returns nothing to pass on."""
        space.apply(cands, row_cand)

    def release(self, space) -> None:
        """Back to the space's current state once a group (or a held-out score) is done."""
        space.restore()

    @torch.inference_mode()
    def generate(self, items: list[dict], sample_seed: int | None = None, rows=None, *,
                 temperature: float | None = None, max_new_tokens: int | None = None) -> Completions:
        """One completion per item. ``temperature`` / ``max_new_tokens`` override the rollout config's
        (None = ``rollout.temperature`` / ``rollout.max_new_tokens``); temperature 0 decodes greedily.
        When sampling, the tokens depend only on ``sample_seed`` and the rows, not on torch's global RNG.
        ``rows``: what ``prepare`` returned (nothing for HF: the adapters are in the model)."""
        input_ids, mask = self._batch(items)
        temp = self.rcfg.temperature if temperature is None else temperature
        sampling = temp > 0
        kwargs = dict(max_new_tokens=self.rcfg.max_new_tokens if max_new_tokens is None else max_new_tokens,
                      do_sample=sampling, pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id,
                      top_p=None, top_k=None, temperature=temp if sampling else None)
        # Sampling draws from torch's global RNG; fork it so a seeded chunk cannot
        # disturb anything else and gives the same tokens on any rank.
        ctx = torch.random.fork_rng() if sampling else contextlib.nullcontext()
        with ctx:
            if sampling:
                torch.manual_seed(int(sample_seed or 0))
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        new = out[:, input_ids.shape[1]:]
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        eos = self.tok.eos_token_id
        # tokens up to the first EOS (inclusive); rows without EOS count in full
        ids = [row[: row.index(eos) + 1] if eos in row else row for row in new.tolist()]
        return Completions(texts, sum(len(x) for x in ids), ids)
