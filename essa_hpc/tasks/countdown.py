"""Countdown, as in ES-at-scale (Qiu et al., arXiv 2509.24372; reward from the paper's
``countdown/countdown_task.py``).

An item gives 3-4 numbers and a target; the model writes an equation that uses each
number exactly once. Prompts are the paper's raw ``context`` strings (they end with
``<think>``), so items carry ``chat: False``.

Reward = 0.1·format + answer (max 1.1), scored on the completion only:
  format 1.0 if ``"<think>" + completion`` is ``<think>…</think>\\n<answer>…</answer>``,
  else 0.1 for a think block + 0.5 for an answer block;
  answer 1 if the last ``<answer>`` uses only digits, ``+ - * / ( )`` and spaces (like the
  reference's ``re.match(r"^[0-9+\\-*/() ]+$")``, one trailing newline is allowed, because
  ``$`` matches before it; tabs, CR and other newlines score 0), uses each given number
  exactly once and equals the target within 1e-5.
The paper's regexes are replaced by linear scans with the same results, and its ``eval``
by ``safe_expr.evaluate_arithmetic``. Held-out ``score`` is the answer part (0/1).

Deviations from the reference, on purpose, each with a test (tests/unit/test_rewards_countdown.py);
in each case we score the answer 0 where the reference can give full marks:
  1. ``**`` (power) is refused: Countdown allows + - × ÷ only, and ``9**9**9`` would hang ``eval``.
  2. ``//`` (floor division) is refused: it is not ÷.
  3. An answer longer than ``MAX_EXPR_CHARS`` (200) characters is refused, to bound the evaluator.
  4. An expression with any intermediate value above ``MAX_MAGNITUDE`` (1e12) in magnitude is refused.

Data: ``task.data_path`` rows (context, numbers, target[, solution]); without it a
seeded generator writes items in the paper's prompt style.
"""
from __future__ import annotations

import functools
import re
from fractions import Fraction

from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.tasks import data
from essa_hpc.tasks.answers import last_tag, parse_number
from essa_hpc.tasks.base import Task
from essa_hpc.tasks.safe_expr import MAX_EXPR_CHARS, evaluate_arithmetic

PROMPT = ("You are a helpful assistant. You first think about the reasoning process in your mind and then "
          "provide the user with the answer.Using the numbers [{numbers}], create an equation that equals "
          "{target}. You can use basic arithmetic operations (+, -, *, /) and each number can only be used "
          "once. Show your work in <think> </think> tags. And return the final answer in <answer> </answer> "
          "tags, for example <answer> (1 + 2) / 3 </answer>.Let me solve this step by step.\n<think>")
LAYOUTS = [("context", "numbers", "target")]
TRAIN_POOL_SIZE = 2_000  # the paper trains on 200 items
_ALLOWED = re.compile(r"[0-9+\-*/() ]+")  # spaces only, as in the reference
_SEP, _END = "</think>\n<answer>", "</answer>"


# --- the paper's reward ---------------------------------------------------------

def _full_format(text: str) -> bool:
    """``re.match(r"^<think>.*?</think>\\n<answer>.*?</answer>$", text, re.S)`` without the regex."""
    if not (text.startswith("<think>") and text.endswith(_END)):
        return False
    mid = text.find(_SEP, len("<think>"))
    return 0 <= mid and mid + len(_SEP) <= len(text) - len(_END)


def format_score(completion: str) -> float:
    text = "<think>" + completion
    # Python's `$` also matches before one trailing newline
    if _full_format(text) or (text.endswith("\n") and _full_format(text[:-1])):
        return 1.0
    score = 0.1 if "</think>" in completion else 0.0  # the "<think>" prefix always opens one
    start = text.find("<answer>")
    if start >= 0 and text.find("</answer>", start + len("<answer>")) >= 0:
        score += 0.5
    return score


def _allowed(content: str) -> bool:
    """The reference's ``re.match(r"^[0-9+\\-*/() ]+$", content)``: ``$`` also matches before one final newline."""
    return bool(_ALLOWED.fullmatch(content) or (content.endswith("\n") and _ALLOWED.fullmatch(content[:-1])))


def answer_score(completion: str, numbers: list[int], target: float) -> float:
    content = last_tag(completion, "answer")
    if not content or len(content) > MAX_EXPR_CHARS or not _allowed(content):
        return 0.0
    if sorted(int(n) for n in re.findall(r"\d+", content)) != sorted(numbers):
        return 0.0
    value = evaluate_arithmetic(content)
    return 1.0 if value is not None and abs(value - target) < 1e-5 else 0.0


def paper_reward(completion: str, numbers: list[int], target: float) -> float:
    return 0.1 * format_score(completion) + answer_score(completion, numbers, target)


# --- items ------------------------------------------------------------------------

def _combine(a: tuple, b: tuple, op: str) -> tuple | None:
    (x, tx), (y, ty) = a, b
    if op == "/" and y == 0:
        return None
    value = x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else x / y
    return value, f"({tx} {op} {ty})"


