"""Answer extraction and numeric comparison shared by the tasks.

Every extractor here is linear in the completion length: a reward may see a
runaway (or hostile) completion, and a backtracking regex such as
``<answer>(.*?)</answer>`` on a megabyte of unclosed tags is quadratic.
"""
from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LEADING_NUMBER = re.compile(r"\s*\$?\s*(-?\s*\d[\d,]*(?:\.\d+)?|-?\.\d+)")


def parse_number(text) -> float | None:
    """A gold or predicted number: int/float, or a string like '1,234', '$5', '-3.5', '12.'; else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(text) else None
    if not isinstance(text, str):
        return None
    s = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)", s):
        return None
    value = float(s)
    return value if math.isfinite(value) else None


def last_number(text: str) -> float | None:
    """The last number in ``text`` (commas as thousands separators allowed), or None."""
    matches = _NUMBER.findall(text[-2000:])  # bounded: a runaway completion costs nothing extra
    for raw in reversed(matches):
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return None


def number_after_marker(text: str, marker: str = "####") -> float | None:
    """The number right after the last ``marker`` (GSM8K's '#### 42'), or None."""
    pos = text.rfind(marker)
    if pos < 0:
        return None
    m = _LEADING_NUMBER.match(text[pos + len(marker): pos + len(marker) + 100])
    return parse_number(m.group(1).replace(" ", "")) if m else None


def final_number(text: str, marker: str = "####") -> float | None:
    """The number after the last ``marker`` if there is one, else the last number in ``text``."""
    value = number_after_marker(text, marker)
    return value if value is not None else last_number(text)


def tag_blocks(text: str, tag: str = "answer") -> list[str]:
    """Contents of ``<tag>…</tag>`` blocks, exactly as ``re.findall(r"<tag>(.*?)</tag>", text, re.S)``
    would return them, in one linear scan."""
    open_, close = f"<{tag}>", f"</{tag}>"
    out, pos = [], 0
    while True:
        start = text.find(open_, pos)
        if start < 0:
            return out
        end = text.find(close, start + len(open_))
        if end < 0:
            return out
        out.append(text[start + len(open_): end])
        pos = end + len(close)


def last_tag(text: str, tag: str = "answer") -> str | None:
    """The content of the last ``<tag>…</tag>`` block (findall semantics), or None."""
    blocks = tag_blocks(text, tag)
    return blocks[-1] if blocks else None


_BOX_TOKENS = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{…}`` (or ``\\fbox{…}``), nested braces allowed.

    "Last" is the box that opens last among those whose braces close (so for
    ``\\boxed{\\boxed{3}}`` it is ``3``). One pass over the braces.
    """
    stack: list[tuple[int, bool]] = []  # (content start, is a box)
    best: tuple[int, int] | None = None  # (content start, content end)
    for m in _BOX_TOKENS.finditer(text):
        tok = m.group()
        if tok == "}":
            if stack:
                start, is_box = stack.pop()
                if is_box and (best is None or start > best[0]):
                    best = (start, m.start())
        else:
            stack.append((m.end(), tok != "{"))
    return None if best is None else text[best[0]: best[1]]


# Only for golds that are not integers (a printed decimal may be rounded); absolute, not
# relative: a relative 1e-6 accepted gold±1 for every integer gold of a million or more.
NON_INTEGER_TOLERANCE = 1e-6


def numbers_equal(pred: float | None, gold: float) -> bool:
    """Integer golds must be matched exactly; other golds within NON_INTEGER_TOLERANCE."""
    if pred is None:
        return False
    if float(gold).is_integer():
        return pred == gold
    return abs(pred - gold) <= NON_INTEGER_TOLERANCE


def exact_reward(completion: str, gold: float) -> float:
    return 1.0 if numbers_equal(last_number(completion), gold) else 0.0


def dense_score(pred: float | None, gold: float) -> float:
    """1 at the exact answer; otherwise at most 0.5, falling linearly with the distance
    to gold relative to max(10, |gold|); 0 when no number is given."""
    if pred is None:
        return 0.0
    if numbers_equal(pred, gold):
        return 1.0
    return 0.5 * max(0.0, 1.0 - abs(pred - gold) / max(10.0, abs(gold)))


def dense_reward(completion: str, gold: float) -> float:
    return dense_score(last_number(completion), gold)


# Weight of partial credit under train_reward=tiebreak: small enough that a mean over any
# mini-batch of at most 500 prompts can never outweigh one more exact answer.
TIEBREAK_WEIGHT = 1e-3


def numeric_train_reward(kind: str, pred: float | None, gold: float) -> float:
    """Training reward for numeric answers: exact (0/1), dense (partial credit), or
    tiebreak (exact, with partial credit only deciding between otherwise equal candidates)."""
    if kind == "dense":
        return dense_score(pred, gold)
    exact = 1.0 if numbers_equal(pred, gold) else 0.0
    if kind == "tiebreak" and not exact:
        return TIEBREAK_WEIGHT * dense_score(pred, gold)
    return exact
