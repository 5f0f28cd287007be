"""Answer extraction and numeric comparison shared by the numeric tasks."""
from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


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


def numbers_equal(a: float | None, b: float, tol: float = 1e-6) -> bool:
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


def exact_reward(completion: str, gold: float) -> float:
    return 1.0 if numbers_equal(last_number(completion), gold) else 0.0


def dense_reward(completion: str, gold: float) -> float:
    """1 at the exact answer; otherwise at most 0.5, falling linearly with the distance
    to gold relative to max(10, |gold|); 0 when no number is given."""
    pred = last_number(completion)
    if pred is None:
        return 0.0
    if numbers_equal(pred, gold):
        return 1.0
    return 0.5 * max(0.0, 1.0 - abs(pred - gold) / max(10.0, abs(gold)))
