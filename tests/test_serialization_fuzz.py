"""Fuzzing the loaders: hostile edits of valid checkpoint and packed files.

Hypothesis mutates a valid file -- raw bytes (flips, truncation, insertion), whole entries (dropped,
added, retyped, reshaped, poisoned with NaN/Inf/1e300/negative variances, huge declared headers),
packed index cells, and the metadata JSON (hostile values for every config key, other kinds,
versions, unit lists, random JSON, deep nesting) -- and asserts that each load either returns a
network whose outputs equal the original's bit for bit, or raises ValueError. Loads run in one
worker subprocess under an address-space limit (RLIMIT_AS: its size after warm-up + 768 MiB), so a
file that makes the loader allocate too much shows up as a MemoryError or a dead worker, and fails.

HYPOTHESIS_PROFILE=thorough runs 500 examples per family instead of the default few dozen.
"""
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinybin as tb
from tinybin import packed

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux")

N_EXAMPLES = 500 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 40
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, derandomize=N_EXAMPLES < 500,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

WORKER = r"""
import hashlib, json, resource, sys, traceback
import numpy as np
import tinybin as tb
from tinybin import packed, serialization as S

x = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)

def run(kind, path):
    if kind == "packed":
        y = packed.load(path)(x)
    else:
        net = S.load_network(path)
        net.eval()
        with tb.no_grad():
            y = net(tb.Tensor(x)).data
    return hashlib.sha256(np.ascontiguousarray(y, np.float32).tobytes()).hexdigest()

for kind, path in (("packed", sys.argv[1]), ("checkpoint", sys.argv[2])):  # warm up (Numba, imports)
    run(kind, path)
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
limit = vm + (768 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
print(json.dumps({"ready": True, "limit": limit}), flush=True)
for line in sys.stdin:
    kind, path = line.rstrip("\n").split(" ", 1)
    try:
        out = {"ok": run(kind, path)}
    except ValueError as e:
        out = {"error": "ValueError", "msg": str(e)[:300]}
    except BaseException as e:
        out = {"error": type(e).__name__, "msg": traceback.format_exc()[-1500:]}
    print(json.dumps(out), flush=True)
"""


def tiny_net(seed=0):
    net = tb.HourGlass(num_landmarks=3, block="hpm", binary=True, width=16, depth=1, resolution=16, seed=seed)
    rng = np.random.default_rng(seed)
    for m in net.modules():
        if isinstance(m, tb.nn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features) * 0.3
            m.running_var[...] = rng.random(m.num_features) + 0.5
    return net


class Worker:
    def __init__(self, d):
        net = tiny_net(1)
        self.files = {"checkpoint": str(d / "ck.npz"), "packed": str(d / "p.npz")}
        tb.save(net, self.files["checkpoint"])
        p = packed.pack(net)
        p.save(self.files["packed"])
        x = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
        net.eval()
        with tb.no_grad():
            y = net(tb.Tensor(x)).data
        self.expect = {"packed": hashlib.sha256(p(x).tobytes()).hexdigest(),
                       "checkpoint": hashlib.sha256(y.tobytes()).hexdigest()}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, self.files["packed"], self.files["checkpoint"]],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "TQDM_DISABLE": "1"})
        first = self.proc.stdout.readline()
        assert first, "fuzz worker failed to start"
        self.limit = json.loads(first)["limit"]
        self.dir = d
        self.n = 0

    def load(self, kind, data: bytes) -> dict:
        self.n += 1
        path = self.dir / f"m{self.n % 4}.npz"
        path.write_bytes(data)
        self.proc.stdin.write(f"{kind} {path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the fuzz worker died (limit {self.limit >> 20} MiB) on a mutated {kind} file"
        return json.loads(line)

    def check(self, kind, data: bytes, what: str):
        r = self.load(kind, data)
        if "ok" in r:
            assert r["ok"] == self.expect[kind], f"{what}: loaded a {kind} whose outputs differ"
        else:
            assert r["error"] == "ValueError", f"{what}: {r['error']}\n{r['msg']}"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.close()


kinds = st.sampled_from(["checkpoint", "packed"])


def arrays_of(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# ---- raw bytes -----------------------------------------------------------------------------------

@FUZZ
@given(kind=kinds, data=st.data())
def test_byte_mutations_load_equal_or_raise_value_error(worker, kind, data):
    raw = bytearray(open(worker.files[kind], "rb").read())
    op = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "tail"]))
    pos = data.draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "set":  # a run of bytes set to one value (0xff makes big sizes in zip/npy headers)
        n = data.draw(st.integers(1, 8))
        raw[pos:pos + n] = bytes([data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x39]))]) * len(raw[pos:pos + n])
    elif op == "truncate":
        raw = raw[:pos]
    elif op == "insert":
        raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    elif op == "delete":
        del raw[pos:pos + data.draw(st.integers(1, 16))]
    else:  # the zip directory lives at the end: hit it harder
        i = len(raw) - 1 - data.draw(st.integers(0, min(600, len(raw) - 1)))
        raw[i] = data.draw(st.integers(0, 255))
    worker.check(kind, bytes(raw), op)


# ---- entries --------------------------------------------------------------------------------------

def huge_header_member(name: str, shape) -> tuple[str, bytes]:
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    return name + ".npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 64


