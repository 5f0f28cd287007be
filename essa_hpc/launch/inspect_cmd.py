"""``essa-hpc inspect`` and ``essa-hpc config``: read-only views."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import yaml

from essa_hpc import checkpoint
from essa_hpc import config as config_mod
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.runtime.rankenv import RankEnv


def _strategy_summary(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        arr = np.asarray(value) if not isinstance(value, str) else None
        if arr is None:
            continue
        out[key] = (float(arr) if arr.ndim == 0 and arr.dtype.kind in "fiub" else
                    {"shape": list(arr.shape), "norm": float(np.linalg.norm(arr.astype(float)))}
                    if arr.dtype.kind in "fiub" else str(arr))
    return out


def run_inspect(args, env: RankEnv) -> int:
    path = Path(args.path)
    if path.is_dir():
        found = checkpoint.latest_valid(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
        if found is None:
            raise ConfigError(f"no valid checkpoint under {path}")
    elif path.is_file():
        try:
            found = checkpoint.load(path)
        except checkpoint.CheckpointError as exc:
            raise ConfigError(str(exc)) from None
    else:
        raise ConfigError(f"not found: {path}")
    cfg = config_mod.from_saved(found["config"])
    state = found["state"]
    records = json.loads(state["metrics"]["records"])
    print(f"checkpoint   {found['path']}")
    print(f"generation   {found['generation']} of {cfg.run.generations}")
    print(f"config       digest {cfg.digest()}  model={cfg.model.name} space={cfg.space.kind} "
          f"strategy={cfg.strategy.kind} population={cfg.strategy.population} seed={cfg.run.seed}")
    print(f"adapter      sha256 {state['adapter']['sha256']}  dim {np.asarray(state['adapter']['vector']).size}")
    print("strategy     " + json.dumps(_strategy_summary(state["strategy"]), sort_keys=True))
    print(f"metrics      last {args.tail} of {len(records)}:")
    for rec in records[-args.tail:]:
        keys = ("generation", "reward_mean", "reward_max", "heldout_reward", "step_s", "bytes_sent")
        print("  " + "  ".join(f"{k}={rec[k]:.4g}" if isinstance(rec.get(k), float) else f"{k}={rec.get(k)}"
                               for k in keys if k in rec))
    return 0


def run_config(args, env: RankEnv) -> int:
    if args.describe:
        print(config_mod.describe())
        return 0
    cfg = config_mod.load(args.config, args.overrides)
    validate(cfg)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def signal_status(records: list[dict], window: int = 10) -> dict | None:
    """The latest generation's signal diagnostics and the mean over the last ``window`` generations
    (update_snr: the agreement of two half-population update estimates; 0 is chance)."""
    steps = [r for r in records if "tied_fraction" in r]
    if not steps:
        return None
    last, recent = steps[-1], steps[-window:]
    snr = [r["update_snr"] or 0.0 for r in recent]
    return {"tied_fraction": last["tied_fraction"], "distinct_rewards": last["distinct_rewards"],
            "mirror_ties": last.get("mirror_ties"), "update_snr": last.get("update_snr"),
            f"update_snr_mean_last_{len(recent)}": round(sum(snr) / len(snr), 4),
            f"tied_fraction_mean_last_{len(recent)}": round(sum(r["tied_fraction"] for r in recent) / len(recent), 4)}


def run_status(args, env: RankEnv) -> int:
    from essa_hpc.runtime.launchers import job_state
    from essa_hpc.runtime.runlog import read_metrics
    from essa_hpc.runtime.starts import starts_status

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"not a directory: {run_dir}")
    bad_lines: list[int] = []
    records = read_metrics(run_dir / "metrics.jsonl", bad_lines)
    cfg_path = run_dir / "config.yaml"
    total = config_mod.load(cfg_path).run.generations if cfg_path.is_file() else None
    valid, corrupt = None, []
    for path in reversed(checkpoint.list_checkpoints(run_dir / "checkpoints")):
        try:
            checkpoint.load(path)
        except checkpoint.CheckpointError:
            corrupt.append(path.name)
            continue
        valid = path
        break
    valid_gen = checkpoint.generation_of(valid) if valid else None
    heldout = [r for r in records if "heldout_reward" in r]
    exported = (run_dir / "adapter" / "adapter_config.json").is_file()
    status = {"run_dir": str(run_dir), "generation": records[-1]["generation"] if records else None,
              "generations": total,
              "reward_mean": records[-1].get("reward_mean") if records else None,
              "heldout_start": heldout[0]["heldout_reward"] if heldout else None,
              "heldout_latest": heldout[-1]["heldout_reward"] if heldout else None,
              "last_checkpoint": valid.name if valid else None,
              "last_checkpoint_age_s": round(time.time() - valid.stat().st_mtime) if valid else None,
              "corrupt_checkpoints": sorted(corrupt),
              # finished = exported, and the newest checkpoint that verifies is the final generation
              "finished": bool(exported and total is not None and valid_gen == total),
              "exported_adapter": exported}
    status["signal"] = signal_status(records)
    status["starts"] = starts_status(run_dir)
    if bad_lines:
        status["unreadable_metrics_lines"] = bad_lines
    job_file = run_dir / "job.json"
    if job_file.is_file():
        job = json.loads(job_file.read_text())
        status["job_id"] = job.get("job_id")
        status["job_state"] = job_state(job.get("backend"), job["job_id"])
    print(json.dumps(status, indent=2))
    return 0
