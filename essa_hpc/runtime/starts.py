"""Every start of a run, in ``run_dir/starts.jsonl`` (rank 0), and the no-progress guard.

A job that the scheduler requeues (or that relaunches itself) and dies before it finishes a
generation would otherwise loop: one requeue after another, each back at the same checkpoint
(a run once requeued 11 times that way before anyone stopped it). So each start records its job,
the scheduler's restart count, the world size and the generation it resumes from; the third
start of one job at the same generation is refused, in one line and with its own exit code, and
the job ends failed instead of requeueing. A new submission (another job id) starts normally, so
a user who has fixed the cause just submits again. Runs without a scheduler job are never refused:
a person starting a run by hand is not a loop.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

STARTS = "starts.jsonl"
GUARD_STARTS = 3      # the first start and two restarts, all at one generation
EXIT_NO_PROGRESS = 3  # essa.sbatch and submit do not requeue on it


class NoProgress(Exception):
    """This start would be the GUARD_STARTS-th of one job at one generation."""


def read_starts(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / STARTS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().startswith("{")]


def no_progress_reason(starts: list[dict], job_id: str | None, generation: int) -> str | None:
    """Why a start of ``job_id`` at ``generation`` must not run, after ``starts``; None when it may."""
    if not job_id:
        return None
    earlier = starts[-(GUARD_STARTS - 1):]
    if len(earlier) < GUARD_STARTS - 1 or any(s.get("job_id") != job_id or s.get("generation") != generation
                                              for s in earlier):
        return None
    return (f"no progress: job {job_id} started {GUARD_STARTS} times at generation {generation} without finishing a "
            f"generation; stopping instead of requeueing again. Look at the job's log for why each start ended, "
            f"then submit a new job (it resumes from the same checkpoint)")


def record_start(run_dir: Path, job_id: str | None, restarts: int, world: int, generation: int, relaunch: int = 0,
                 cause: str | None = None) -> None:
    """Rank 0: log this start (``restarts``: the scheduler's requeues; ``relaunch`` and ``cause``: the
    elastic loop's); raise NoProgress (after logging it as refused) when the guard says so."""
    path = Path(run_dir) / STARTS
    reason = no_progress_reason(read_starts(run_dir), job_id, generation)
    entry = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "job_id": job_id, "restarts": restarts, "world": world,
             "generation": generation, "relaunch": relaunch, "cause": cause}
    if reason:
        entry["refused"] = reason
    with open(path, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    if reason:
        raise NoProgress(reason)


def starts_status(run_dir: Path) -> dict | None:
    """For ``essa-hpc status``: how often the run started, the latest start, and a refusal if any."""
    starts = read_starts(run_dir)
    if not starts:
        return None
    last = starts[-1]
    out = {"count": len(starts), "latest": {k: last.get(k) for k in ("time", "job_id", "restarts", "relaunch",
                                                                      "cause", "world", "generation")}}
    if "refused" in last:
        out["stopped"] = last["refused"]
    return out
