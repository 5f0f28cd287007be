"""``essa-hpc sft``: train the LoRA warm-up adapter that ESSA starts from."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.assemble import build_parts, set_threads
from essa_hpc.config.validation import validate
from essa_hpc.evaluation import heldout_score
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.runtime.runlog import setup_logging

log = logging.getLogger("essa_hpc")


def run_sft(args, env: RankEnv) -> int:
    from essa_hpc.sft import train_sft

    cfg = config_mod.load(args.config, args.overrides)
    validate(cfg)
    out_dir = Path(args.out or cfg.sft.out_dir or Path(cfg.run.run_dir) / "sft")
    setup_logging(0)
    set_threads(cfg.run.threads, env.local_world)
    parts = build_parts(cfg, with_space=False, env=env.with_device(cfg.run.device))
    info = train_sft(cfg, parts, out_dir, progress=cfg.run.progress)
    if not args.no_eval:
        # parts.model is now the PEFT-wrapped model in eval mode: score it as it will be used
        info["heldout_reward"] = heldout_score(parts.rollout, None, parts.scorer, None, parts.task.heldout(),
                                               cfg.rollout.max_rows, Comm(use_mpi=False))
    (out_dir / "sft_summary.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return 0
