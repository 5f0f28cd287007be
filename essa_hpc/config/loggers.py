"""The metrics loggers users watch: ``run.report_to`` names -> their declaration.

``metrics.jsonl`` stays the record; a logger gets the same rows from rank 0, each numeric field
a scalar at step = generation (nested dicts as ``outer/inner``). Loggers import their
libraries only when built, so a config that names one whose package is missing fails in one
line before any model loads. Adding one: a class in ``essa_hpc/runtime/loggers.py`` (or a
package of your own) plus one ``Spec`` here, or an entry point in the group ``essa_hpc.loggers``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from essa_hpc.config.kinds import Kind, Spec
from essa_hpc.config.options import choice, opt
from essa_hpc.errors import ConfigError


@dataclass
class TensorBoardOptions:
    """Keys under ``run.tensorboard``."""
    log_dir: str = opt("", "Where the event files go; empty = <run_dir>/tensorboard")


@dataclass
class WandbOptions:
    """Keys under ``run.wandb``."""
    project: str = opt("essa-hpc", "W&B project")
    entity: str = opt("", "W&B entity (user or team); empty = your default one")
    mode: str = opt("", "online | offline | disabled; empty = the WANDB_MODE variable, else online")


def _needs(package: str, logger: str, install: str):
    def check(cfg) -> None:
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"run.report_to={logger} needs the {package} package: pip install {install}")
    return check


def check_wandb(cfg) -> None:
    _needs("wandb", "wandb", "wandb")(cfg)
    if cfg.run.wandb.mode:
        choice(cfg.run.wandb.mode, ["online", "offline", "disabled"], "run.wandb.mode")


LOGGERS = Kind("run.report_to", "metrics logger", "essa_hpc.loggers", {}, [
    Spec("tensorboard", "essa_hpc.runtime.loggers:TensorBoardLogger", "TensorBoard event files through torch's "
         "SummaryWriter", TensorBoardOptions, _needs("tensorboard", "tensorboard", "tensorboard")),
    Spec("wandb", "essa_hpc.runtime.loggers:WandbLogger", "Weights & Biases; a resumed run continues the same W&B "
         "run", WandbOptions, check_wandb),
])


def report_to(cfg) -> list[str]:
    """The loggers ``run.report_to`` names (comma-separated; empty = none)."""
    return [name.strip() for name in cfg.run.report_to.split(",") if name.strip()]


def check_loggers(cfg) -> None:
    for name in report_to(cfg):
        LOGGERS.spec(name).run_check(cfg)
