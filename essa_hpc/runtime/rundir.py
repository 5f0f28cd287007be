"""The run directory belongs to one run: an exclusive lock, checks before it is used,
and what happens to an earlier run's files.

- ``RunDirLock``: rank 0 holds ``fcntl.flock`` on ``run_dir/.lock`` for the life of the
  run. A second ``essa-hpc train`` on the same directory is refused in one line that
  names the holder (host, pid, job id). The kernel drops the lock when its process
  dies, so a lock left by a killed run never blocks the resume.
- ``check_usable``: the directory is not a file and can be written (a read-only
  filesystem or a missing permission fails in one line before the model loads).
- ``earlier_run_files`` / ``set_aside``: files of an earlier run (metrics, adapter,
  checkpoints). ``--resume auto`` refuses to write over them when no checkpoint can
  be resumed; ``--resume never`` moves them together into ``previous-<time>/``.
- ``remove_orphan_temps``: temp files of checkpoints whose writer was killed.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from essa_hpc.errors import ConfigError

LOCK_NAME = ".lock"
# What an earlier run leaves behind; kept together when a fresh run starts over.
RUN_FILES = ("checkpoints", "metrics.jsonl", "adapter", "summary.json", "config.yaml")
log = logging.getLogger(__name__)


def check_usable(run_dir: Path) -> None:
    """One-line error if ``run_dir`` cannot hold a run; creates nothing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir} exists and is not a directory")
    probe = run_dir
    while not probe.exists():  # the nearest existing parent decides whether it can be created
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"run dir {run_dir}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "read-only filesystem" if _read_only(probe) else "no write permission"
        raise ConfigError(f"run dir {run_dir} cannot be written ({why}: {probe})")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class RunDirLock:
    """An exclusive, process-lifetime lock on a run directory (rank 0 only)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, job_id: str | None = None) -> "RunDirLock":
        """Take the lock, recording this process (and its SLURM ``job_id``) for the next one to name."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"run dir {self.path.parent} cannot be written: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"cannot lock run dir {self.path.parent}: {exc.strerror}") from None
            raise ConfigError(f"run dir {self.path.parent} is in use by another run ({self.holder()}); "
                              f"wait for it, stop it, or use another --run-dir") from None
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "job_id": job_id,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        self._fd = fd
        return self

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "holder unknown"
        job = f", job {info['job_id']}" if info.get("job_id") else ""
        return f"host {info.get('host', '?')}, pid {info.get('pid', '?')}{job}, since {info.get('since', '?')}"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def earlier_run_files(run_dir: Path) -> list[str]:
    """Names of an earlier run's results in ``run_dir`` (config.yaml alone does not count)."""
    return [name for name in RUN_FILES if name != "config.yaml" and (Path(run_dir) / name).exists()]


def set_aside(run_dir: Path) -> Path | None:
    """Move an earlier run's files into ``run_dir/previous-<time>/``; returns it (None if nothing)."""
    run_dir = Path(run_dir)
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not earlier_run_files(run_dir):
        return None
    aside = run_dir / f"previous-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while aside.exists():
        aside = run_dir / f"previous-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        n += 1
    aside.mkdir()
    for name in present:
        os.replace(run_dir / name, aside / name)
    return aside


def remove_orphan_temps(ckpt_dir: Path) -> list[str]:
    """Delete ``ckpt_*.h5.tmp*`` left by a writer that was killed (call under the lock)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    removed = []
    for path in ckpt_dir.glob("ckpt_*.h5.tmp*"):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    if removed:
        log.warning("removed %d unfinished checkpoint file(s) of an earlier, killed run: %s", len(removed),
                    ", ".join(sorted(removed)))
    return removed
