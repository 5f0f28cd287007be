"""Deciding whether and from where a run resumes (``--resume auto|never|must``).

Runs before the model loads: the newest valid checkpoint is found (corrupt ones
are skipped with a warning) and its config is compared with the current one on
the settings that define the search (``config.NON_RESUMABLE``).
"""
from __future__ import annotations

from pathlib import Path

from essa_hpc import checkpoint
from essa_hpc.config import NON_RESUMABLE, Config, ConfigError

RESUME_MODES = ["auto", "never", "must"]


def _lookup(d: dict, dotted: str):
    section, key = dotted.split(".")
    return d.get(section, {}).get(key)


def changed_settings(saved: dict, now: dict, keys: list[str]) -> str:
    """'key: old -> new, ...' for every dotted key whose value differs ('' if none)."""
    return ", ".join(f"{k}: {_lookup(saved, k)!r} -> {_lookup(now, k)!r}" for k in keys
                     if _lookup(saved, k) != _lookup(now, k))


def check_resumable(cfg: Config, ckpt_dir: Path, mode: str) -> dict | None:
    from essa_hpc.rundir import earlier_run_files

    if mode not in RESUME_MODES:
        raise ConfigError(f"--resume {mode!r} is not one of: {', '.join(RESUME_MODES)}")
    if mode == "never":
        return None
    found = checkpoint.latest_valid(ckpt_dir)
    if found is None:
        if mode == "must":
            raise ConfigError(f"--resume must: no valid checkpoint in {ckpt_dir}")
        earlier = earlier_run_files(Path(ckpt_dir).parent)
        if earlier:  # starting fresh here would overwrite another run's results
            raise ConfigError(f"{Path(ckpt_dir).parent} holds an earlier run ({', '.join(earlier)}) but no checkpoint "
                              f"that can be resumed; use --resume never to start over (the earlier files are "
                              f"kept in previous-<time>/) or another --run-dir")
        return None
    detail = changed_settings(found["config"], cfg.to_dict(), NON_RESUMABLE)
    if detail:
        raise ConfigError(f"cannot resume {found['path']}: non-resumable settings changed ({detail}); "
                          f"use another --run-dir or --resume never")
    if found["generation"] > cfg.run.generations:
        raise ConfigError(f"checkpoint is at generation {found['generation']} > run.generations={cfg.run.generations}")
    return found


def restore_space_check(found: dict, space, fingerprint: str) -> None:
    """The rebuilt search space must be the one the checkpoint was searching (or, for the
    full space, take its trained weights)."""
    from essa_hpc.spaces.base import SpaceMismatch

    saved = found["state"]
    if saved["model"]["fingerprint"] != fingerprint:
        raise ConfigError(f"cannot resume {found['path']}: the base model weights differ from the checkpoint's")
    try:
        space.load_state_arrays(saved.get("space", {}))
    except SpaceMismatch as exc:
        raise ConfigError(f"cannot resume {found['path']}: {exc}") from None
