"""Checkpoints: `save(module, path)` / `load(module, path)` as .npz files.

Files are written atomically (a temporary file in the same folder, fsync, then `os.replace`), so
a crash or kill mid-write leaves the previous file intact. They are read with allow_pickle=False
and carry a format version and the model's config as JSON. `load` validates every key and shape
before touching the module, so a bad file leaves every parameter unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_META = "__tinybin_meta__"


def _atomic_write(path: str | os.PathLike, suffix: str, mode: str, write) -> None:
    """write(fh) into a temp file next to `path`, fsync, then rename over `path`; on any error the
    temp file is removed and `path` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temp file next to `path`, fsync, then rename over `path`."""
    _atomic_write(path, ".npz", "wb", lambda fh: np.savez(fh, **arrays))


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomic JSON write (result files, training history)."""
    _atomic_write(path, ".json", "w", lambda fh: json.dump(obj, fh, indent=1, sort_keys=True))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an .npz (allow_pickle=False); corrupt files raise ValueError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a readable tinybin .npz file ({type(e).__name__}: {e})") from None


def meta_array(kind: str, config: dict | None, extra: dict | None = None) -> np.ndarray:
    meta = {"format": "tinybin", "kind": kind, "version": FORMAT_VERSION, "config": config or {}}
    meta.update(extra or {})
    return np.array(json.dumps(meta))


def read_meta(arrays: dict[str, np.ndarray], path: str, kind: str) -> dict[str, Any]:
    if _META not in arrays:
        raise ValueError(f"{path}: not a tinybin file (no metadata entry)")
    try:
        meta = json.loads(str(arrays[_META]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt metadata ({e})") from None
    if meta.get("kind") != kind:
        raise ValueError(f"{path}: holds a {meta.get('kind')!r}, expected a {kind!r}")
    if int(meta.get("version", -1)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta.get('version')} is newer than this "
                         f"tinybin ({FORMAT_VERSION})")
    return meta


def save(module, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None,
         meta: dict | None = None) -> None:
    """Write the module's state dict (and optional extra arrays, e.g. optimizer state) atomically."""
    arrays = {f"state/{k}": v for k, v in module.state_dict().items()}
    for k, v in (extra or {}).items():
        arrays[f"extra/{k}"] = np.asarray(v)
    arrays[_META] = meta_array("checkpoint", getattr(module, "config", None), meta)
    atomic_savez(path, arrays)


def load(module, path: str | os.PathLike, strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by `save` into `module`; returns {'meta': ..., 'extra': {...}}.

    Raises ValueError (module untouched) for a missing, truncated or corrupt file, a file for a
    different network config, missing or unexpected keys, or wrong shapes.
    """
    path = os.fspath(path)
    arrays = read_npz(path)
    meta = read_meta(arrays, path, "checkpoint")
    cfg = getattr(module, "config", None)
    if cfg is not None and meta.get("config") and meta["config"] != json.loads(json.dumps(cfg)):
        diff = {k: (meta["config"].get(k), cfg.get(k)) for k in set(cfg) | set(meta["config"])
                if meta["config"].get(k) != cfg.get(k)}
        raise ValueError(f"{path}: checkpoint is for a different network; config differs in "
                         f"{{key: (file, module)}} = {diff}")
    state = {k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")}
    try:
        module.load_state_dict(state, strict=strict)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return {"meta": meta, "extra": extra}