@FUZZ
@given(kind=kinds, data=st.data())
def test_entry_mutations_load_equal_or_raise_value_error(worker, kind, data):
    arrays = arrays_of(worker.files[kind])
    names = sorted(arrays)
    name = data.draw(st.sampled_from(names))
    op = data.draw(st.sampled_from(["drop", "add", "dtype", "reshape", "empty", "poison", "huge", "rename"]))
    v = arrays[name]
    if op == "drop":
        del arrays[name]
    elif op == "add":
        arrays[data.draw(st.sampled_from(["state/x", "float/x", "packed/x", "extra/x", "x"]))] = \
            np.zeros(data.draw(st.integers(0, 5)), np.float32)
    elif op == "dtype":
        dt = data.draw(st.sampled_from(["f2", "f8", "i4", "i8", "u8", "u1", "bool", "c8"]))
        if v.dtype.kind != "U":
            arrays[name] = v.astype(dt)
    elif op == "reshape":
        arrays[name] = v.reshape(data.draw(st.sampled_from([(-1,), (1, -1), (-1, 1)])))
    elif op == "empty":
        arrays[name] = np.zeros((0,) * max(1, v.ndim), v.dtype)
    elif op == "poison":
        if v.dtype.kind == "f" and v.size:
            w = v.astype(data.draw(st.sampled_from([np.float32, np.float64])))
            with np.errstate(over="ignore"):  # 1e300 into float32 is inf: also a poison
                w.flat[data.draw(st.integers(0, v.size - 1))] = data.draw(
                    st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e39]))
            arrays[name] = w
        elif name.endswith("running_var") or v.dtype.kind in "iu":
            arrays[name] = -np.abs(v) - 1 if v.dtype.kind != "u" else v + np.uint64(2 ** 40)
    elif op == "rename":
        arrays[name + data.draw(st.sampled_from(["_", ".x", "/y"]))] = arrays.pop(name)
    if op == "huge":
        raw = npz_bytes({k: a for k, a in arrays.items() if k != name})
        buf = io.BytesIO(raw)
        with zipfile.ZipFile(buf, "a") as zf:
            zf.writestr(*huge_header_member(name, data.draw(st.sampled_from(
                [(2 ** 33,), (2 ** 20, 2 ** 20), (10 ** 18,), (4096, 4096, 64)]))))
        worker.check(kind, buf.getvalue(), f"{op} {name}")
        return
    worker.check(kind, npz_bytes(arrays), f"{op} {name}")


@FUZZ
@given(row=st.integers(0, 100), col=st.integers(0, 9), value=st.one_of(
    st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(-3, 300)))
def test_packed_index_mutations_load_equal_or_raise_value_error(worker, row, col, value):
    arrays = arrays_of(worker.files["packed"])
    idx = arrays["packed/index"].copy()
    idx[row % len(idx), col] = value
    arrays["packed/index"] = idx
    worker.check("packed", npz_bytes(arrays), f"index[{row % len(idx)}, {col}] = {value}")


# ---- metadata JSON --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)

VALID_STR = {"block": {"hpm", "bottleneck", "wide", "multiscale", "multiscale_no1x1", "wide_no1x1"},
             "pool": {"max", "avg"}}


def hostile_for(key, old):
    """Values a config key can take that describe no valid network with the file's weights."""
    if isinstance(old, bool):
        return json_values.filter(lambda v: not isinstance(v, bool))
    if isinstance(old, int):
        return st.one_of(st.integers(-10 ** 30, 0), st.integers(5000, 10 ** 30),
                         st.floats(allow_nan=False), st.text(max_size=4), st.none(), st.lists(st.integers(), max_size=2),
                         st.booleans())
    if isinstance(old, str):
        return json_values.filter(lambda v: not (isinstance(v, str) and v in VALID_STR.get(key, set())))
    return json_values.filter(lambda v: v not in (None, {}))


@FUZZ
@given(kind=kinds, data=st.data())
def test_metadata_mutations_load_equal_or_raise_value_error(worker, kind, data):
    arrays = arrays_of(worker.files[kind])
    meta = json.loads(str(arrays["__tinybin_meta__"]))
    op = data.draw(st.sampled_from(["config", "drop-config-key", "top", "units", "replace", "deep", "text"]))
    if op == "config":
        key = data.draw(st.sampled_from(sorted(meta["config"])))
        meta["config"][key] = data.draw(hostile_for(key, meta["config"][key]))
    elif op == "drop-config-key":
        meta["config"].pop(data.draw(st.sampled_from(sorted(meta["config"]))))
    elif op == "top":
        key = data.draw(st.sampled_from(["format", "kind", "version", "config", "units"]))
        meta[key] = data.draw(json_values.filter(lambda v: v != meta.get(key)))
    elif op == "units" and "units" in meta:
        units = list(meta["units"])
        i = data.draw(st.integers(0, len(units) - 1))
        j = data.draw(st.integers(0, len(units) - 1))
        units[i], units[j] = units[j], units[i]
        if i == j:
            units[i] = units[i] + data.draw(st.sampled_from(["x", ".conv", ""]))
        meta["units"] = units
    elif op == "replace":
        meta = data.draw(json_values)
    elif op == "deep":
        depth = data.draw(st.sampled_from([33, 500, 5000, 200_000]))
        meta = {**meta, "x": None}
        text = json.dumps(meta)[:-1] + ', "y": ' + "[" * depth + "]" * depth + "}"
        arrays["__tinybin_meta__"] = np.array(text)
        worker.check(kind, npz_bytes(arrays), f"{op} {depth}")
        return
    if op == "text":
        text = data.draw(st.text(max_size=40))
    else:
        text = json.dumps(meta)
    arrays["__tinybin_meta__"] = np.array(text)
    worker.check(kind, npz_bytes(arrays), f"{op}: {text[:200]}")


def test_the_worker_refuses_a_hostile_file_and_loads_the_originals(worker):
    """The harness itself: originals load equal; an obviously bad file is a ValueError."""
    for kind, path in worker.files.items():
        worker.check(kind, open(path, "rb").read(), "original")
        assert "ok" in worker.load(kind, open(path, "rb").read())
    assert worker.load("packed", b"not a zip")["error"] == "ValueError"
