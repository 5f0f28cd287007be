"""Rank-0 output: logging setup, ``print0``, and the metrics.jsonl writer.

Rank 0 talks; other ranks only warn, and say which rank they are.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path


def setup_logging(rank: int, run_dir: Path | None = None) -> None:
    fmt = "%(asctime)s %(levelname)s %(message)s" if rank == 0 else f"%(asctime)s [rank {rank}] %(levelname)s %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if rank == 0 and run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(run_dir / "train.log"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format=fmt, datefmt="%H:%M:%S",
                        handlers=handlers, force=True)
    # A log line that cannot be written (disk full) must not print a traceback per line; the
    # failure itself is reported once, by the write that raised.
    logging.raiseExceptions = False
    # bitsandbytes, torchao and kernels warn at import about optional kernels they fall back from
    for noisy in ("transformers", "httpx", "urllib3", "datasets", "peft", "bitsandbytes", "torchao", "kernels"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:  # per-load weight bars drown the run's own progress bar
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class MetricsLog:
    """One JSON line per generation; rank 0 writes, fsyncing so a crash keeps every finished line.
    A checkpoint holds the lines up to its generation (``state_dict``); a resume starts from them.
    ``loggers`` (``runtime.loggers.MetricsLoggers``) get each written line too, on rank 0."""

    def __init__(self, path: Path, enabled: bool, loggers=None):
        self.path, self.enabled, self.loggers = Path(path), enabled, loggers
        self.records: list[dict] = []
        self._staged: dict | None = None

    def stage(self, record: dict) -> None:
        """``record`` belongs in the checkpoint about to be written, before ``write`` adds it."""
        self._staged = record

    def state_dict(self) -> dict:
        staged = [self._staged] if self._staged is not None else []
        return {"records": json.dumps(self.records + staged)}

    def load_state_dict(self, state: dict) -> None:
        self.reset(json.loads(state["records"]))

    def reset(self, records: list[dict]) -> None:
        """Start from the records a checkpoint holds, dropping lines written after it."""
        self.records = list(records)
        if self.enabled:
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
            os.replace(tmp, self.path)

    def write(self, record: dict) -> None:
        self._staged = None
        self.records.append(record)
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if self.loggers is not None:
                self.loggers.log(record)

    def close(self) -> None:
        if self.loggers is not None:
            self.loggers.close()


def read_metrics(path: Path, bad_lines: list | None = None) -> list[dict]:
    """Every complete record; a line that does not parse (a write cut short by a crash) is
    skipped and, when ``bad_lines`` is given, its 1-based number is appended there."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif bad_lines is not None:
            bad_lines.append(number)
    return records


def write_summary(path: Path, records: list[dict], generations: int, fault_kinds: tuple[str, ...],
                  extra: dict | None = None) -> dict:
    """run_dir/summary.json at the end of a run: held-out start/end, the reward faults of the whole run
    (a count for each of ``fault_kinds``), and ``extra`` (the best-on-validation choice, under run.select_best)."""
    heldout = [r for r in records if "heldout_reward" in r]
    summary = {"generations": generations, "heldout_start": heldout[0]["heldout_reward"] if heldout else None,
               "heldout_final": heldout[-1]["heldout_reward"] if heldout else None,
               "adapter_sha256": records[-1].get("adapter_sha256") if records else None}
    for field in ("reward_faults", "heldout_faults"):
        summary[field] = {k: sum(int(r.get(field, {}).get(k, 0)) for r in records) for k in fault_kinds}
    validation = [r["validation_reward"] for r in records if "validation_reward" in r]
    if validation:
        summary.update(validation_start=validation[0], validation_final=validation[-1], validation_best=max(validation))
    summary.update(extra or {})
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, path)
    return summary


def write_job_info(run_dir: Path, info: dict) -> None:
    """run_dir/job.json: which scheduler job owns the run (read by `essa-hpc status`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "job.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, path)


class Stopwatch:
    """Accumulates named durations: ``with watch("eval"): ...`` then ``watch.seconds``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}  # laps still running

    def __call__(self, name: str):
        return _Lap(self, name)

    def elapsed(self, name: str) -> float:
        """Seconds under ``name`` so far, the running lap included."""
        running = time.perf_counter() - self._started[name] if name in self._started else 0.0
        return self.seconds.get(name, 0.0) + running


class _Lap:
    def __init__(self, watch: Stopwatch, name: str):
        self.watch, self.name = watch, name

    def __enter__(self):
        self.t0 = self.watch._started[self.name] = time.perf_counter()

    def __exit__(self, *exc):
        del self.watch._started[self.name]
        self.watch.seconds[self.name] = self.watch.seconds.get(self.name, 0.0) + time.perf_counter() - self.t0
