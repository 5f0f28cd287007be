"""Prompts as every method sees them: the task's item rendered with the tokenizer's chat
template (and ``task.system_prompt``) when the model has one, then tokenized once.

One renderer serves the ES backends (HF and vLLM), SFT, the gradient baselines and TR-DPO,
so a prompt is the same token sequence wherever it is scored or trained on.
"""
from __future__ import annotations


class PromptRenderer:
    def __init__(self, tokenizer, cfg):
        self.tok = tokenizer
        self.use_chat = cfg.model.chat_template and bool(tokenizer.chat_template)
        self.system_prompt = cfg.task.system_prompt
        self._ids: dict[str, list[int]] = {}

    def render(self, item: dict) -> str:
        """The prompt text; items marked ``chat: False`` (raw prompts, e.g. Countdown's) stay as they are."""
        if item.get("chat", True) is False or not self.use_chat:
            return item["prompt"]
        messages = [{"role": "user", "content": item["prompt"]}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def token_ids(self, item: dict) -> list[int]:
        text = self.render(item)
        if text not in self._ids:
            # Chat templates already add special tokens; plain prompts keep the tokenizer's BOS.
            self._ids[text] = self.tok(text, add_special_tokens=not self.use_chat)["input_ids"]
        return self._ids[text]
