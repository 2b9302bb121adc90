"""Checkpoints: `save(module, path)` / `load(module, path)` as .npz files, read defensively.

Writing. Files are written atomically (a temporary file `.tmp-NAME-PID-*` in the same folder,
fsync, then `os.replace`), so a crash or kill mid-write leaves the previous file intact; temporary
files left by a killed writer (its PID no longer alive) are removed by the next write to the same
path. The new file gets the mode a plain `open()` would give it (0666 minus the umask). When `path`
is a symlink the write goes through it: the file it points to is replaced, the link stays.
`save` refuses (ValueError, nothing written) anything `load` would refuse: non-finite values,
float64 values outside the float32 range, a negative BatchNorm `running_var`, metadata that is not
plain finite JSON.

Reading. Nothing is allocated before it is checked. `NpzReader` reads the zip directory and every
member's .npy header (shape, dtype) without reading data; a header whose declared size disagrees
with the member's size, an object dtype, or more data than the caller's cap is refused before
any array is read. Entries are read with allow_pickle semantics off (no object arrays at all).
Files carry a format version and the model's config as JSON; metadata must be a JSON object of
limited size and nesting with an integer `version`. Every problem raises ValueError naming the file.

Networks built from a file (`load_network`, `tinybin.packed.load`) have their config checked
first against `LIMITS` and against a size estimate (`estimate_size`: parameters and activations
per image, computed from the config without building anything); the estimate must also be
consistent with the number of values the file actually holds, so a small file cannot make the
loader build a large network.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_META = "__tinybin_meta__"

# Documented limits for a network built from a file (HourGlass config keys).
LIMITS = {"num_landmarks": 1024, "width": 2048, "depth": 12, "stacks": 16, "resolution": 4096}
MAX_PARAMETERS = 100_000_000        # 400 MB of float32 weights (the paper's largest: 27M)
MAX_ACTIVATIONS = 2 ** 30           # floats per image, summed over the forward pass (estimate)
MAX_META_BYTES = 1 << 20            # the JSON metadata entry
MAX_JSON_DEPTH = 32
MAX_COMPRESSION = 32                # uncompressed / compressed size of one zip member
_F32_MAX = float(np.finfo(np.float32).max)


# What zipfile and the .npy header parser raise for damaged input (struct.error, TokenError,
# NotImplementedError for odd zip versions, ...): every Exception except MemoryError, which a
# reader that checks sizes first must never see.
def _as_damaged(e: BaseException) -> bool:
    return isinstance(e, Exception) and not isinstance(e, MemoryError)

# ---- writing ---------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_temps(folder: str, prefix: str) -> None:
    """Remove `prefix<pid>-*` temp files whose writer process is gone (killed mid-write)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _atomic_write(path: str | os.PathLike, suffix: str, mode: str, write) -> None:
    """write(fh) into a temp file next to `path`, fsync, then rename over `path`; on any error the
    temp file is removed and `path` is untouched. A symlink `path` is written through."""
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, cannot write a file there")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{path}: {folder} is not a directory")
    os.makedirs(folder, exist_ok=True)
    prefix = f".tmp-{os.path.basename(path)[:80]}-"
    _clean_stale_temps(folder, prefix)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


def json_safe(obj):
    """A copy of `obj` with NaN/Inf floats replaced by None (JSON has no NaN) and NumPy scalars
    and arrays turned into plain Python values."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomic JSON write (result files, training history); NaN/Inf are written as null."""
    text = json.dumps(json_safe(obj), indent=1, sort_keys=True, allow_nan=False)
    _atomic_write(path, ".json", "w", lambda fh: fh.write(text))


