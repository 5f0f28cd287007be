"""Preemption: a signal only sets a flag; the trainer acts at a generation boundary.

SIGUSR1, SIGUSR2 (SLURM's warning signals, submitit uses USR2) and SIGTERM set the
flag. At the end of each generation the ranks agree with one int32 allreduce
(``Comm.any``), rank 0 checkpoints, and every rank exits with EXIT_PREEMPTED.
``requeue_self()`` is the hook the SLURM launch uses to put the job back in the queue.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess

# "Preempted, resumable": sysexits' EX_TEMPFAIL. slurm/essa.sbatch requeues on it.
EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)
log = logging.getLogger(__name__)


class PreemptionFlag:
    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict = {}

    def install(self, signals=SIGNALS) -> "PreemptionFlag":
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def previous_handler(self, sig):
        """The handler that was installed before ours (e.g. submitit's requeue handler)."""
        return self._previous.get(sig)

    def _handle(self, signum, frame) -> None:
        # Only set the flag: no I/O, no MPI in a signal handler.
        self.signal_name = signal.Signals(signum).name

    def set(self, reason: str = "manual") -> None:
        self.signal_name = reason

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


def requeue_self() -> bool:
    """Requeue the current SLURM job if asked to (ESSA_REQUEUE=1); True if it was requeued."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or os.environ.get("ESSA_REQUEUE") != "1":
        return False
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if result.returncode != 0:
        log.error("scontrol requeue %s failed: %s", job, result.stderr.strip())
        return False
    log.info("requeued SLURM job %s", job)
    return True


def test_signal_hook(generation: int, rank: int) -> None:
    """Tests only: ESSA_TEST_PREEMPT_AT="2,5" makes rank 0 send itself SIGUSR1 as generation 2
    (and 5) begins, so a test can preempt at an exact generation through the real signal path."""
    wanted = os.environ.get("ESSA_TEST_PREEMPT_AT", "")
    if rank == 0 and str(generation) in wanted.split(","):
        os.kill(os.getpid(), signal.SIGUSR1)
