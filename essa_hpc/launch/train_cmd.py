"""``essa-hpc train``: config -> ranks -> Trainer -> exit code."""
from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.assemble import set_threads
from essa_hpc.comm import Comm
from essa_hpc.preempt import PreemptionFlag
from essa_hpc.resume import check_resumable
from essa_hpc.runlog import setup_logging, write_job_info

log = logging.getLogger("essa_hpc")


def prepare(config_path: str, overrides: list[str], run_dir: str | None, comm: Comm) -> config_mod.Config:
    cfg = config_mod.load(config_path, overrides)
    if run_dir:
        cfg.run.run_dir = run_dir
    cfg.validate(world_size=comm.world)  # before any model loads
    return cfg


def train(cfg: config_mod.Config, comm: Comm, resume: str = "auto", preempt: PreemptionFlag | None = None) -> int:
    """Run (or resume) training in this process as one rank; returns the exit code."""
    from essa_hpc.trainer import Trainer

    run_dir = Path(cfg.run.run_dir)
    found = check_resumable(cfg, run_dir / "checkpoints", resume)  # before logging, run dir or model
    setup_logging(comm.rank, run_dir)
    threads = set_threads(cfg.run.threads)
    if comm.is_root:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_mod.save_yaml(cfg, run_dir / "config.yaml")
        if os.environ.get("SLURM_JOB_ID"):
            write_job_info(run_dir, {"job_id": os.environ["SLURM_JOB_ID"], "backend": "slurm",
                                     "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0"))})
        log.info("run dir %s | ranks %d | torch threads/rank %d | config %s", run_dir, comm.world, threads,
                 cfg.digest())
    preempt = preempt or PreemptionFlag().install()
    try:
        return Trainer(cfg, comm, run_dir, found=found, preempt=preempt).run()
    except config_mod.ConfigError:
        raise
    except Exception as exc:
        # One failing rank would leave the others blocked in an allreduce: say who failed, then abort all.
        log.error("rank %d failed: %s: %s\n%s", comm.rank, type(exc).__name__, exc, traceback.format_exc())
        sys.stderr.flush()
        comm.abort(1)
        return 1


def run_train(args, preempt: PreemptionFlag | None = None) -> int:
    comm = Comm()
    cfg = prepare(args.config, args.overrides, args.run_dir, comm)
    return train(cfg, comm, resume=args.resume, preempt=preempt)