# ---- reading: zip members and their .npy headers -----------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One array of an .npz as declared by its .npy header (nothing read yet)."""
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int          # bytes of .npy header before the data
    nbytes: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class NpzReader:
    """Lazy, validating reader of an .npz file: headers first, data on request.

        with NpzReader(path) as z:
            z.entries["state/w"].shape      # from the header, no data read
            w = z.read("state/w")

    Refuses (ValueError) a file that is not a zip, a member that is not an .npy, object or
    structured dtypes, a header whose declared size differs from the member's size, duplicate
    names, members compressed more than MAX_COMPRESSION times (zip bombs).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise ValueError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path}: is a directory, not a tinybin .npz file")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except Exception as e:
            if not _as_damaged(e):
                raise
            raise ValueError(self._not_npz(e)) from None
        try:
            self.entries: dict[str, Entry] = {}
            self._infos: dict[str, zipfile.ZipInfo] = {}
            for info in self._zip.infolist():
                self._add(info)
        except BaseException:
            self._zip.close()
            raise

    def _not_npz(self, e) -> str:
        hint = ""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(64)
            if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
                hint = " (it looks like a text file)"
        except OSError:
            pass
        return f"{self.path}: not a readable tinybin .npz file{hint} ({type(e).__name__}: {e})"

    def _add(self, info: zipfile.ZipInfo) -> None:
        p = self.path
        if not info.filename.endswith(".npy"):
            raise ValueError(f"{p}: member {info.filename!r} is not an .npy array")
        name = info.filename[:-4]
        if name in self.entries:
            raise ValueError(f"{p}: entry {name!r} appears twice")
        if info.compress_type != zipfile.ZIP_STORED and \
                info.file_size > MAX_COMPRESSION * info.compress_size + (1 << 16):
            raise ValueError(f"{p}: entry {name!r} expands {info.file_size} bytes from "
                             f"{info.compress_size} (compression bomb?)")
        try:
            with self._zip.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                offset = fh.tell()
        except Exception as e:
            if not _as_damaged(e):
                raise
            raise ValueError(f"{p}: entry {name!r} has a bad .npy header ({type(e).__name__}: {e})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in "biufU" or dtype.itemsize == 0:
            raise ValueError(f"{p}: entry {name!r} has dtype {dtype}, not a plain numeric array")
        if not isinstance(shape, tuple) or any(not isinstance(s, int) or s < 0 for s in shape) \
                or len(shape) > 8:
            raise ValueError(f"{p}: entry {name!r} declares shape {shape!r}")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise ValueError(f"{p}: entry {name!r} declares shape {shape} of {dtype} ({nbytes} bytes) "
                             f"but holds {info.file_size - offset} bytes (corrupt or hostile file)")
        self.entries[name] = Entry(name, tuple(shape), dtype, bool(fortran), offset, nbytes)
        self._infos[name] = info

    def total_bytes(self, names=None) -> int:
        return sum(self.entries[n].nbytes for n in (self.entries if names is None else names))

    def check_cap(self, cap: int, what: str) -> None:
        """ValueError when the declared data exceeds `cap` bytes (before reading any of it)."""
        total = self.total_bytes()
        if total > cap:
            raise ValueError(f"{self.path}: declares {total:,} bytes of arrays, more than {cap:,} "
                             f"that {what} can need (corrupt or hostile file)")

    def read(self, name: str) -> np.ndarray:
        """Read one entry (its declared size was checked when the file was opened)."""
        e = self.entries.get(name)
        if e is None:
            raise ValueError(f"{self.path}: missing array {name!r}")
        arr = np.empty(e.shape[::-1] if e.fortran else e.shape, e.dtype)
        buf = arr.reshape(-1).view(np.uint8)
        try:
            with self._zip.open(self._infos[name]) as fh:
                fh.read(e.offset)
                got = 0
                while got < e.nbytes:
                    n = fh.readinto(memoryview(buf[got:]))
                    if not n:
                        break
                    got += n
                if got != e.nbytes or fh.read(1):  # the read to EOF also checks the CRC
                    raise ValueError(f"size mismatch ({got} of {e.nbytes} bytes)")
        except Exception as err:
            if not _as_damaged(err):
                raise
            raise ValueError(f"{self.path}: entry {name!r} is unreadable ({type(err).__name__}: {err})") from None
        if e.fortran:
            arr = arr.T
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr

    def read_all(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {k: self.read(k) for k in self.entries if k.startswith(prefix)}

    def close(self) -> None:
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_npz(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read every array of an .npz after checking its headers (and `max_bytes`, if given)."""
    with NpzReader(path) as z:
        if max_bytes is not None:
            z.check_cap(max_bytes, "the caller")
        return z.read_all()


