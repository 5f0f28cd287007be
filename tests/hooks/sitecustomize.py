"""Test hooks, injected into the processes the tests start (``helpers.cli_env`` puts this
directory on PYTHONPATH, and Python imports ``sitecustomize`` at start-up). The package
itself reads no test variables; these patches only act when a test sets one:

- ``ESSA_TEST_PREEMPT_AT="2,5"``: rank 0 sends itself SIGUSR1 as generation 2 (and 5)
  begins, so a test can preempt at an exact generation through the real signal path.
- ``ESSA_TEST_SLOW_CKPT_S=0.5``: every checkpoint write pauses that long half-way, which
  widens the window in which a test kills a run mid-write.
"""
import os

if os.environ.get("ESSA_TEST_PREEMPT_AT"):
    import signal

    from essa_hpc import trainer

    _step = trainer.Trainer.step
    _at = {int(g) for g in os.environ["ESSA_TEST_PREEMPT_AT"].split(",") if g.strip()}

    def _step_with_preemption(self):
        if self.comm.rank == 0 and self.generation in _at:
            os.kill(os.getpid(), signal.SIGUSR1)
        return _step(self)

    trainer.Trainer.step = _step_with_preemption

if float(os.environ.get("ESSA_TEST_SLOW_CKPT_S") or 0):
    import time

    from essa_hpc import checkpoint

    _pause = float(os.environ["ESSA_TEST_SLOW_CKPT_S"])

    def _slow_write_file(path, image):
        with open(path, "wb") as fh:
            fh.write(image[: len(image) // 2])
            fh.flush()
            time.sleep(_pause)
            fh.write(image[len(image) // 2:])
            fh.flush()
            os.fsync(fh.fileno())

    checkpoint.write_file = _slow_write_file
