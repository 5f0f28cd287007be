"""Declaring config keys and checking their values, for ``config.py`` and for the
per-kind option dataclasses that strategies, tasks and baselines declare next to
their code. Imports nothing heavy: validation must not load torch."""
from __future__ import annotations

from dataclasses import field

from essa_hpc.errors import ConfigError


def opt(default, help: str, resumable: bool = True):
    """A config field. ``resumable=False`` marks settings that define the search or the task:
    a checkpoint written under one value cannot be continued under another."""
    meta = {"help": help, "resumable": resumable}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def choice(value: str, allowed, where: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}={value!r} is not one of: {', '.join(allowed)}")


def at_least(value, minimum, where: str) -> None:
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value}")


def positive(value, where: str) -> None:
    if value <= 0:
        raise ConfigError(f"{where} must be > 0, got {value}")
