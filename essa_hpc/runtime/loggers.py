"""The loggers of ``run.report_to`` (declared in ``config/loggers.py``): the metrics rows, from
rank 0, as scalars at step = generation.

A resume repeats no step in them. TensorBoard's writer opens at the first row this process
writes with ``purge_step`` at that generation, so events a crashed run wrote past its last
checkpoint are dropped (torch's SummaryWriter does the dropping). W&B keeps the run's id in the
run dir and resumes the same run; rows for generations it already has are skipped, which loses
nothing because a resume recomputes them bit-identically.
"""
from __future__ import annotations

import logging
import numbers
import secrets
from pathlib import Path

from essa_hpc.config.loggers import LOGGERS, report_to

log = logging.getLogger(__name__)


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
    """Every number of a metrics row, nested dicts flattened to ``outer/inner``; the step is left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, f"{name}/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and name != "generation":
            out[name] = float(value)
    return out


class TensorBoardLogger:
    def __init__(self, cfg, run_dir: Path, first_step: int):
        from torch.utils.tensorboard import SummaryWriter
        self.log_dir = Path(cfg.run.tensorboard.log_dir or Path(run_dir) / "tensorboard")
        self.writer = SummaryWriter(str(self.log_dir), purge_step=first_step)

    def log(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a crash loses no written row

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    ID_FILE = "wandb_run_id"

    def __init__(self, cfg, run_dir: Path, first_step: int):
        import wandb
        id_file = Path(run_dir) / self.ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)  # W&B ids: lowercase letters and digits
        id_file.write_text(run_id)
        o = cfg.run.wandb
        self.run = wandb.init(project=o.project, entity=o.entity or None, mode=o.mode or None, dir=str(run_dir),
                              id=run_id, resume="allow", name=Path(run_dir).name, config=cfg.to_dict())
        self.next_step = self.run.step  # rows below it are in the W&B run already

    def log(self, values: dict[str, float], step: int) -> None:
        if step >= self.next_step:
            self.run.log(values, step=step)
            self.next_step = step + 1

    def close(self) -> None:
        self.run.finish()


class MetricsLoggers:
    """The loggers ``run.report_to`` names, opened at the first row (its generation is the first step)."""

    def __init__(self, cfg, run_dir: Path):
        self.cfg, self.run_dir, self.names = cfg, Path(run_dir), report_to(cfg)
        self.loggers: list | None = None

    def log(self, record: dict) -> None:
        if not self.names:
            return
        step = int(record.get("generation", 0))
        if self.loggers is None:
            self.loggers = [LOGGERS.load(name)(self.cfg, self.run_dir, step) for name in self.names]
        values = scalars(record)
        for logger in self.loggers:
            logger.log(values, step)

    def close(self) -> None:
        for logger in self.loggers or []:
            logger.close()
        self.loggers = None