# ---- metadata ---------------------------------------------------------------------------------

def _json_depth(obj) -> int:
    depth, level = 0, [obj]
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return depth
        nxt = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        level = nxt
    return depth


def _refuse_constant(c):
    raise ValueError(f"non-finite number {c} in JSON")


def parse_json(text: str, what: str):
    """json.loads that refuses NaN/Infinity and nesting deeper than MAX_JSON_DEPTH with ValueError."""
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply") from None
    except (json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{what}: corrupt JSON ({e})") from None
    if _json_depth(obj) > MAX_JSON_DEPTH:
        raise ValueError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def meta_array(kind: str, config: dict | None, extra: dict | None = None) -> np.ndarray:
    """The metadata entry: a 0-d unicode array holding JSON. Refuses non-finite numbers and
    values JSON cannot hold (ValueError)."""
    meta = {"format": "tinybin", "kind": kind, "version": FORMAT_VERSION, "config": config or {}}
    meta.update(extra or {})
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata cannot be stored as JSON ({e})") from None
    check_meta(parse_json(text, "metadata"), "metadata", kind)
    if len(text) * 4 > MAX_META_BYTES:
        raise ValueError(f"metadata is {len(text)} characters, more than a file may hold")
    return np.array(text)


def check_meta(meta, where: str, kind: str) -> dict[str, Any]:
    """Check the structure of a parsed metadata object; return it."""
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: metadata is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format", "tinybin") != "tinybin":
        raise ValueError(f"{where}: not a tinybin file (format {meta.get('format')!r})")
    if meta.get("kind") != kind:
        raise ValueError(f"{where}: holds a {meta.get('kind')!r}, expected a {kind!r}")
    v = meta.get("version")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{where}: metadata version must be a positive integer, got {v!r}")
    if v > FORMAT_VERSION:
        raise ValueError(f"{where}: format version {v} is newer than this tinybin ({FORMAT_VERSION})")
    if not isinstance(meta.get("config", {}), dict):
        raise ValueError(f"{where}: config is a JSON {type(meta['config']).__name__}, expected an object")
    meta.setdefault("config", {})
    return meta


def read_meta(arrays, path: str, kind: str) -> dict[str, Any]:
    """Parse and check the metadata of an opened file (`NpzReader` or a dict of arrays)."""
    if isinstance(arrays, NpzReader):
        e = arrays.entries.get(_META)
        if e is None:
            raise ValueError(f"{path}: not a tinybin file (no metadata entry)")
        if e.dtype.kind != "U" or e.shape != () or e.nbytes > MAX_META_BYTES:
            raise ValueError(f"{path}: metadata entry must be one string of at most "
                             f"{MAX_META_BYTES // 4} characters, got {e.dtype} {e.shape}")
        raw = arrays.read(_META)
    else:
        if _META not in arrays:
            raise ValueError(f"{path}: not a tinybin file (no metadata entry)")
        raw = np.asarray(arrays[_META])
        if raw.dtype.kind != "U" or raw.shape != ():
            raise ValueError(f"{path}: metadata entry must be one string, got {raw.dtype} {raw.shape}")
    return check_meta(parse_json(str(raw), f"{path}: metadata"), path, kind)


# ---- values ----------------------------------------------------------------------------------

def check_values(name: str, v: np.ndarray) -> None:
    """ValueError unless a float array is finite and float32-representable; `running_var` >= 0."""
    if v.dtype.kind != "f":
        return
    if v.size and not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or Inf")
    if v.dtype.itemsize > 4 and v.size and np.abs(v).max() > _F32_MAX:
        raise ValueError(f"{name} holds values beyond the float32 range (|v| <= {_F32_MAX:.3g})")
    if name.endswith("running_var") and v.size and v.min() < 0:
        raise ValueError(f"{name} (a BatchNorm variance) has negative values")


# ---- network configs: limits and size estimate -------------------------------------------------

def estimate_size(config: dict) -> tuple[int, int]:
    """(parameters, activations per image) of an HourGlass config, without building it.

    An upper-bound estimate: every block B(in -> F) is counted as 9*in*Fm + 9*Fm^2 + 2*in*F
    weights (Fm = F * max(1, mid_ratio): a 3x3 reading the input, 3x3s among the branch widths,
    1x1s and the projection shortcut) plus BatchNorm; the stem,
    heads and inter-stack projections exactly. Activations: the stem maps plus ~12 F-channel maps
    at R/4 per block (the 2x2 poolings only shrink them), per stack. tests/test_robustness.py
    checks actual <= estimate <= 16 * actual over all blocks and options.
    """
    F, D, S = int(config["width"]), int(config["depth"]), int(config["stacks"])
    L, R = int(config["num_landmarks"]), int(config["resolution"])
    opts = config.get("block_opts") or {}
    m = max(1.0, float(opts.get("mid_ratio", 1.0)))
    improved = bool(config.get("improved", False))
    Fm = F * m

    def block(cin: int) -> float:
        return 9 * cin * Fm + 9 * Fm * Fm + 2 * cin * F + 8 * (cin + 3 * Fm)

    stem = 3 * 49 * F / 4 + F + 4 * F / 4 + block(F / 4) + block(F / 2) + block(F / 2)
    cin = 2 * F if improved else F
    per_stack = D * (block(F) * 2 + block(cin)) + block(F) + block(cin) \
        + F * F + 4 * F + F * L + L + L * F + F + F * F + F
    params = stem + S * per_stack
    n_blocks = 3 + S * (3 * D + 2)
    acts = (R / 2) ** 2 * F / 4 * 3 + (R / 4) ** 2 * (12 * Fm * n_blocks + 4 * (F + L) * S)
    return int(params), int(acts)


_CONFIG_KEYS = {"num_landmarks", "block", "binary", "width", "depth", "stacks", "improved", "pool",
                "relu_after_conv", "resolution", "block_opts", "feature_proj", "scale", "prelu"}  # scale / prelu: beyond the paper


def check_config(config, where: str, declared_values: int | None = None) -> dict:
    """Check an HourGlass config read from a file before anything is built.

    Types and `LIMITS`, then `estimate_size` against MAX_PARAMETERS / MAX_ACTIVATIONS and, when
    `declared_values` (numbers the file holds: floats + 64 per packed word) is given, against it:
    a config describing a network 16x larger than its file is refused.
    """
    if not isinstance(config, dict):
        raise ValueError(f"{where}: config must be a JSON object")
    unknown = sorted(set(config) - _CONFIG_KEYS)
    missing = sorted({"num_landmarks", "width", "depth", "stacks", "resolution"} - set(config))
    if unknown or missing:
        raise ValueError(f"{where}: config has unknown keys {unknown} / lacks {missing}")
    for k, hi in LIMITS.items():
        v = config[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"{where}: config {k}={v!r} is outside the limits [1, {hi}]")
    opts = config.get("block_opts")
    if opts is not None:
        if not isinstance(opts, dict):
            raise ValueError(f"{where}: config block_opts must be an object or null")
        for k, v in opts.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 64:
                raise ValueError(f"{where}: config block_opts {k}={v!r} is outside (0, 64]")
    params, acts = estimate_size(config)
    if params > MAX_PARAMETERS:
        raise ValueError(f"{where}: config describes a network of ~{params:,} parameters "
                         f"(limit {MAX_PARAMETERS:,})")
    if acts > MAX_ACTIVATIONS:
        raise ValueError(f"{where}: config needs ~{acts:,} activations per image "
                         f"(limit {MAX_ACTIVATIONS:,})")
    if declared_values is not None and params > 16 * declared_values + 4096:
        raise ValueError(f"{where}: config describes a network of ~{params:,} parameters but the "
                         f"file holds only {declared_values:,} values (corrupt or hostile file)")
    return config


# ---- checkpoints ------------------------------------------------------------------------------

def save(module, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None,
         meta: dict | None = None) -> None:
    """Write the module's state dict (and optional extra arrays, e.g. optimizer state) atomically.

    Raises ValueError (nothing written) for values `load` would refuse: NaN/Inf, float64 values
    outside the float32 range, negative BatchNorm variances, non-JSON or non-finite metadata."""
    arrays = {f"state/{k}": np.asarray(v) for k, v in module.state_dict().items()}
    for k, v in (extra or {}).items():
        arrays[f"extra/{k}"] = np.asarray(v)
    for k, v in arrays.items():
        if v.dtype.hasobject:
            raise ValueError(f"save: {k} is an object array; only numeric arrays can be stored")
        try:
            check_values(k, v)
        except ValueError as e:
            raise ValueError(f"save {os.fspath(path)}: refusing to write, {e}") from None
    arrays[_META] = meta_array("checkpoint", getattr(module, "config", None), meta)
    atomic_savez(path, arrays)


def _load_checked(module, z: NpzReader, strict: bool) -> dict[str, Any]:
    path = z.path
    meta = read_meta(z, path, "checkpoint")
    cfg = getattr(module, "config", None)
    if cfg is not None and meta["config"] and meta["config"] != json.loads(json.dumps(cfg)):
        diff = {k: (meta["config"].get(k), cfg.get(k)) for k in set(cfg) | set(meta["config"])
                if meta["config"].get(k) != cfg.get(k)}
        raise ValueError(f"{path}: checkpoint is for a different network; config differs in "
                         f"{{key: (file, module)}} = {diff}")
    expected = {**{k: v.data for k, v in module.named_parameters()}, **dict(module.named_buffers())}
    state_names = [k for k in z.entries if k.startswith("state/")]
    for k in state_names:
        e, want = z.entries[k], expected.get(k[len("state/"):])
        if want is not None and e.shape != want.shape:
            raise ValueError(f"{path}: state dict: {k[6:]} has shape {e.shape}, the module expects {want.shape}")
        if e.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path}: state dict: {k[6:]} has dtype {e.dtype}, expected float32 (or float64)")
    state_bytes = sum(v.nbytes for v in expected.values())
    z.check_cap(8 * state_bytes + (64 << 20), "this module's checkpoint")
    state = {k[len("state/"):]: z.read(k) for k in state_names}
    extra = {k[len("extra/"):]: z.read(k) for k in z.entries if k.startswith("extra/")}
    for name, d in (("state/", state), ("extra/", extra)):
        for k, v in d.items():
            check_values(f"{path}: {name}{k}", v)
    try:
        module.load_state_dict(state, strict=strict)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return {"meta": meta, "extra": extra}


