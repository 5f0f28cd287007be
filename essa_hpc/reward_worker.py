"""Rewards in a worker process with a hard time limit (``task.reward_isolation=process``).

The worker is a spawned Python process (not forked: a fork of a rank that holds MPI and
torch threads is unsafe) that builds the task from its config and scores completions
one at a time, sending each result back as soon as it has it. The rank waits at most
``timeout_s`` for each result. A completion that runs past it, in Python or in C code,
gets its worker killed (SIGKILL) and scores 0 as a timeout; a fresh worker takes the
remaining completions. A worker that dies (segfault, ``os._exit``, ``SystemExit`` in a
plug-in) costs its one completion, counted as ``raised``.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import time

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0  # importing the task's libraries (sympy, math-verify) on a busy node


def _serve(conn, task_cfg: dict, run_seed: int) -> None:
    """Worker main loop: ("score", method, items, completions) -> one (value, fault, detail) per item."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the rank's to handle
    from essa_hpc.config import TaskConfig
    from essa_hpc.config.dataclass_io import section_from_dict
    from essa_hpc.rewards import call_guarded
    from essa_hpc.tasks import build_task

    task = build_task(section_from_dict(TaskConfig, task_cfg, "task"), run_seed)  # its kinds' sub-sections too
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the rank is gone
            return
        _, method, items, completions, timeout_s = msg
        fn = getattr(task, method)
        for item, completion in zip(items, completions):
            try:
                result = call_guarded(fn, item, completion, timeout_s)
            except BaseException as exc:  # SystemExit & co. from a plug-in: this completion's fault only
                result = (0.0, "raised", f"{type(exc).__name__}: {exc}")
            conn.send(result)


class RewardWorker:
    """One worker process per rank, started on first use and restarted after a kill."""

    def __init__(self, task_cfg, run_seed: int):
        self.task_cfg = dataclasses.asdict(task_cfg)
        self.run_seed = run_seed
        self.proc = None
        self.conn = None
        self.restarts = 0

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.task_cfg, self.run_seed), daemon=True,
                           name="essa-reward-worker")
        proc.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            proc.kill()
            raise RuntimeError(f"reward worker did not start within {START_TIMEOUT_S:.0f} s")
        try:
            parent.recv()
        except EOFError:
            raise RuntimeError(f"reward worker exited while starting (exit code {proc.exitcode}); "
                               f"see its error above") from None
        self.proc, self.conn = proc, parent

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
            self.conn.close()
        self.proc = self.conn = None
        self.restarts += 1

    def score(self, method: str, items: list[dict], completions: list[str], timeout_s: float) -> list[tuple]:
        results: list[tuple] = []
        while len(results) < len(items):
            if self.proc is None:
                self._start()
            start = len(results)
            self.conn.send(("score", method, items[start:], completions[start:], timeout_s))
            while len(results) < len(items):
                t0 = time.monotonic()
                # The worker enforces the limit with SIGALRM where it can; this is the hard backstop.
                if not self.conn.poll(timeout_s + 1.0):
                    log.warning("reward worker: a completion ran past %.3g s; killing the worker (pid %d)",
                                timeout_s, self.proc.pid)
                    self._kill()
                    results.append((0.0, "timeout", ""))
                    break
                try:
                    results.append(self.conn.recv())
                except (EOFError, ConnectionError):
                    code = self.proc.exitcode if self.proc is not None else None
                    self._kill()
                    results.append((0.0, "raised", f"the reward worker died (exit code {code}) "
                                                   f"after {time.monotonic() - t0:.2f} s"))
                    break
        return results

    def close(self) -> None:
        if self.proc is not None:
            self.conn.close()
            self.proc.join(2)
            if self.proc.is_alive():
                self.proc.kill()
            self.proc = None
