"""Run reward functions safely: a time limit per completion, no exceptions, faults counted.

A pathological completion (huge exponent, runaway regex, bad plug-in) must not hang
or kill a rank: it scores 0 and is counted as a fault of one kind:

  raised     the reward raised an exception (or its worker process died)
  timeout    it ran past ``task.reward_timeout_s``
  nonfinite  it returned NaN or ±inf
  type       it returned something that is not a real number (a string, None, a list)

Two places to run it (``task.reward_isolation``):
- ``inline``: in the rank, limited by SIGALRM. Cheap, but SIGALRM only interrupts Python
  bytecode: a reward stuck in C code (``sum(range(10**11))``, a regex) is not stopped.
- ``process``: in a worker process (``reward_worker``), killed and restarted when a
  completion runs past the limit, so the limit is hard.
``auto`` uses a worker for rewards that may run arbitrary code (custom plug-ins, math,
reasoning-gym) and runs the built-in arithmetic, countdown and gsm8k rewards inline.
"""
from __future__ import annotations

import logging
import numbers
import signal
import threading
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)
FAULT_KINDS = ("raised", "timeout", "nonfinite", "type")


class RewardTimeout(BaseException):
    """BaseException: libraries that catch Exception (sympy, math-verify) must not swallow it."""


def _on_alarm(signum, frame):
    raise RewardTimeout()


def checked(value) -> tuple[float, str | None]:
    """A reward value as float, or 0.0 and the fault kind."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if not isinstance(value, numbers.Real):
        return 0.0, "type"
    value = float(value)
    if not np.isfinite(value):
        return 0.0, "nonfinite"
    return value, None


def call_guarded(fn: Callable[[dict, str], float], item: dict, completion: str, timeout_s: float
                 ) -> tuple[float, str | None, str]:
    """(value, fault kind or None, detail). Exceptions become faults; BaseExceptions other than
    the timeout (SystemExit, KeyboardInterrupt) propagate: they are not a reward's answer."""
    guarded = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _on_alarm) if guarded else None
    try:
        if guarded:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
        value, fault = checked(fn(item, completion))
        return value, fault, ""
    except RewardTimeout:
        return 0.0, "timeout", ""
    except Exception as exc:  # a reward must never take the run down
        return 0.0, "raised", f"{type(exc).__name__}: {exc}"
    finally:
        if guarded:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


class FaultCounter:
    """Faults since the last ``take()`` (the trainer takes them once per generation)."""

    def __init__(self):
        self.counts = dict.fromkeys(FAULT_KINDS, 0)
        self.total = dict.fromkeys(FAULT_KINDS, 0)
        self._shown = 0

    def add(self, kind: str | None, detail: str = "") -> None:
        if kind is None:
            return
        self.counts[kind] += 1
        self.total[kind] += 1
        if detail and self._shown < 3:  # the first few say why; the counts say how often
            self._shown += 1
            log.warning("reward %s: %s (scored 0)", kind, detail)

    def take(self) -> dict:
        out, self.counts = self.counts, dict.fromkeys(FAULT_KINDS, 0)
        return out

    def take_vector(self) -> np.ndarray:
        """``take()`` as float64 in FAULT_KINDS order, ready for the reward allreduce."""
        counts = self.take()
        return np.array([counts[k] for k in FAULT_KINDS], dtype=np.float64)


class RewardRunner:
    """Scores completions with ``fn`` inline, or through ``worker`` (a ``reward_worker.RewardWorker``)."""

    def __init__(self, fn: Callable[[dict, str], float], timeout_s: float = 2.0, faults: FaultCounter | None = None,
                 worker=None, method: str = "reward"):
        self.fn, self.timeout_s = fn, timeout_s
        self.faults = faults or FaultCounter()
        self.worker, self.method = worker, method

    def one(self, item: dict, completion: str) -> float:
        return float(self.rewards([item], [completion])[0])

    @property
    def errors(self) -> int:
        return self.faults.total["raised"]

    @property
    def timeouts(self) -> int:
        return self.faults.total["timeout"]

    def rewards(self, items: list[dict], completions: list[str]) -> np.ndarray:
        assert len(items) == len(completions)
        if self.worker is not None:
            results = self.worker.score(self.method, items, completions, self.timeout_s)
        else:
            results = [call_guarded(self.fn, it, c, self.timeout_s) for it, c in zip(items, completions)]
        for _, kind, detail in results:
            self.faults.add(kind, detail)
        return np.array([value for value, _, _ in results], dtype=np.float64)

