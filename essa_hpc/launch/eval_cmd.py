"""``essa-hpc eval`` and ``essa-hpc export``: score or write an adapter."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.assemble import build_parts, set_threads
from essa_hpc.checkpoint.manager import CheckpointManager
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.runtime.runlog import setup_logging

log = logging.getLogger("essa_hpc")


def newest_checkpoint(run_dir: str | Path) -> dict:
    found = CheckpointManager(run_dir, writer=False).latest()
    if found is None:
        raise ConfigError(f"no valid checkpoint in {Path(run_dir) / 'checkpoints'}")
    return found


def run_config_path(run_dir: str | Path) -> Path:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    return path


def run_config_of(run_dir: str | Path) -> config_mod.Config:
    return config_mod.load(run_config_path(run_dir), saved=True)


def check_same_search(cfg: config_mod.Config, found: dict) -> None:
    """The checkpoint's adapter only means something in the model and space it was trained in."""
    from essa_hpc.checkpoint.manager import changed_settings

    keys = [k for k in config_mod.non_resumable_keys(cfg) if k.split(".")[0] in ("model", "space")]
    detail = changed_settings(config_mod.upgrade_saved(found["config"]), cfg.to_dict(), keys)
    if detail:
        raise ConfigError(f"the config does not match the run in {found['path'].parent.parent} (run -> config: "
                          f"{detail}); drop CONFIG to use the run's own config.yaml")


def run_eval(args, env: RankEnv) -> int:
    from essa_hpc.evaluation import heldout_score

    comm = Comm()
    config_path, overrides = args.config, list(args.overrides or [])
    if config_path and "=" in config_path and not Path(config_path).is_file():
        config_path, overrides = None, [config_path, *overrides]  # `eval --run-dir D key=value`
    if config_path is None:
        if not args.run_dir:
            raise ConfigError("eval needs a CONFIG, or --run-dir (whose config.yaml is then used)")
        config_path = str(run_config_path(args.run_dir))
    from_run_dir = args.run_dir and Path(config_path) == run_config_path(args.run_dir)
    cfg = config_mod.load(config_path, overrides, saved=bool(from_run_dir))  # the run's own file may be older
    validate(cfg, world_size=1)
    if args.adapter and not Path(args.adapter, "adapter_config.json").is_file():
        raise ConfigError(f"--adapter {args.adapter} is not a PEFT adapter directory (no adapter_config.json)")
    found = newest_checkpoint(args.run_dir) if args.run_dir else None
    if found is not None:
        check_same_search(cfg, found)
    setup_logging(comm.rank)
    set_threads(cfg.run.threads, env.local_world)
    parts = build_parts(cfg, with_space=found is not None, env=env.with_device(cfg.run.device))
    space, vector, source = None, None, "base"
    if found is not None:
        space = parts.space
        space.load_state_dict(found["state"]["space"])
        vector = space.evaluation_vector(found["state"]["adapter"]["vector"])
        source = f"{found['path']}"
    elif args.adapter:
        from peft import PeftModel

        from essa_hpc.generation import build_rollout
        peft_model = PeftModel.from_pretrained(parts.model, args.adapter)
        peft_model.eval()
        parts.rollout = build_rollout(peft_model, parts.tokenizer, cfg)
        source = args.adapter
    score = heldout_score(parts.rollout, space, parts.scorer, vector, parts.task.heldout(),
                          cfg.rollout.max_rows, comm)
    if comm.is_root:
        print(json.dumps({"source": source, "task": cfg.task.kind, "heldout_size": len(parts.task.heldout()),
                          "heldout_reward": score}))
    return 0


def run_export(args, env: RankEnv) -> int:
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export: {out} exists and is not a directory")
    cfg = run_config_of(args.run_dir)
    found = newest_checkpoint(args.run_dir)
    setup_logging(0)
    parts = build_parts(cfg, env=env.with_device(cfg.run.device))
    parts.space.load_state_dict(found["state"]["space"])
    parts.space.export(found["state"]["adapter"]["vector"], args.out_dir)
    print(json.dumps({"checkpoint": str(found["path"]), "generation": found["generation"],
                      "adapter_sha256": found["state"]["adapter"]["sha256"], "out_dir": str(args.out_dir)}))
    return 0