def load(module, path: str | os.PathLike, strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by `save` into `module`; returns {'meta': ..., 'extra': {...}}.

    Raises ValueError (module untouched) for a missing, truncated or corrupt file, a file for a
    different network config, missing or unexpected keys, wrong shapes or dtypes, non-finite or
    out-of-float32-range values, negative BatchNorm variances, or more data than the module's
    checkpoint can hold (checked from the headers before reading).
    """
    with NpzReader(path) as z:
        return _load_checked(module, z, strict)


def read_config(path: str | os.PathLike, kind: str = "checkpoint") -> dict:
    """The checked network config of a file, from its headers and metadata only (no weights
    read, nothing built): limits, size estimate, and consistency with the values the file holds."""
    path = os.fspath(path)
    with NpzReader(path) as z:
        meta = read_meta(z, path, kind)
        declared = sum(e.size * (64 if e.dtype == np.uint64 else 1) for n, e in z.entries.items()
                       if n != _META and e.dtype.kind != "U")
        return check_config(meta["config"], path, declared)


def load_network(path: str | os.PathLike, build=None):
    """Build the network a checkpoint was saved from (`HourGlass.from_config` unless `build` is
    given) and load its weights. The config is checked (`read_config`) before building."""
    path = os.fspath(path)
    config = read_config(path, "checkpoint")
    if build is None:
        from .models import HourGlass
        build = HourGlass.from_config
    try:
        net = build(config)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: cannot rebuild the network from its config ({e})") from None
    load(net, path)
    return net
