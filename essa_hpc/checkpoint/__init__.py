"""HDF5 checkpoints: atomic, checksummed, the last k kept, verified on load.

A checkpoint is a nested dict of arrays, scalars and strings (no pickles). The
HDF5 file is built in memory (h5py's core driver) and its bytes are written to a
temp file in the same directory with plain file I/O, fsynced, ``os.replace``d over
the final name, and the directory is fsynced. Overwriting in place was seen to
leave an unreadable file and lose the old state, and h5py segfaulted when the disk
filled up inside its own writes; plain writes fail with one ``OSError`` instead,
which becomes a one-line ``CheckpointWriteError`` while the previous checkpoint
stays intact. The cost is one in-memory copy of the checkpoint while it is written.

Attributes hold the config (JSON), format and package versions, the generation, the
list of string keys, and a SHA-256 over every dataset *and* every other attribute
(format 2), which ``load`` checks: a flipped bit anywhere either leaves the content
identical or is rejected. Format-1 files (datasets only checksummed) still load.

On NFS/Lustre, HDF5 file locking may need ``HDF5_USE_FILE_LOCKING=FALSE``.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path

import h5py
import numpy as np

import essa_hpc

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: the checksum covered the datasets only
_ATTRS = ("config", "format_version", "package_version", "generation", "string_keys")
_NAME = re.compile(r"^ckpt_(\d{6,})\.h5$")
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (disk full, I/O error); the message is one line."""


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


def _digest(flat: dict[str, np.ndarray], attrs: dict | None = None) -> str:
    h = hashlib.sha256()
    for key in sorted(flat):
        arr = np.ascontiguousarray(flat[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    for key in sorted(attrs or {}):
        value = attrs[key]
        text = str(int(value)) if isinstance(value, (int, np.integer)) else str(value)
        h.update(f"attr:{key}|{len(text)}|{text}|".encode())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_path(ckpt_dir: Path, generation: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{generation:06d}.h5"


def file_image(generation: int, state: dict, config: dict) -> bytes:
    """The complete HDF5 file of a checkpoint, built in memory."""
    flat = _flatten(state)
    strings = sorted(k for k, v in flat.items() if isinstance(v, str))
    arrays = {k: _to_array(v) for k, v in flat.items()}
    attrs = {"config": json.dumps(config, sort_keys=True), "format_version": FORMAT_VERSION,
             "package_version": essa_hpc.__version__, "generation": int(generation),
             "string_keys": json.dumps(strings)}
    with h5py.File(f"essa-ckpt-{generation}.h5", "w", driver="core", backing_store=False) as f:
        for key, arr in arrays.items():
            f.create_dataset(key, data=arr)
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["sha256"] = _digest(arrays, attrs)
        f.flush()
        return f.id.get_file_image()


def write_file(path: Path, image: bytes) -> None:
    """Write ``image`` to ``path`` and fsync it (a temp file; ``save`` renames it into place)."""
    with open(path, "wb") as fh:
        fh.write(image)
        fh.flush()
        os.fsync(fh.fileno())


def save(ckpt_dir: str | Path, generation: int, state: dict, config: dict, keep: int) -> Path:
    ckpt_dir = Path(ckpt_dir)
    final = checkpoint_path(ckpt_dir, generation)
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    image = file_image(generation, state, config)
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_file(tmp, image)
        os.replace(tmp, final)
        _fsync_dir(ckpt_dir)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        previous = list_checkpoints(ckpt_dir)
        kept = f"the previous checkpoint {previous[-1].name} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointWriteError(f"checkpoint write failed: {exc.strerror or exc} on {ckpt_dir}; {kept}") from None
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def load(path: str | Path) -> dict:
    """Return {'generation', 'config', 'state', 'path'}; raise CheckpointError if unreadable or corrupt."""
    return _read(Path(path), path)


def load_image(image: bytes, where: str) -> dict:
    """``load`` of a checkpoint file held in memory (``file_image``'s bytes); ``where`` names it in errors."""
    return _read(io.BytesIO(image), where)


def _read(source, path) -> dict:
    try:
        with h5py.File(source, "r") as f:
            version = int(f.attrs["format_version"])
            if version not in READABLE_FORMATS:
                raise CheckpointError(f"{path}: format version {version} is not one of {READABLE_FORMATS} "
                                      f"(written by another essa-hpc version?)")
            if set(f.attrs.keys()) != {*_ATTRS, "sha256"}:
                raise CheckpointError(f"{path}: unexpected attributes {sorted(f.attrs.keys())}")
            arrays: dict[str, np.ndarray] = {}
            f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
            attrs = {k: f.attrs[k] for k in _ATTRS} if version >= 2 else None
            if _digest({k: np.asarray(v) for k, v in arrays.items()}, attrs) != f.attrs["sha256"]:
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


def generation_of(path: Path) -> int:
    """The generation in a checkpoint's file name (``ckpt_000012.h5`` -> 12)."""
    return int(_NAME.match(Path(path).name).group(1))


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
