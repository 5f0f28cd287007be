"""Declarations of the swappable parts: one ``Spec`` per search space, strategy, task,
generation backend and gradient baseline, and one ``Kind`` table per section.

A spec is everything one part needs and the only place it is listed (torchtitan's
``TrainSpec``): its name, its implementation as ``"package.module:Attr"`` (imported only
when it is built, so listing kinds and validating a config never load torch), its help
line, its options dataclass (the config sub-section ``<section>.<name>``), its
model-free check ``check(cfg)``, and its capabilities: named facts the rest of the code
reads instead of comparing names (a space is ``batched``, a strategy ``always_mirrored``,
a task ``numeric``, a baseline ``data_parallel``, ...). Config sections, validation, CLI
help, the README reference and test parametrisation are all derived from the tables.

``options`` and ``check`` may be given as objects or as ``"module:attr"`` strings, which
are imported on first use; either way they must import without torch.

Plug-ins: a package declares a spec through a Python entry point in the group named by the
table (``essa_hpc.strategies``, ``essa_hpc.tasks``, ...), whose value is the spec object,
for example in its own ``pyproject.toml``::

    [project.entry-points."essa_hpc.strategies"]
    my_es = "my_package.my_es:SPEC"

Installed plug-ins are found at the first use of a table and treated like built-ins; a
built-in's name cannot be taken over, and a plug-in that fails to load is skipped with a
one-line warning rather than breaking every run.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable

from essa_hpc.errors import ConfigError

log = logging.getLogger(__name__)


def import_target(target: str):
    """``"package.module:Attr"`` -> that attribute, importing the module now."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _resolve(value):
    return import_target(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Spec:
    name: str
    target: str                               # "package.module:Attr", imported by Kind.load
    help: str                                 # one line: --help, `essa-hpc config --describe`, the README
    options: type | str | None = None         # dataclass of the keys under <section>.<name>
    check: Callable | str | None = None       # check(cfg) -> None; one-line ConfigError; no model, no torch
    caps: dict = field(default_factory=dict)  # capability -> value; the names are the table's `capabilities`

    def get(self, capability: str):
        """The value of ``capability`` (the table's default when this spec does not set it)."""
        return self.caps.get(capability)

    @property
    def options_class(self) -> type | None:
        return _resolve(self.options)

    def run_check(self, cfg) -> None:
        if self.check is not None:
            _resolve(self.check)(cfg)


class Kind:
    """The table of one kind of part: its built-in specs, then installed plug-ins."""

    def __init__(self, key: str, what: str, group: str, capabilities: dict[str, str], builtins: list,
                 spec_type: type = Spec):
        self.key, self.what, self.group = key, what, group  # e.g. "strategy.kind", "strategy", "essa_hpc.strategies"
        self.spec_type = spec_type                           # what an entry point must name (a Spec, mostly)
        self.capabilities = capabilities                     # name -> what it means (the only names a spec may set)
        self._builtins = list(builtins)
        self._specs: dict[str, Spec] | None = None

    def _table(self) -> dict[str, Spec]:
        if self._specs is None:
            specs: dict[str, Spec] = {}
            for spec in self._builtins:
                self._admit(specs, spec, "built-in")
            for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
                try:
                    spec = ep.load()
                    if not isinstance(spec, self.spec_type) or spec.name != ep.name:
                        raise TypeError(f"{ep.value} is not a {self.spec_type.__name__} named {ep.name!r}")
                    self._admit(specs, spec, f"plug-in {ep.value}")
                except Exception as exc:  # one broken plug-in must not break every run
                    log.warning("%s plug-in %r (entry point %s) skipped: %s", self.what, ep.name, ep.value,
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._specs = specs
        return self._specs

    def _admit(self, specs: dict[str, Spec], spec: Spec, origin: str) -> None:
        if spec.name in specs:
            raise ValueError(f"{self.what} {spec.name!r} ({origin}) is declared twice")
        unknown = set(spec.caps) - set(self.capabilities)
        if unknown:
            raise ValueError(f"{self.what} {spec.name!r} ({origin}) sets unknown capabilities {sorted(unknown)}; "
                             f"allowed: {', '.join(self.capabilities)}")
        specs[spec.name] = spec

    def names(self) -> list[str]:
        return list(self._table())

    def specs(self) -> list[Spec]:
        return list(self._table().values())

    def with_capability(self, capability: str) -> list[str]:
        """Names of the specs whose ``capability`` is set (truthy)."""
        return [s.name for s in self.specs() if s.get(capability)]

    def __contains__(self, name: str) -> bool:
        return name in self._table()

    def spec(self, name: str) -> Spec:
        table = self._table()
        if name not in table:
            raise ConfigError(f"{self.key}={name!r} is not one of: {', '.join(table)}")
        return table[name]

    def spec_of(self, cls: type) -> Spec:
        """The spec whose implementation is ``cls`` or its nearest declared base class."""
        targets = {s.target: s for s in self.specs()}
        for klass in cls.__mro__:
            spec = targets.get(f"{klass.__module__}:{klass.__qualname__}")
            if spec is not None:
                return spec
        raise LookupError(f"{cls.__qualname__} is not a declared {self.what}")

    def load(self, name: str):
        """The implementation (class or function) declared as ``name``, imported now."""
        return import_target(self.spec(name).target)

    def help(self, sep: str = " | ") -> str:
        """'a (what a is) | b (what b is)': the choices line of the kind's config key."""
        return sep.join(f"{s.name} ({s.help})" for s in self.specs())
