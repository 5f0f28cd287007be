"""Nested config dataclasses from YAML mappings and dotted overrides, and back.

Generic: nothing here knows which sections exist (``config.py`` does). A field whose
type is a dataclass is a sub-section (``strategy.open_es``), filled from a mapping.
Every value is coerced to its field's type with a one-line ``ConfigError`` on failure.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

import yaml

from essa_hpc.errors import ConfigError


def is_section(typ: Any) -> bool:
    return isinstance(typ, type) and dataclasses.is_dataclass(typ)


def coerce(value: Any, typ: Any, where: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):  # nan/inf would be accepted by every `< 0` check and learn nothing
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if typ is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if typ is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return value
    return value


def _moved_hint(cls, key: str, where: str) -> str:
    """'; it is now strategy.open_es.learning_rate' when ``key`` is a key of a sub-section."""
    hints = typing.get_type_hints(cls)
    homes = [f"{where}.{f.name}.{key}" for f in dataclasses.fields(cls)
             if is_section(hints[f.name]) and key in {g.name for g in dataclasses.fields(hints[f.name])}]
    return f"; it is now {' or '.join(homes)}" if homes else ""


def section_from_dict(cls, data: Any, where: str):
    """``cls(**data)`` with every key checked and coerced; sub-sections recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(f"unknown key '{where}.{key}'{_moved_hint(cls, key, where)}; "
                              f"allowed: {', '.join(allowed)}")
        if is_section(hints[key]):
            kwargs[key] = section_from_dict(hints[key], value or {}, f"{where}.{key}")
        else:
            kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def fields_of(cls, prefix: str):
    """(dotted key, field) of every leaf field, sub-sections flattened in order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if is_section(hints[f.name]):
            yield from fields_of(hints[f.name], f"{prefix}.{f.name}")
        else:
            yield f"{prefix}.{f.name}", f


def lookup(tree: dict, dotted: str):
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


_OVERRIDE = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)+)=(.*)$", re.S)


def parse_overrides(items: list[str]) -> dict:
    """['strategy.open_es.learning_rate=0.1'] -> {'strategy': {'open_es': {'learning_rate': 0.1}}}
    (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        m = _OVERRIDE.match(item)
        if not m:
            raise ConfigError(f"bad override {item!r}; expected section.key=value, e.g. strategy.population=16")
        dotted, raw = m.groups()
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        *path, leaf = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier one")
        node[leaf] = value
    return out


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); "
                                  f"each section and key may appear once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