def solve(numbers: list[int], target: float) -> str | None:
    """An expression using each number once that equals ``target`` (exhaustive; 3-4 numbers)."""
    def rec(terms):
        if len(terms) == 1:
            return terms[0][1] if abs(float(terms[0][0]) - target) < 1e-5 else None
        for i in range(len(terms)):
            for j in range(len(terms)):
                if i == j:
                    continue
                rest = [t for k, t in enumerate(terms) if k not in (i, j)]
                for op in "+-*/":
                    if op in "+*" and i > j:
                        continue  # commutative: one order is enough
                    new = _combine(terms[i], terms[j], op)
                    found = new and rec(rest + [new])
                    if found:
                        return found
        return None
    if len(numbers) > 5:
        return None
    return rec([(Fraction(n), str(n)) for n in numbers])


def _generate(gen, n: int, exclude: set) -> list[dict]:
    """Random expression trees over 3-4 numbers in 1..99, kept when the value is an integer in 1..999."""
    out, seen = [], set(exclude)
    while len(out) < n:
        u = gen.random(16)  # one draw per attempt: cheap and reproducible
        numbers = [1 + int(99 * x) for x in u[:4]][: 3 + int(u[4] < 0.5)]
        terms = [(Fraction(x), str(x)) for x in numbers]
        for step in range(len(numbers) - 1):
            i = int(u[5 + 3 * step] * len(terms))
            j = (i + 1 + int(u[6 + 3 * step] * (len(terms) - 1))) % len(terms)
            new = _combine(terms[i], terms[j], "+-*/"[int(u[7 + 3 * step] * 4)])
            if new is None:
                break
            terms = [t for k, t in enumerate(terms) if k not in (i, j)] + [new]
        value, solution = terms[0] if len(terms) == 1 else (Fraction(0), "")
        key = (tuple(sorted(numbers)), str(value))
        if value.denominator != 1 or not 1 <= value <= 999 or key in seen:
            continue
        seen.add(key)
        prompt = PROMPT.format(numbers=" ".join(map(str, numbers)), target=int(value))
        out.append({"prompt": prompt, "chat": False, "numbers": numbers, "target": float(value),
                    "answer": str(int(value)), "solution": solution, "key": key})
    return out


def row_to_item(row: dict, where: str) -> dict:
    context, raw_numbers, raw_target = row.get("context"), row.get("numbers"), row.get("target")
    if not isinstance(context, str) or not context:
        raise ConfigError(f"{where}: empty or non-text 'context'")
    if isinstance(raw_numbers, str) and re.fullmatch(r"\s*\[?[\d\s,]*\]?\s*", raw_numbers):
        numbers = [int(x) for x in re.findall(r"\d+", raw_numbers)]
    elif isinstance(raw_numbers, (list, tuple)) and all(isinstance(x, int) and x >= 0 for x in raw_numbers):
        numbers = list(raw_numbers)
    else:
        numbers = []
    if not numbers:
        raise ConfigError(f"{where}: cannot parse numbers {raw_numbers!r} (want a list like [44, 19, 35])")
    target = parse_number(raw_target)
    if target is None:
        raise ConfigError(f"{where}: cannot parse target {raw_target!r} as a number")
    solution = row.get("solution") or None
    return {"prompt": context, "chat": False, "numbers": numbers, "target": target,
            "answer": str(raw_target), "solution": solution}


def check_config(cfg) -> None:
    data.check_paths(cfg, LAYOUTS)


class CountdownTask(Task):
    def split(self) -> tuple[list[dict], list[dict]]:
        if self.cfg.data_path:
            return data.train_and_heldout(self.cfg, row_to_item)
        # Seed 0, not the run seed: every run sees the same problems (as in arithmetic).
        heldout = _generate(seeding.rng(0, "heldout", 4), self.cfg.heldout_size, set())
        train = _generate(seeding.rng(0, "train_items", 4), TRAIN_POOL_SIZE, {it["key"] for it in heldout})
        return train, heldout

    def score(self, item: dict, completion: str) -> float:
        return answer_score(completion, item["numbers"], item["target"])

    def reward(self, item: dict, completion: str) -> float:
        return paper_reward(completion, item["numbers"], item["target"])

    def sft_target(self, item: dict) -> str:
        """A completion with full marks (1.1): a one-line think block, then the answer."""
        solution = item.get("solution")
        check = f"</think>\n<answer>{solution}</answer>"
        if not solution or answer_score(check, item["numbers"], item["target"]) < 1.0:
            solution = _solved(tuple(item["numbers"]), item["target"]) or ""
        return f" {solution} = {item['answer']} </think>\n<answer>{solution}</answer>"


@functools.lru_cache(maxsize=4096)
def _solved(numbers: tuple, target: float) -> str | None:
    return solve(list(numbers), target)
