"""Local task data: HF ``save_to_disk`` folders or json/jsonl/parquet/csv files.

``columns`` is the cheap check run by config validation (it reads a folder's
``dataset_info.json``, a parquet schema or the first JSON record, never the whole
set); ``load_rows`` loads everything, in the task. Every problem is a one-line
``ConfigError`` naming the setting and the path.
"""
from __future__ import annotations

import glob
import json
from pathlib import Path

from essa_hpc.errors import ConfigError

_LOADERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def _resolve(path: str, what: str) -> tuple[str, list[str]]:
    """('disk', [dir]) or (loader, files)."""
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / "dataset_dict.json").is_file():
            splits = json.loads((p / "dataset_dict.json").read_text()).get("splits", [])
            raise ConfigError(f"{what}={path} holds several splits ({', '.join(splits)}); "
                              f"point it at one of them, e.g. {p / (splits[0] if splits else 'train')}")
        if (p / "state.json").is_file():
            return "disk", [str(p)]
        files = sorted(str(f) for f in p.iterdir() if f.suffix in _LOADERS)
    elif p.is_file():
        files = [str(p)]
    else:
        files = sorted(glob.glob(str(p))) if any(c in path for c in "*?[") else []
        if not files:
            raise ConfigError(f"{what}={path}: no such file or directory")
    kinds = {_LOADERS.get(Path(f).suffix) for f in files}
    if not files or None in kinds or len(kinds) > 1:
        raise ConfigError(f"{what}={path}: expected a save_to_disk folder or .json/.jsonl/.parquet/.csv "
                          f"files of one kind, found {[Path(f).name for f in files][:5] or 'nothing usable'}")
    return kinds.pop(), files


def _first_json_record(file: str, what: str) -> dict:
    with open(file, encoding="utf-8") as fh:
        head = fh.read(1 << 16).lstrip()
        try:
            if head.startswith("["):  # one JSON list: needs the whole file
                fh.seek(0)
                data = json.load(fh)
                record = data[0] if data else {}
            else:  # JSON lines
                record = json.loads(head.splitlines()[0]) if head else {}
        except (json.JSONDecodeError, IndexError) as e:
            raise ConfigError(f"{what}={file} is not valid JSON or JSON lines: {e}") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{what}={file}: expected records (objects with named fields), got {type(record).__name__}")
    return record


def columns(path: str, what: str = "task.data_path") -> list[str]:
    """Column names, read cheaply."""
    kind, files = _resolve(path, what)
    if kind == "disk":
        info = Path(files[0], "dataset_info.json")
        features = json.loads(info.read_text()).get("features") if info.is_file() else None
        if features:
            return list(features)
        import datasets
        return list(datasets.load_from_disk(files[0]).column_names)
    if kind == "parquet":
        import pyarrow.parquet as pq
        try:
            return list(pq.read_schema(files[0]).names)
        except Exception as e:  # noqa: BLE001 - any reader error is a data problem
            raise ConfigError(f"{what}={files[0]} is not a readable parquet file: {e}") from None
    if kind == "csv":
        with open(files[0], encoding="utf-8") as fh:
            return [c.strip() for c in fh.readline().strip().split(",")]
    return list(_first_json_record(files[0], what))


def require_columns(path: str, layouts: list[tuple[str, ...]], what: str = "task.data_path") -> tuple[str, ...]:
    """The first layout (tuple of column names) that ``path`` has; else a ConfigError naming what is missing."""
    have = columns(path, what)
    for layout in layouts:
        if all(c in have for c in layout):
            return layout
    want = " or ".join("(" + ", ".join(layout) + ")" for layout in layouts)
    missing = [c for c in layouts[0] if c not in have]
    raise ConfigError(f"{what}={path} lacks column(s) {', '.join(missing)}: needs {want}; has {', '.join(have) or 'none'}")


def load_rows(path: str, what: str = "task.data_path") -> list[dict]:
    kind, files = _resolve(path, what)
    import datasets
    try:
        if kind == "disk":
            ds = datasets.load_from_disk(files[0])
        else:
            ds = datasets.load_dataset(kind, data_files=files, split="train")
    except Exception as e:  # noqa: BLE001 - surface any loader failure as one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(f"{what}={path}: cannot load: {type(e).__name__}: {first}") from None
    return ds.to_list()


def train_and_heldout(cfg, to_item, key: str = "prompt") -> tuple[list[dict], list[dict]]:
    """Items from ``cfg.data_path`` (and ``cfg.heldout_path``): ``to_item(row, where)`` turns one
    row into an item, ``where`` naming the row for error messages.

    Held-out: the first ``heldout_size`` items of ``heldout_path``, or else the last
    ``heldout_size`` rows of ``data_path`` (deterministic). Training items whose ``key``
    repeats a held-out one are dropped, so training never sees a held-out problem."""
    def parse(path: str, what: str) -> list[dict]:
        return [to_item(row, f"{what}={path} row {i}") for i, row in enumerate(load_rows(path, what))]

    items = parse(cfg.data_path, "task.data_path")
    if cfg.heldout_path:
        heldout, train = parse(cfg.heldout_path, "task.heldout_path")[:cfg.heldout_size], items
    else:
        if len(items) <= cfg.heldout_size:
            raise ConfigError(f"task.data_path={cfg.data_path} has {len(items)} rows, too few to hold out the "
                              f"last task.heldout_size={cfg.heldout_size}; lower it or set task.heldout_path")
        heldout, train = items[-cfg.heldout_size:], items[:-cfg.heldout_size]
    seen = {item[key] for item in heldout}
    train = [item for item in train if item[key] not in seen]
    if not train or not heldout:
        raise ConfigError(f"task.data_path={cfg.data_path}: no {'training' if not train else 'held-out'} items")
    return train, heldout


def check_paths(cfg, layouts: list[tuple[str, ...]]) -> None:
    """Config-time check of ``task.data_path``/``task.heldout_path``: they exist and have the columns."""
    if not cfg.data_path:
        if cfg.heldout_path:
            raise ConfigError(f"task.heldout_path is set but task.data_path is empty; task.kind={cfg.kind} "
                              "takes its held-out split from the same source as its training data")
    for what, path in (("task.data_path", cfg.data_path), ("task.heldout_path", cfg.heldout_path)):
        if path:
            require_columns(path, layouts, what)
