"""``essa-hpc train``: config -> ranks -> run dir -> Trainer -> exit code.

Two phases, so that no failure on any rank can leave another rank waiting in a collective:

1. Setup, on every rank: load and validate the config, check the run dir, take its lock
   (rank 0), decide where to resume from. Each rank catches its own errors; then all ranks
   compare notes with one Allgather of an int. If any rank failed, every rank exits (2 for
   a bad config or input, else 1) and the lowest failing rank says why, in one line.
2. The run: any exception on any rank, ``SystemExit`` and ``KeyboardInterrupt`` included,
   is logged with the rank's number and ends every rank through ``MPI_Abort``.

When the run is over (finished, preempted or interrupted) the owner of the process (the
CLI, or the submitit job) calls ``Preemption.quiet()``, which ignores the warning
signals, so one that lands during shutdown cannot change exit 0.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import traceback
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.config.validation import validate
from essa_hpc.runtime import rundir, shm, starts
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.preempt import Preemption
from essa_hpc.runtime.rankenv import RankEnv

log = logging.getLogger("essa_hpc")
_held_locks: list = []  # rank 0's run-dir lock lives as long as the process


class SetupFailed(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def setup(config_path: str, overrides: list[str], run_dir: str | None, comm: Comm, resume: str, env: RankEnv):
    """Phase 1 on this rank: (config, checkpoint to resume or None, env with its device). Raises
    ``SetupFailed`` on every rank when any rank failed; the lowest failing rank has printed the reason."""
    from essa_hpc.checkpoint.manager import CheckpointManager

    error, code = None, 0
    try:
        if env.world != comm.world:  # each process would run alone as rank 0, all in one run dir
            raise config_mod.ConfigError(
                f"{env.launcher} started {env.world} processes but MPI sees a world of {comm.world}; use srun "
                "--mpi=pmi2 for MPICH (pmix for Open MPI), unset ESSA_NO_MPI, and install mpi4py for the MPI the "
                "launcher provides")
        cfg = config_mod.load(config_path, overrides)
        if run_dir:
            cfg.run.run_dir = run_dir
        validate(cfg, world_size=comm.world)  # before any model loads
        # After validation, so that a bad config gets its one line and nothing else.
        shm.remove_stale()  # MPI shared memory of jobs on this node that were killed
        env = env.with_device(cfg.run.device)  # imports torch; a missing GPU fails here, still before the model
        path = Path(cfg.run.run_dir)
        rundir.check_usable(path)
        if comm.is_root:  # before anything reads or moves files: one run per directory
            _held_locks.append(rundir.RunDirLock(path).acquire(env.job_id))
        ckpt = CheckpointManager(path, cfg.ckpt.every, cfg.ckpt.keep, writer=comm.is_root)
        found = ckpt.find_resume(cfg, resume)
        if comm.is_root:
            aside = ckpt.prepare(fresh=found is None)
            if aside is not None:
                log.warning("starting fresh: moved the earlier run's files to %s", aside)
            config_mod.save_yaml(cfg, path / "config.yaml")
            starts.record_start(path, env.job_id, env.restarts, comm.world, found["generation"] if found else 0,
                                env.relaunch, env.restart_cause)
    except config_mod.ConfigError as exc:
        error, code = str(exc), 2
    except starts.NoProgress as exc:
        error, code = str(exc), starts.EXIT_NO_PROGRESS
    except Exception as exc:  # noqa: BLE001 - reported in one line, then every rank stops
        error, code = f"{type(exc).__name__}: {exc}", 1
    failed = comm.flagged_ranks(error is not None)
    if failed:
        if comm.rank == failed[0]:
            where = f" (rank {comm.rank})" if comm.world > 1 else ""
            print(f"essa-hpc train: error{where}: {error}", file=sys.stderr, flush=True)
        raise SetupFailed(code or 2)
    return cfg, found, env


def run(cfg: config_mod.Config, comm: Comm, found: dict | None, preempt: Preemption, env: RankEnv) -> int:
    """Phase 2: build and run the Trainer on this rank; any failure ends every rank."""
    from essa_hpc.assemble import build_parts, set_threads
    from essa_hpc.runtime.runlog import setup_logging, write_job_info

    try:
        run_dir = Path(cfg.run.run_dir)
        setup_logging(comm.rank, run_dir)
        threads = set_threads(cfg.run.threads, env.local_world)
        # One line per rank, on every rank: where each rank really runs (its own hostname, not
        # only what the launcher says), so a multi-node placement can be checked from the log.
        # One write with its newline: ranks sharing a stream must not splice their lines together.
        sys.stderr.write(f"essa-hpc: rank {comm.rank}/{comm.world} on host {socket.gethostname()} (node {env.node}, "
                         f"local rank {env.local_rank}/{env.local_world}, pid {os.getpid()})\n")
        sys.stderr.flush()
        if comm.is_root:
            if env.job_id:
                write_job_info(run_dir, {"job_id": env.job_id, "backend": env.scheduler, "restarts": env.restarts})
            log.info("run dir %s | ranks %d | torch threads/rank %d | device %s | config %s", run_dir, comm.world,
                     threads, env.device, cfg.digest())
        from essa_hpc.trainer import Trainer
        parts = build_parts(cfg, env=env)  # task, model, space, rollout, rewards: this rank's copy
        code = Trainer(cfg, comm, run_dir, parts, found=found, preempt=preempt).run()
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a plug-in must not strand the other ranks
        return fail(comm, exc)
    return code


def fail(comm: Comm, exc: BaseException) -> int:
    """Name this rank and the error, then end every rank (MPI_Abort) with a non-zero code."""
    from essa_hpc.checkpoint import CheckpointWriteError

    if isinstance(exc, (CheckpointWriteError, config_mod.ConfigError)):
        detail = str(exc)  # the message says it all
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT):
        detail = f"write failed: {exc.strerror}: {exc.filename}; the last checkpoint is intact"
    elif isinstance(exc, SystemExit):
        detail = f"SystemExit({exc.code!r}) raised during the run\n{traceback.format_exc()}"
    else:
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    code = 2 if isinstance(exc, config_mod.ConfigError) else 1
    log.error("rank %d of %d failed: %s", comm.rank, comm.world, detail.rstrip())
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    if comm.world > 1:
        shm.remove_own()  # MPI_Abort leaves MPICH's shared-memory file behind; every rank is about to go
    try:
        comm.abort(code)  # several ranks: MPI_Abort ends them all; one rank: SystemExit(code)
    except SystemExit:
        pass
    return code


def run_training(config_path: str, overrides: list[str], run_dir: str | None, comm: Comm, resume: str,
                 preempt: Preemption, env: RankEnv) -> int:
    """Both phases; returns the exit code (0 done, 75 preempted, 130 interrupted, 2 bad input, 1 failure)."""
    from essa_hpc.runtime.runlog import setup_logging

    setup_logging(comm.rank)  # stderr only until the run dir is known to be usable
    try:
        cfg, found, env = setup(config_path, overrides, run_dir, comm, resume, env)
    except SetupFailed as exc:
        return exc.code
    except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised while importing a plug-in
        return fail(comm, exc)
    return run(cfg, comm, found, preempt, env)


def run_train(args, env: RankEnv, preempt: Preemption) -> int:
    return run_training(args.config, args.overrides, args.run_dir, Comm(), args.resume, preempt, env)
