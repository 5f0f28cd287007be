"""HDF5 checkpoints: atomic, checksummed, the last k kept, verified on load.

A checkpoint is a nested dict of arrays, scalars and strings (no pickles). The
write goes to a temp file in the same directory, is fsynced, ``os.replace``d over
the final name and the directory is fsynced: overwriting in place was seen to
leave an unreadable file and lose the old state (DESIGN.md). Attributes hold the
config (JSON), format and package versions, the generation and a SHA-256 of
every dataset, which ``load`` checks.

On NFS/Lustre, HDF5 file locking may need ``HDF5_USE_FILE_LOCKING=FALSE``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path

import h5py
import numpy as np

import essa_hpc

FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt_(\d{6,})\.h5$")
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _to_array(value) -> np.ndarray:
    if isinstance(value, str):
        return np.frombuffer(value.encode(), dtype=np.uint8)
    return np.asarray(value)


def _digest(flat: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(flat):
        arr = np.ascontiguousarray(flat[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_path(ckpt_dir: Path, generation: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{generation:06d}.h5"


def save(ckpt_dir: str | Path, generation: int, state: dict, config: dict, keep: int) -> Path:
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(ckpt_dir, generation)
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    flat = _flatten(state)
    strings = sorted(k for k, v in flat.items() if isinstance(v, str))
    arrays = {k: _to_array(v) for k, v in flat.items()}
    with h5py.File(tmp, "w") as f:
        for key, arr in arrays.items():
            f.create_dataset(key, data=arr)
        f.attrs["config"] = json.dumps(config, sort_keys=True)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["package_version"] = essa_hpc.__version__
        f.attrs["generation"] = generation
        f.attrs["string_keys"] = json.dumps(strings)
        f.attrs["sha256"] = _digest(arrays)
        slow = float(os.environ.get("ESSA_TEST_SLOW_CKPT_S", "0"))  # test hook: widen the kill window
        if slow:
            f.flush()
            time.sleep(slow)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(ckpt_dir)
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def load(path: str | Path) -> dict:
    """Return {'generation', 'config', 'state'}; raise CheckpointError if unreadable or corrupt."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs["format_version"]) != FORMAT_VERSION:
                raise CheckpointError(f"{path}: format version {f.attrs['format_version']} != {FORMAT_VERSION}")
            arrays: dict[str, np.ndarray] = {}
            f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
            if _digest({k: np.asarray(v) for k, v in arrays.items()}) != f.attrs["sha256"]:
                raise CheckpointError(f"{path}: checksum mismatch")
            strings = set(json.loads(f.attrs["string_keys"]))
            config = json.loads(f.attrs["config"])
            generation = int(f.attrs["generation"])
    except CheckpointError:
        raise
    except Exception as exc:  # truncated or garbage files surface as many h5py/OS errors
        raise CheckpointError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    state: dict = {}
    for key, value in arrays.items():
        if key in strings:
            value = bytes(np.asarray(value, dtype=np.uint8)).decode()
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        node = state
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return {"generation": generation, "config": config, "state": state, "path": path}


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """Checkpoints oldest first (by generation)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_valid(ckpt_dir: str | Path) -> dict | None:
    """The newest checkpoint that loads and verifies; broken ones are skipped with a warning."""
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return load(path)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
    return None
