"""Run reward functions safely: a time limit per completion, and no exceptions.

A pathological completion (huge exponent, runaway regex, bad plug-in) must not
hang or kill a rank: it scores 0 and is counted. The limit uses SIGALRM, so it
applies on the main thread (where the trainer runs); elsewhere rewards run unguarded.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


class RewardTimeout(BaseException):
    """BaseException: libraries that catch Exception (sympy, math-verify) must not swallow it."""
    pass


def _on_alarm(signum, frame):
    raise RewardTimeout()


class RewardRunner:
    def __init__(self, fn: Callable[[dict, str], float], timeout_s: float = 2.0):
        self.fn, self.timeout_s = fn, timeout_s
        self.errors = 0
        self.timeouts = 0

    def one(self, item: dict, completion: str) -> float:
        guarded = self.timeout_s > 0 and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGALRM, _on_alarm) if guarded else None
        try:
            if guarded:
                signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
            value = float(self.fn(item, completion))
            return value if np.isfinite(value) else 0.0
        except RewardTimeout:
            self.timeouts += 1
            return 0.0
        except Exception as exc:  # a reward must never take the run down
            self.errors += 1
            if self.errors <= 3:
                log.warning("reward raised %s: %s (scored 0)", type(exc).__name__, exc)
            return 0.0
        finally:
            if guarded:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

    def rewards(self, items: list[dict], completions: list[str]) -> np.ndarray:
        assert len(items) == len(completions)
        return np.array([self.one(it, c) for it, c in zip(items, completions)], dtype=np.float64)
