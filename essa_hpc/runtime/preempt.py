"""Preemption and Ctrl-C, owned by one object: the signal flag, the agreement of all ranks
at each generation boundary, and the requeue policy.

A signal only sets a flag; the trainer acts at a generation boundary.

SIGUSR1, SIGUSR2 (SLURM's warning signals; submitit uses USR2) and SIGTERM set the
flag with exit code EXIT_PREEMPTED. SIGINT (Ctrl-C, which mpiexec forwards to every
rank) does the same with EXIT_INTERRUPTED; a second SIGINT ends the process at once,
without a checkpoint. At the end of each generation the ranks agree on the largest
code with one int32 allreduce (``agree``), rank 0 checkpoints, and every rank exits with it.
Requeue policy (``requeues``): a preemption (75) is requeued, by ``slurm/essa.sbatch`` or by
submitit's handler in ``essa-hpc submit``; an interrupt (130) never is.

Once the run is over, ``quiet()`` sets every one of these signals to SIG_IGN. Python's
shutdown puts its own handlers back to the default (which kills the process), but it
leaves SIG_IGN alone, so a warning signal that arrives while a finished job is exiting
can no longer turn exit 0 into "killed by SIGUSR1".
"""
from __future__ import annotations

import os
import signal

# "Preempted, resumable": sysexits' EX_TEMPFAIL. slurm/essa.sbatch requeues on it.
EXIT_PREEMPTED = 75
# Ctrl-C, checkpointed and resumable (128 + SIGINT, as shells report it); never requeued.
EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


class Preemption:
    def __init__(self):
        self.signal_name: str | None = None
        self.code = 0  # 0, EXIT_PREEMPTED or EXIT_INTERRUPTED
        self._previous: dict = {}

    def install(self, signals=SIGNALS) -> "Preemption":
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def quiet(self) -> None:
        """The run is over: ignore these signals until the process is gone (see module doc)."""
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def previous_handler(self, sig):
        """The handler that was installed before ours (e.g. submitit's requeue handler)."""
        return self._previous.get(sig)

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.code == EXIT_INTERRUPTED:
            # Second Ctrl-C: the user does not want to wait for the generation to end.
            os.write(2, b"essa-hpc: second interrupt, exiting now without a checkpoint\n")
            os._exit(EXIT_INTERRUPTED)
        # Otherwise only record it: no I/O, no MPI here.
        self.signal_name = signal.Signals(signum).name
        code = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_PREEMPTED
        self.code = max(self.code, code)
        if signum == signal.SIGINT:
            os.write(2, b"essa-hpc: interrupted; checkpointing at the end of this generation "
                        b"(Ctrl-C again to stop now)\n")

    def set(self, reason: str = "manual", code: int = EXIT_PREEMPTED) -> None:
        self.signal_name = reason
        self.code = max(self.code, code)

    @property
    def requested(self) -> bool:
        return self.code != 0

    def agree(self, comm) -> int:
        """The stop code every rank acts on: the largest of all ranks' codes. A collective:
        every rank calls it once per generation, signalled or not."""
        return comm.agree_max(self.code)


def requeues(code: int) -> bool:
    """Whether a run that ended with ``code`` should be requeued (the job's policy)."""
    return code == EXIT_PREEMPTED
