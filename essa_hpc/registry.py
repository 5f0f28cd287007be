"""One registry per kind of plug-in: search spaces, strategies, tasks, rollout backends
and gradient baselines. A registry is the single source of truth for its kind: the
config's choices and help text, the README reference, validation and construction
all read it, and tests are parametrised over it.

An entry names its implementation as ``"package.module:Attr"`` and imports it only
when it is built, so listing kinds and validating a config never load torch. A
kind's own config keys are an ``options`` dataclass (the section ``<section>.<kind>``
of the config) and its model-free checks are ``check(cfg)``; both must import
without torch, so they live in the kind's file when that file is light (strategies,
tasks) and next to the registry line otherwise (spaces, backends, baselines).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from essa_hpc.errors import ConfigError


def import_target(target: str):
    """``"package.module:Attr"`` -> that attribute, importing the module now."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Entry:
    name: str
    target: str                            # "package.module:Attr", imported by ``load``
    help: str                              # one line, shown in --help, `essa-hpc config` and the README
    options: type | None = None            # dataclass of the keys under <section>.<name>
    check: Callable | None = None          # check(cfg) -> None; one-line ConfigError; no model, no torch
    meta: tuple = ()                       # (key, value) pairs a registry's users read (e.g. a space's needs)

    def get(self, key: str, default=None):
        return dict(self.meta).get(key, default)


class Registry:
    def __init__(self, where: str, what: str):
        self.where, self.what = where, what  # e.g. "strategy.kind", "strategy"
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, help: str, options: type | None = None, check: Callable | None = None,
            **meta) -> None:
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = Entry(name, target, help, options, check, tuple(sorted(meta.items())))

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise ConfigError(f"{self.where}={name!r} is not one of: {', '.join(self._entries)}")
        return self._entries[name]

    def load(self, name: str):
        """The implementation (class or function) registered as ``name``, imported now."""
        return import_target(self.entry(name).target)

    def help(self) -> str:
        """'a (what a is) | b (what b is)': the choices line of the kind's config key."""
        return " | ".join(f"{e.name} ({e.help})" for e in self._entries.values())
