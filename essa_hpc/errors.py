"""Errors the user can act on. Kept in a module of their own, which imports nothing,
so that every layer (config, tasks, strategies, launch) can raise them without
importing the others."""
from __future__ import annotations


class ConfigError(ValueError):
    """A config or input problem the user can fix; the message is one line."""
