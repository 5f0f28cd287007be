"""``essa-hpc baseline grpo|trdpo|eso``: a gradient baseline through TRL, one process, or GRPO
data-parallel on several processes started by torchrun (``baselines/data_parallel.py``)."""
from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.assemble import build_parts, set_threads
from essa_hpc.config.validation import validate
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.runtime.runlog import setup_logging

log = logging.getLogger("essa_hpc")


def run_baseline(args, env: RankEnv) -> int:
    from essa_hpc.baselines import BaselineError, data_parallel
    from essa_hpc.config.baselines import BASELINES, check_method

    cfg = config_mod.load(args.config, args.overrides)
    if args.run_dir:
        cfg.run.run_dir = args.run_dir
    validate(cfg)
    check_method(args.method, cfg)  # before logging, run dir or model
    data_parallel.check(args.method, cfg, env)
    run_dir = Path(cfg.run.run_dir)
    setup_logging(env.rank, run_dir)
    # transformers 5.2x deprecates names TRL 1.16 still passes (gradient_checkpointing -> activation_...)
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
    threads = set_threads(cfg.run.threads, env.local_world)
    run_dir.mkdir(parents=True, exist_ok=True)
    if env.is_root:
        config_mod.save_yaml(cfg, run_dir / "config.yaml")
    log.info("baseline %s | run dir %s | %d process(es) x %d torch threads | config %s", args.method, run_dir,
             env.world, threads, cfg.digest())
    env = env.with_device(cfg.run.device)
    data_parallel.start_group(env)
    try:
        parts = build_parts(cfg, with_space=False, env=env)
        summary = BASELINES.load(args.method)(cfg, parts, run_dir)
    except BaselineError as exc:  # e.g. no preference pairs: the user can fix it; one line
        print(f"essa-hpc baseline: error: {exc}", file=sys.stderr)
        return 1
    if not env.is_root:
        return 0
    try:  # TRL wants an output_dir; nothing is saved there (save_strategy="no")
        (run_dir / "trl").rmdir()
    except OSError:
        pass
    print(json.dumps(summary))
    return 0
