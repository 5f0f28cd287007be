"""Test hooks, injected into the processes the tests start (``helpers.cli_env`` puts this
directory on PYTHONPATH, and Python imports ``sitecustomize`` at start-up). The package
itself reads no test variables; these patches only act when a test sets one:

- ``ESSA_TEST_PREEMPT_AT="2,5"``: rank 0 sends itself SIGUSR1 as generation 2 (and 5)
  begins, so a test can preempt at an exact generation through the real signal path.
- ``ESSA_TEST_SLOW_CKPT_S=0.5``: every checkpoint write pauses that long half-way, which
  widens the window in which a test kills a run mid-write.
- ``ESSA_TEST_PERTURB="3:1,5:1"``: rank 1 nudges its CMA-ES mean just before the checksum of
  generation 3 (and 5), as a silent bit flip or a diverging library would, after that
  generation's update, so a resync to rank 0's state leaves the run as if nothing happened.
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

if os.environ.get("ESSA_TEST_PERTURB"):
    from essa_hpc import trainer

    _check = trainer.Trainer.check_ranks_agree
    _perturb = {tuple(int(x) for x in pair.split(":")) for pair in os.environ["ESSA_TEST_PERTURB"].split(",")}

    def _check_after_perturbing(self, digest):
        if (self.generation, self.comm.rank) in _perturb:
            self.strategy.es.mean = self.strategy.es.mean + 1e-6
            digest = self.space.digest(self.strategy.mean)
        return _check(self, digest)

    trainer.Trainer.check_ranks_agree = _check_after_perturbing

if os.environ.get("ESSA_TEST_CRASH_EVERY"):
    from essa_hpc import trainer

    _every, _rank = (int(x) for x in os.environ["ESSA_TEST_CRASH_EVERY"].split(":"))
    _step_then = trainer.Trainer.step
    _done = []

    def _step_then_crash(self):
        out = _step_then(self)
        _done.append(1)
        if self.comm.rank == _rank and len(_done) % _every == 0:
            os._exit(9)
        return out

    trainer.Trainer.step = _step_then_crash
