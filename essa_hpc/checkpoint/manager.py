"""The one owner of a run's checkpoints: whether and from where a run resumes, setting an
earlier run aside, when to write (cadence), how many to keep, and loading the state at
the start of a run. ``checkpoint.py`` is the file format underneath.

The state is a set of named parts, each with ``state_dict()`` / ``load_state_dict()``
(as in torchtitan's checkpointer): the trainer passes the model's identity, the space,
the strategy, its own counters, the metrics and the adapter check. They are loaded in
that order, so a wrong base model is refused before anything is restored. The names
are the HDF5 groups, unchanged since format 1, so older checkpoints load.

Resuming runs before the model loads: the newest valid checkpoint is found (corrupt ones
are skipped with a warning) and its config, read through ``config.upgrade_saved``, is
compared with the current one on every field marked ``resumable=False``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from essa_hpc import checkpoint
from essa_hpc.config import Config, non_resumable_keys, upgrade_saved
from essa_hpc.config.dataclass_io import deep_merge, lookup
from essa_hpc.config.schema import ADDED_KEYS
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import rundir

RESUME_MODES = ["auto", "never", "must"]
log = logging.getLogger(__name__)


class FnState:
    """A state part made of two functions, for state that belongs to no single object."""

    def __init__(self, save: Callable[[], dict], load: Callable[[dict], None]):
        self.state_dict, self.load_state_dict = save, load


def changed_settings(saved: dict, now: dict, keys: list[str]) -> str:
    """'key: old -> new, ...' for every dotted key whose value differs ('' if none)."""
    return ", ".join(f"{k}: {lookup(saved, k)!r} -> {lookup(now, k)!r}" for k in keys
                     if lookup(saved, k) != lookup(now, k))


def keep_earlier_behaviour(cfg: Config, saved: dict) -> None:
    """A run started before a key of ADDED_KEYS existed continues under the behaviour it started with, when
    this run leaves that key at today's default: the resume stays exact without an override (one log line)."""
    defaults = Config()
    for section, kind, key in ADDED_KEYS:
        dotted = f"{section}.{kind}.{key}"
        then, now = lookup(saved, dotted), lookup(cfg.to_dict(), dotted)
        if then != now and now == lookup(defaults.to_dict(), dotted):
            setattr(getattr(getattr(cfg, section), kind), key, then)
            log.info("resuming under %s=%r, the value this run started with (today's default is %r)", dotted, then,
                     now)


class CheckpointManager:
    def __init__(self, run_dir: str | Path, every: int = 1, keep: int = 3, writer: bool = True):
        """``writer``: this rank writes (rank 0); the others only ever read checkpoints."""
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "checkpoints"
        self.every, self.keep, self.writer = every, keep, writer

    # --- before the model loads ---------------------------------------------------
    def latest(self) -> dict | None:
        """The newest checkpoint that loads and verifies ({'generation', 'config', 'state', 'path'})."""
        return checkpoint.latest_valid(self.dir)

    def find_resume(self, cfg: Config, mode: str) -> dict | None:
        """The checkpoint this run continues from (None: start fresh), or a one-line ConfigError."""
        if mode not in RESUME_MODES:
            raise ConfigError(f"--resume {mode!r} is not one of: {', '.join(RESUME_MODES)}")
        if mode == "never":
            return None
        found = self.latest()
        if found is None:
            if mode == "must":
                raise ConfigError(f"--resume must: no valid checkpoint in {self.dir}")
            earlier = rundir.earlier_run_files(self.run_dir)
            if earlier:  # starting fresh here would overwrite another run's results
                raise ConfigError(f"{self.run_dir} holds an earlier run ({', '.join(earlier)}) but no checkpoint "
                                  f"that can be resumed; use --resume never to start over (the earlier files are "
                                  f"kept in previous-<time>/) or another --run-dir")
            return None
        # A key the saved config lacks was added later with today's default, unless ADDED_KEYS says otherwise.
        saved = deep_merge(Config().to_dict(), upgrade_saved(found["config"]))
        keep_earlier_behaviour(cfg, saved)
        detail = changed_settings(saved, cfg.to_dict(), non_resumable_keys(cfg))
        if detail:
            raise ConfigError(f"cannot resume {found['path']}: non-resumable settings changed ({detail}); "
                              f"set them back to continue it, or use another --run-dir or --resume never")
        if found["generation"] > cfg.run.generations:
            raise ConfigError(f"checkpoint is at generation {found['generation']} > "
                              f"run.generations={cfg.run.generations}")
        return found

    def prepare(self, fresh: bool) -> Path | None:
        """Rank 0, holding the run-dir lock: remove a killed writer's temp files and, when the run
        starts fresh, move an earlier run's files to ``previous-<time>/`` (returned)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rundir.remove_orphan_temps(self.dir)
        return rundir.set_aside(self.run_dir) if fresh else None

    # --- in the run ---------------------------------------------------------------
    def due(self, generation: int, last: bool, stopping: bool) -> bool:
        """Checkpoint now? Every ``every`` generations, at the end, and before a stop."""
        return last or stopping or generation % self.every == 0

    def save(self, generation: int, parts: dict, config: dict) -> float:
        """Write the state of ``parts`` as generation ``generation``; returns the seconds it took."""
        t0 = time.perf_counter()
        if self.writer:
            state = {name: part.state_dict() for name, part in parts.items()}
            checkpoint.save(self.dir, generation, state, config, self.keep)
        return time.perf_counter() - t0

    def restore(self, found: dict, parts: dict) -> None:
        """Load every part from ``found``, in ``parts``' order; a part that does not fit (another base
        model, another start adapter) is refused in one line."""
        for name, part in parts.items():
            try:
                part.load_state_dict(found["state"].get(name, {}))
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"cannot resume {found['path']}: {exc}") from None
        log.info("resumed from %s at generation %d", Path(found["path"]).name, found["generation"])
