"""No leftover MPI shared memory: MPICH's ``/dev/shm/mpich_shm_*`` files of dead jobs.

MPICH keeps one shared-memory file per node and job while the ranks run, and removes
it in ``MPI_Finalize``. A job that ends any other way (``MPI_Abort``, kill -9, a node
that loses power) leaves it behind, and long-lived nodes collect them. So:

- a rank that fails unlinks the files it has mapped before it aborts the job
  (``remove_own``): every rank is about to die, and a mapping outlives its name;
- every run starts by removing the stale files of its user (``remove_stale``): files
  that no living process maps and that are older than a few seconds (a file is mapped
  by its creator right after it is made, so the age only guards that instant).

``python -m essa_hpc.runtime.shm`` does the second from a SLURM epilog (slurm/README.md).

The vLLM backend keeps its adapters and engine socket in ``/dev/shm/essa-vllm-<pid>-*``
and removes the directory when its rank ends; ``remove_stale`` also removes the ones whose
rank was killed (its pid no longer runs).
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PATTERN = "mpich_shm_*"
ENGINE_PATTERN = "essa-vllm-*"  # vllm_rollout.py's work directories: essa-vllm-<pid>-<random>
MIN_AGE_S = 2.0
log = logging.getLogger(__name__)


def _mapped_in(maps_file: Path) -> set[str]:
    try:
        lines = maps_file.read_text().splitlines()
    except OSError:  # the process ended, or belongs to another user
        return set()
    return {line.split(None, 5)[5].removesuffix(" (deleted)") for line in lines
            if len(line.split(None, 5)) == 6 and line.split(None, 5)[5].startswith(str(SHM_DIR))}


def mapped_files() -> set[str]:
    """Every /dev/shm path some readable process maps right now."""
    found: set[str] = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            found |= _mapped_in(proc / "maps")
    return found


def stale_files(min_age_s: float = MIN_AGE_S) -> list[Path]:
    """This user's MPICH shared-memory files that no living process maps."""
    if not SHM_DIR.is_dir():
        return []
    mapped, now, uid = mapped_files(), time.time(), os.getuid()
    stale = []
    for path in SHM_DIR.glob(PATTERN):
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_uid == uid and now - st.st_mtime >= min_age_s and str(path) not in mapped:
            stale.append(path)
    return sorted(stale)


def stale_engine_dirs() -> list[Path]:
    """vLLM backend work directories whose rank process is gone."""
    stale = []
    for path in SHM_DIR.glob(ENGINE_PATTERN) if SHM_DIR.is_dir() else []:
        pid = path.name.split("-")[2]
        if pid.isdigit() and not Path("/proc", pid).exists():
            stale.append(path)
    return sorted(stale)


def remove_stale(min_age_s: float = MIN_AGE_S) -> list[str]:
    import shutil

    removed = []
    for path in stale_engine_dirs():
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    for path in stale_files(min_age_s):
        try:
            path.unlink()
            removed.append(path.name)
        except OSError:
            pass  # another rank of this node removed it first
    if removed:
        log.info("removed %d MPI shared-memory file(s) left by ended jobs: %s", len(removed), ", ".join(removed))
    return removed


def remove_own() -> list[str]:
    """Unlink the MPICH files this process maps (only when the whole job is about to abort)."""
    removed = []
    for name in _mapped_in(Path("/proc/self/maps")):
        path = Path(name)
        if path.match(PATTERN):
            try:
                path.unlink()
                removed.append(path.name)
            except OSError:
                pass
    return removed


if __name__ == "__main__":
    names = remove_stale(float(sys.argv[1]) if len(sys.argv) > 1 else MIN_AGE_S)
    print(f"removed {len(names)} stale MPICH shared-memory file(s)" + (f": {' '.join(names)}" if names else ""))
