"""Packed deployment: a trained binary network that really runs on bits (paper §5 "Performance").

`pack(net)` returns a copy of `net` in eval mode in which every binary pre-activation unit
(BatchNorm -> Sign -> BinaryConv, `nn.PreActConv(binary=True)`) is swapped for `PackedPreActConv`:

    BatchNorm + sign   ->  one fused pass that computes  x * scale + shift >= 0  per channel and
                           packs the result into uint64 words along channels (NHWC, bit c&63 of
                           word c>>6; `kernels.bitpack.pack_affine_signs`)
    BinaryConv         ->  XNOR-popcount convolution on the packed words with weights packed once
                           (`kernels.xnor.conv2d_prepared`), output float32(dot) * alpha

Everything else -- the real 7x7 stem, pooling, upsampling, concatenations, residual adds, the
real BN -> ReLU and the last 1x1 conv -- runs unchanged in float, through the same network code.
Because the float training graph computes the binary conv as an exact integer conv times alpha
and the BN as the same `x * scale + shift` (see `functional.bn_fold`), the packed network gives
the same logits as `net.eval()` up to float32 rounding in the float parts (in practice: bit for
bit).

Files: `PackedNetwork.save(path)` writes one .npz with the packed words (uint64), alphas and
folded BN arrays of the binary units, the float state of everything else, a format version and the
network config as JSON; `load(path)` rebuilds it. `summary(net)` tabulates parameters by precision,
bytes and MACs per layer (larq's `summary()` is the model).
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from . import functional as F
from . import threads
from .kernels import bitpack, packed_ops, xnor
from .nn import AvgPool2d, BatchNorm2d, MaxPool2d, Module, PreActConv
from .serialization import atomic_savez, meta_array, read_meta
from .tensor import Tensor, no_grad

PACKED_KIND = "packed-network"


class PackedPreActConv(Module):
    """Deployment twin of a binary `PreActConv`: fused BN+sign packer, XNOR-popcount conv, alpha."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 padding: int, scale: np.ndarray, shift: np.ndarray, w_bits: np.ndarray,
                 alpha: np.ndarray, relu_after_conv: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.relu_after_conv = bool(relu_after_conv)
        self.binary = True
        self.scale = np.ascontiguousarray(scale, np.float32)
        self.shift = np.ascontiguousarray(shift, np.float32)
        self.alpha = np.ascontiguousarray(alpha, np.float32)
        self.w_bits = np.ascontiguousarray(w_bits, np.uint64)
        expect = (self.out_channels, self.kernel_size, self.kernel_size, bitpack.n_words(self.in_channels))
        if self.w_bits.shape != expect:
            raise ValueError(f"PackedPreActConv: w_bits has shape {self.w_bits.shape}, expected {expect}")
        for name, arr, n in (("scale", self.scale, in_channels), ("shift", self.shift, in_channels),
                             ("alpha", self.alpha, out_channels)):
            if arr.shape != (n,):
                raise ValueError(f"PackedPreActConv: {name} must have shape ({n},), got {arr.shape}")
        self.prepared = xnor.prepare_weights(self.w_bits, self.in_channels)
        nob = self.prepared.blocked.shape[0]
        self._alpha_blocks = np.zeros(nob * self.prepared.blocked.shape[3], np.float32)
        self._alpha_blocks[:self.out_channels] = self.alpha

    @classmethod
    def from_unit(cls, unit: PreActConv) -> "PackedPreActConv":
        if not unit.binary:
            raise ValueError("only binary PreActConv units can be packed")
        w = unit.conv.weight.data.astype(np.float32)
        scale, shift = unit.bn.folded()
        return cls(unit.in_channels, unit.out_channels, unit.kernel_size, unit.stride, unit.conv.padding,
                   scale, shift, bitpack.pack_signs(w), F.weight_alpha(w), unit.relu_after_conv)

    def forward(self, x):
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        if a.dtype != np.float32:
            raise ValueError(f"packed unit: expected float32 activations, got {a.dtype}")
        if a.ndim != 4 or a.shape[-1] != self.in_channels:
            raise ValueError(f"packed unit: expected (N, H, W, {self.in_channels}) input, got {a.shape}")
        bits = bitpack.pack_affine_signs_unchecked(a, self.scale, self.shift)  # (N, H, W, Cw)
        if xnor.HAVE_FAST_KERNEL:  # arrays made by our own packer: the kernel needs no checks
            N, H, W, _ = a.shape
            k, s, p = self.kernel_size, self.stride, self.padding
            y = np.empty((N, xnor.output_size(H, k, s, p), xnor.output_size(W, k, s, p),
                          self.out_channels), np.float32)
            xnor.conv2d_fast(bits, self.prepared, s, p, self._alpha_blocks, y)
        else:
            y = xnor.conv2d_prepared(bits, self.prepared, self.stride, self.padding, alpha=self.alpha)
        if self.relu_after_conv:
            np.maximum(y, 0, out=y)
        return Tensor(y)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale, "shift": self.shift, "alpha": self.alpha, "w_bits": self.w_bits,
                "geom": np.array([self.in_channels, self.out_channels, self.kernel_size, self.stride,
                                  self.padding, int(self.relu_after_conv)], np.int64)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "PackedPreActConv":
        cin, cout, k, s, p, relu = (int(v) for v in a["geom"])
        return cls(cin, cout, k, s, p, a["scale"], a["shift"], a["w_bits"], a["alpha"], bool(relu))

    def extra_repr(self):
        return f"packed {self.in_channels}->{self.out_channels}, k={self.kernel_size}"


class DeployMaxPool2d(MaxPool2d):
    """Inference twin of `nn.MaxPool2d`: the same maxima bit for bit (`kernels.packed_ops`), without
    the argmax indices a backward pass would need, output rows in parallel."""

    def forward(self, x):
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        return Tensor(packed_ops.max_pool2d(a, self.kernel_size, self.stride))


class DeployBatchNorm2d(BatchNorm2d):
    """Inference twin of `nn.BatchNorm2d` (eval mode): the same `x * scale + shift` from
    `F.bn_fold`, in one parallel pass (`kernels.packed_ops.affine`), bit for bit NumPy's result.
    Same parameters and buffers, so checkpoints and packed files load into it unchanged."""

    def forward(self, x):
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        scale, shift = self.folded()
        if a.dtype != np.float32 or scale.dtype != np.float32 or a.ndim != 4 \
                or a.shape[-1] != self.num_features:
            return super().forward(x)  # the training op (checks, other dtypes)
        return Tensor(packed_ops.affine(a, scale, shift))


def _swap_float_ops(net: Module) -> None:
    """Swap float modules for their exact inference twins: max pooling and the BatchNorms left
    outside the packed units. Average pooling keeps the training op (its rounding order)."""
    for _, mod in list(net.named_modules()):
        for child_name, child in list(mod._modules.items()):
            if type(child) is MaxPool2d:
                setattr(mod, child_name, DeployMaxPool2d(child.kernel_size, child.stride))
            elif type(child) is BatchNorm2d:
                twin = DeployBatchNorm2d(child.num_features, child.momentum, child.eps)
                twin.load_state_dict(child.state_dict())
                twin.eval()
                setattr(mod, child_name, twin)


def _swap_units(net: Module, make: Callable[[str, PreActConv], Module]) -> list[str]:
    """Replace every binary PreActConv below `net` by make(name, unit); return their names."""
    names = []
    for prefix, mod in list(net.named_modules()):
        for child_name, child in list(mod._modules.items()):
            if isinstance(child, PreActConv) and child.binary:
                full = f"{prefix}.{child_name}" if prefix else child_name
                setattr(mod, child_name, make(full, child))
                names.append(full)
    return names


class PackedNetwork:
    """A packed copy of a network; call it on a plain float array (N, R, R, 3)."""

    def __init__(self, net: Module, packed_names: list[str]):
        self.net = net
        self.packed_names = packed_names
        self.config = copy.deepcopy(getattr(net, "config", None))

    def __call__(self, images) -> np.ndarray | list[np.ndarray]:
        x = images.data if isinstance(images, Tensor) else np.asarray(images)
        if x.dtype.kind != "f":
            raise ValueError(f"packed network: expected float images in [0, 1], got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        with no_grad(), threads.numba_only():  # the thread policy of packed inference
            out = self.net(Tensor(x))
        if isinstance(out, (list, tuple)):
            return [o.data for o in out]
        return out.data

    def units(self) -> list[tuple[str, PackedPreActConv]]:
        return [(n, m) for n, m in self.net.named_modules() if isinstance(m, PackedPreActConv)]

    # -- files -----------------------------------------------------------------------------
    def save(self, path) -> None:
        """One .npz: the packed words of all binary units in one uint64 array, their folded BN
        and alpha arrays in one float32 array, an int64 index table (geometry and offsets), the
        float state of everything else, and the config as JSON. Few arrays = little zip overhead."""
        units = self.units()
        words, floats, index = [], [], []
        w_off = f_off = 0
        for _, u in units:
            wb = u.w_bits.reshape(-1)
            fl = np.concatenate([u.scale, u.shift, u.alpha])
            index.append([u.in_channels, u.out_channels, u.kernel_size, u.stride, u.padding,
                          int(u.relu_after_conv), w_off, wb.size, f_off, fl.size])
            words.append(wb)
            floats.append(fl)
            w_off += wb.size
            f_off += fl.size
        arrays: dict[str, np.ndarray] = {
            "packed/w_bits": np.concatenate(words) if words else np.zeros(0, np.uint64),
            "packed/floats": np.concatenate(floats).astype(np.float32) if floats else np.zeros(0, np.float32),
            "packed/index": np.array(index, np.int64).reshape(-1, 10),
        }
        if any(isinstance(u, PackedScaledPreActConv) for _, u in units):
            arrays.update(_extra_arrays([u for _, u in units]))
        for k, v in self.net.state_dict().items():
            arrays[f"float/{k}"] = v
        arrays["__tinybin_meta__"] = meta_array(PACKED_KIND, self.config,
                                                {"units": [n for n, _ in units]})
        atomic_savez(path, arrays)


def pack(net: Module) -> PackedNetwork:
    """Deployment copy of a trained network: binary units packed, everything else unchanged.

    The original `net` is not modified. The copy is in eval mode (BatchNorm uses running stats).
    """
    if not any(isinstance(m, PreActConv) and m.binary for m in net.modules()):
        raise ValueError("pack: the network has no binary units (PreActConv(binary=True)) to pack")
    twin = copy.deepcopy(net)
    twin.eval()
    names = _swap_units(twin, lambda name, unit: pack_unit(unit))
    _swap_float_ops(twin)
    return PackedNetwork(twin, names)


_INDEX_COLUMNS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "relu_after_conv",
                  "w_offset", "w_length", "f_offset", "f_length")


def _read_validated(path: str):
    """Read and check a packed file before anything is built; returns (meta, config, units, z).

    Checks, from headers first: the metadata (a unique list of unit names), the three packed
    arrays' dtypes and shapes (uint64 words, float32 floats, an integer (n_units, 10) index),
    the config (limits, size estimate, consistency with the file's size), a cap on all data; then
    every index column: geometry >= 1 (stride, padding, relu flag in range), offsets laid out
    exactly as `save` writes them (contiguous, in unit order, covering both arrays: so in range
    and non-overlapping), lengths matching the geometry, finite floats, alpha >= 0, zero tail bits.
    """
    from .serialization import NpzReader, check_config, check_values
    z = NpzReader(path)
    try:
        meta = read_meta(z, path, PACKED_KIND)
        names = meta.get("units", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: metadata 'units' must be a list of unit names")
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: unit names are not unique")
        want = {"packed/w_bits": ("u", 1), "packed/floats": ("f", 1), "packed/index": ("i", 2)}
        for key, (kind, ndim) in want.items():
            e = z.entries.get(key)
            if e is None:
                raise ValueError(f"{path}: missing array {key!r}")
            if e.dtype.kind != kind or len(e.shape) != ndim:
                raise ValueError(f"{path}: {key} must be a {ndim}-d {dict(u='uint64', f='float32', i='integer')[kind]} "
                                 f"array, got {e.dtype} {e.shape}")
        if z.entries["packed/w_bits"].dtype != np.uint64 or z.entries["packed/floats"].dtype != np.float32:
            raise ValueError(f"{path}: packed words must be uint64 and floats float32")
        if z.entries["packed/index"].shape != (len(names), len(_INDEX_COLUMNS)):
            raise ValueError(f"{path}: packed index has shape {z.entries['packed/index'].shape}, expected "
                             f"({len(names)}, {len(_INDEX_COLUMNS)}) for its {len(names)} units")
        for k, e in z.entries.items():
            if k.startswith("float/") and e.dtype not in (np.float32, np.float64):
                raise ValueError(f"{path}: {k} has dtype {e.dtype}, expected float32 (or float64)")
        declared = sum(e.size * (64 if e.dtype == np.uint64 else 1) for k, e in z.entries.items()
                       if e.dtype.kind != "U")
        config = check_config(meta["config"], path, declared)
        from .serialization import estimate_size
        has_extra = _check_extra_headers(z, path, len(names))
        z.check_cap(8 * estimate_size(config)[0] + (1 << 20) + (4 * _extra_bound(config, len(names)) if has_extra else 0),
                    "a network of this config")
        index = z.read("packed/index").astype(np.int64)
        extra_index = z.read("packed/extra_index").astype(np.int64).tolist() if has_extra else None
        words, floats = z.read("packed/w_bits"), z.read("packed/floats")
        check_values(f"{path}: packed/floats", floats)
        units, wo_expect, fo_expect = {}, 0, 0
        for name, row in zip(names, index.tolist()):
            g = dict(zip(_INDEX_COLUMNS, row))
            cin, cout, k, st, pad = (g[c] for c in _INDEX_COLUMNS[:5])
            bad = [c for c, ok in (("in_channels", cin >= 1), ("out_channels", cout >= 1), ("kernel_size", k >= 1),
                                   ("stride", st >= 1), ("padding", 0 <= pad < k),
                                   ("relu_after_conv", g["relu_after_conv"] in (0, 1))) if not ok]
            if bad:
                raise ValueError(f"{path}: unit {name} has invalid {', '.join(bad)} in its index row {row}")
            nw = bitpack.n_words(cin)
            if (g["w_offset"], g["w_length"], g["f_offset"], g["f_length"]) != \
                    (wo_expect, cout * k * k * nw, fo_expect, 2 * cin + cout):
                raise ValueError(f"{path}: unit {name} has inconsistent offsets or sizes in its index row "
                                 f"{row} (corrupt file?)")
            wo_expect += g["w_length"]
            fo_expect += g["f_length"]
            if wo_expect > words.size or fo_expect > floats.size:
                raise ValueError(f"{path}: unit {name} points past the end of the packed arrays")
            w = words[g["w_offset"]:wo_expect].reshape(cout, k, k, nw)
            if cin % 64 and (w[..., -1] >> np.uint64(cin % 64)).any():
                raise ValueError(f"{path}: unit {name} has bits set beyond its {cin} channels")
            f = floats[g["f_offset"]:fo_expect]
            if (f[2 * cin:] < 0).any() and not (has_extra and extra_index[len(units)][0] != 0):
                raise ValueError(f"{path}: unit {name} has a negative alpha")  # learned scales may be < 0
            units[name] = dict(geom=np.array(row[:6]), scale=f[:cin], shift=f[cin:2 * cin], alpha=f[2 * cin:],
                               w_bits=w)
        if (wo_expect, fo_expect) != (words.size, floats.size):
            raise ValueError(f"{path}: packed arrays hold {words.size} words and {floats.size} floats, "
                             f"the index uses {wo_expect} and {fo_expect}")
        if has_extra:
            _read_extra(z, path, names, units, extra_index)
        return meta, config, units, z
    except BaseException:
        z.close()
        raise


def load(path, build: Callable[[dict], Module] | None = None) -> PackedNetwork:
    """Read a packed network written by `PackedNetwork.save`.

    The whole file is validated first (`_read_validated`: metadata, config limits and size
    estimate, every index column, offsets, dtypes, values); then the float skeleton is rebuilt
    from the stored config with `build(config)` (default: `HourGlass.from_config`), every unit's
    geometry (channels, kernel, stride, padding, relu flag) is compared with the rebuilt one, and
    its binary units are replaced by packed ones read from the file. Raises ValueError for a
    missing, truncated, corrupt or inconsistent file.
    """
    from .serialization import check_values
    path = str(path)
    meta, config, units, z = _read_validated(path)
    with z:
        if build is None:
            from .models import HourGlass
            build = HourGlass.from_config
        try:
            net = build(config)
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"{path}: cannot rebuild the network from its config ({e})") from None
        net.eval()

        def make(name, unit):
            if name not in units:
                raise ValueError(f"{path}: no packed weights for unit {name}")
            geom = tuple(int(v) for v in units[name]["geom"])
            mine = (unit.in_channels, unit.out_channels, unit.kernel_size, unit.stride, unit.conv.padding,
                    int(unit.relu_after_conv))
            if geom != mine:
                diff = [c for c, a, b in zip(_INDEX_COLUMNS, geom, mine) if a != b]
                raise ValueError(f"{path}: unit {name} has the wrong {', '.join(diff)} for this network "
                                 f"(file {geom}, network {mine})")
            ex = units[name].get("extra", (0, 0, 0, 0))
            want = _unit_extra_geom(unit)
            if tuple(ex[:4]) != want:
                raise ValueError(f"{path}: unit {name} has scale/prelu fields {tuple(ex[:4])} "
                                 f"(kind, OH, OW, prelu) but the network rebuilt from the config has {want}")
            if "extra" in units[name]:
                return PackedScaledPreActConv.from_arrays(units[name])
            return PackedPreActConv.from_arrays(units[name])

        names = _swap_units(net, make)
        _swap_float_ops(net)
        if sorted(names) != sorted(units):
            raise ValueError(f"{path}: the file's packed units do not match the network rebuilt from its config")
        order = [n for n, _ in PackedNetwork(net, names).units()]
        if order != list(units):  # two units of equal geometry must not trade weights
            raise ValueError(f"{path}: the packed units are not listed in the network's order")
        expected = net.state_dict()
        keys = [k for k in z.entries if k.startswith("float/")]
        for k in keys:
            want = expected.get(k[len("float/"):])
            if want is not None and z.entries[k].shape != want.shape:
                raise ValueError(f"{path}: {k} has shape {z.entries[k].shape}, the network expects {want.shape}")
        state = {k[len("float/"):]: z.read(k) for k in keys}
        for k, v in state.items():
            check_values(f"{path}: float/{k}", v)
        try:
            net.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return PackedNetwork(net, names)


# ---- summary -----------------------------------------------------------------------------------

def summary(net: Module, input_shape: tuple[int, ...] | None = None, print_fn=print) -> list[dict]:
    """Per-layer table of parameters by precision, bytes and MACs (for one input image).

    Binary convs count 1 bit per weight packed (plus a float32 alpha per output channel and the
    folded BN scale/shift per input channel); everything else 32 bits. MACs come from tracing one
    forward pass of a zero image (N=1) at `input_shape` (default: the config's resolution).
    """
    from .nn import Conv2d
    if input_shape is None:
        R = int(getattr(net, "config", {}).get("resolution", 64))
        input_shape = (1, R, R, 3)
    rows: list[dict] = []
    shapes: dict[int, tuple] = {}
    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, Conv2d)]
    originals = {}
    for name, m in convs:
        orig = m.forward
        originals[id(m)] = orig

        def traced(x, _m=m, _orig=orig, **kw):
            y = _orig(x, **kw)
            shapes[id(_m)] = y.shape
            return y
        m.forward = traced
    was = net.training
    try:
        net.eval()
        with no_grad():
            net(Tensor(np.zeros(input_shape, np.float32)))
    finally:
        for name, m in convs:
            del m.forward
        net.train(was)
    owner = {}
    for n, m in net.named_modules():
        if isinstance(m, PreActConv):
            owner[id(m.conv)] = m
    for name, m in convs:
        out = shapes.get(id(m))
        n_w = m.weight.data.size
        pix = int(np.prod(out[1:3])) if out is not None else 0
        macs = pix * n_w
        unit = owner.get(id(m))
        binary = unit is not None and unit.binary
        bn_params = 2 * unit.in_channels if unit is not None else 0
        if binary:
            packed_bytes = m.out_channels * m.kernel_size ** 2 * 8 * bitpack.n_words(m.in_channels) \
                + 4 * m.out_channels + 4 * 2 * m.in_channels
            rows.append(dict(layer=name, kind="binary", binary_params=n_w, float_params=bn_params,
                             float32_bytes=4 * (n_w + bn_params), packed_bytes=packed_bytes,
                             binary_macs=macs, float_macs=0))
        else:
            nb = 0 if m.bias is None else m.bias.data.size
            fp = n_w + nb + bn_params
            rows.append(dict(layer=name, kind="float", binary_params=0, float_params=fp,
                             float32_bytes=4 * fp, packed_bytes=4 * fp, binary_macs=0, float_macs=macs))
    covered = {id(p) for _, m in convs for p in (m.weight, m.bias) if p is not None}
    covered |= {id(p) for _, u in net.named_modules() if isinstance(u, PreActConv)
                for p in (u.bn.weight, u.bn.bias)}
    rest = sum(p.data.size for _, p in net.named_parameters() if id(p) not in covered)
    if rest:
        rows.append(dict(layer="(other BatchNorm)", kind="float", binary_params=0, float_params=rest,
                         float32_bytes=4 * rest, packed_bytes=4 * rest, binary_macs=0, float_macs=0))
    tot = {k: sum(r[k] for r in rows) for k in ("binary_params", "float_params", "float32_bytes",
                                                 "packed_bytes", "binary_macs", "float_macs")}
    rows.append(dict(layer="TOTAL", kind="", **tot))
    if print_fn is not None:
        print_fn(format_summary(rows))
    return rows


def format_summary(rows: list[dict]) -> str:
    head = (f"{'layer':<44} {'kind':<7} {'bin params':>11} {'fp params':>10} {'fp32 bytes':>12} "
            f"{'packed bytes':>12} {'bin MACs':>14} {'fp MACs':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['layer'][-44:]:<44} {r['kind']:<7} {r['binary_params']:>11,} {r['float_params']:>10,} "
                     f"{r['float32_bytes']:>12,} {r['packed_bytes']:>12,} {r['binary_macs']:>14,} "
                     f"{r['float_macs']:>13,}")
    t = rows[-1]
    if t["packed_bytes"]:
        lines.append(f"memory: {t['float32_bytes'] / 2**20:.2f} MiB as float32, "
                     f"{t['packed_bytes'] / 2**20:.2f} MiB packed ({t['float32_bytes'] / t['packed_bytes']:.1f}x)")
    return "\n".join(lines)


# ---- beyond the paper: learned scales and PReLU in the packed unit -------------------------
#
# A unit with a learned XNOR-Net++ scale or a PReLU (`nn.PreActConv(scale=..., prelu=...)`) packs
# into `PackedScaledPreActConv`: the same fused BN+sign packer and XNOR-popcount conv, then
#
#     learned_channel   Gamma (Cout,) is the kernel's per-channel multiplier (the alpha slot)
#     learned_spatial   kernel multiplier 1 (float32(dot) * 1 = dot exactly), then y *= Gamma (OH, OW, Cout)
#     learned_rank1     kernel multiplier 1, then y *= rank1_product(c, h, w) -- the same function,
#                       hence the same float32 numbers, as the training graph
#     prelu             y = where(y >= 0, y, a * y) in float (functional.prelu_np)
#
# Files: units of the default kind keep the 10-column index row exactly as before; a file with any
# such unit adds `packed/extra_index` (n_units, 6) int64 rows [kind, OH, OW, prelu, offset, length]
# (kind 0 xnor, 1 channel, 2 spatial, 3 rank-1; OH = OW = 0 unless spatial) and `packed/extra_floats`
# float32 (per unit, contiguous: spatial Gamma (OH*OW*Cout) or rank-1 c, h, w (Cout + OH + OW), then
# the PReLU slopes (Cout) when prelu). The loader validates every column as strictly as the main index.

SCALE_CODES = {"xnor": 0, "learned_channel": 1, "learned_spatial": 2, "learned_rank1": 3}
_EXTRA_COLUMNS = ("scale_kind", "out_h", "out_w", "prelu", "e_offset", "e_length")


def _unit_extra_geom(unit: PreActConv) -> tuple[int, int, int, int]:
    """(kind code, OH, OW, prelu) of a float binary unit, as the packed file records them."""
    kind = SCALE_CODES[getattr(unit, "scale_kind", "xnor")]
    oh, ow = unit.conv.out_hw if kind in (2, 3) else (0, 0)
    return kind, int(oh), int(ow), int(getattr(unit, "prelu", False))


class PackedScaledPreActConv(PackedPreActConv):
    """Packed twin of a binary unit with a learned scale and/or a PReLU (see above).

    alpha is the kernel's per-channel multiplier: XNOR's mean|W| (kind xnor with prelu), the learned
    Gamma (learned_channel), or ones (learned_spatial, learned_rank1, whose Gamma (OH, OW, Cout) is
    one multiply after the conv). factors: spatial (OH, OW, Cout) or rank-1 (c, h, w); slope: (Cout,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, scale, shift, w_bits,
                 alpha, relu_after_conv=False, scale_kind: str = "xnor", factors=None, slope=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, scale, shift, w_bits,
                         alpha, relu_after_conv)
        if scale_kind not in SCALE_CODES:
            raise ValueError(f"PackedScaledPreActConv: unknown scale kind {scale_kind!r}")
        self.scale_kind = scale_kind
        self.factors = None if factors is None else tuple(np.ascontiguousarray(f, np.float32) for f in factors)
        self.slope = None if slope is None else np.ascontiguousarray(slope, np.float32)
        if scale_kind == "learned_spatial":
            (g,) = self.factors
            if g.ndim != 3 or g.shape[2] != self.out_channels:
                raise ValueError(f"PackedScaledPreActConv: spatial Gamma must be (OH, OW, {self.out_channels}), got {g.shape}")
            self.gamma_full = g
        elif scale_kind == "learned_rank1":
            c, h, w = self.factors
            if c.shape != (self.out_channels,) or h.ndim != 1 or w.ndim != 1:
                raise ValueError("PackedScaledPreActConv: rank-1 factors must be (Cout,), (OH,), (OW,)")
            self.gamma_full = F.rank1_product(c, h, w)
        else:
            self.gamma_full = None
        self.out_hw = None if self.gamma_full is None else self.gamma_full.shape[:2]
        if self.slope is not None and self.slope.shape != (self.out_channels,):
            raise ValueError(f"PackedScaledPreActConv: PReLU slopes must be ({self.out_channels},)")
        if self.slope is not None and self.relu_after_conv:
            raise ValueError("PackedScaledPreActConv: prelu and relu_after_conv exclude each other")

    @classmethod
    def from_unit(cls, unit: PreActConv) -> "PackedScaledPreActConv":
        if not unit.binary:
            raise ValueError("only binary PreActConv units can be packed")
        w = unit.conv.weight.data.astype(np.float32)
        bn_scale, bn_shift = unit.bn.folded()
        kind = getattr(unit, "scale_kind", "xnor")
        factors = None
        if kind == "xnor":
            alpha = F.weight_alpha(w)
        elif kind == "learned_channel":
            alpha = unit.conv.gamma_c.data
        else:
            alpha = np.ones(unit.out_channels, np.float32)
            c = unit.conv
            factors = (c.gamma.data,) if kind == "learned_spatial" else (c.gamma_c.data, c.gamma_h.data, c.gamma_w.data)
        slope = unit.act.weight.data if getattr(unit, "prelu", False) else None
        return cls(unit.in_channels, unit.out_channels, unit.kernel_size, unit.stride, unit.conv.padding,
                   bn_scale, bn_shift, bitpack.pack_signs(w), alpha, unit.relu_after_conv, kind, factors, slope)

    def forward(self, x):
        y = super().forward(x).data               # float32(dot) * alpha
        if self.gamma_full is not None:
            if tuple(y.shape[1:3]) != tuple(self.out_hw):
                raise ValueError(f"packed unit: built for {self.out_hw} outputs, got {y.shape[1:3]}")
            y *= self.gamma_full                   # one float multiply, as the training graph
        if self.slope is not None:
            y = F.prelu_np(y, self.slope)
        return Tensor(y)

    def extra_floats(self) -> np.ndarray:
        parts = [f.reshape(-1) for f in (self.factors or ())]
        if self.slope is not None:
            parts.append(self.slope)
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def extra_geom(self) -> tuple[int, int, int, int]:
        oh, ow = self.out_hw if self.out_hw is not None else (0, 0)
        return SCALE_CODES[self.scale_kind], int(oh), int(ow), int(self.slope is not None)

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "PackedScaledPreActConv":
        cin, cout, k, s, p, relu = (int(v) for v in a["geom"])
        kind, oh, ow, has_prelu = a["extra"][:4]
        e = a["extra_floats"]
        name = {v: n for n, v in SCALE_CODES.items()}[kind]
        factors, n = None, 0
        if kind == 2:
            n = oh * ow * cout
            factors = (e[:n].reshape(oh, ow, cout),)
        elif kind == 3:
            n = cout + oh + ow
            factors = (e[:cout], e[cout:cout + oh], e[cout + oh:n])
        slope = e[n:n + cout] if has_prelu else None
        return cls(cin, cout, k, s, p, a["scale"], a["shift"], a["w_bits"], a["alpha"], bool(relu),
                   name, factors, slope)

    def extra_repr(self):
        return super().extra_repr() + f", scale={self.scale_kind}" + (", prelu" if self.slope is not None else "")


def pack_unit(unit: PreActConv) -> PackedPreActConv:
    """The packed twin of one binary unit: `PackedPreActConv` for the paper's unit (XNOR alpha, no
    PReLU), `PackedScaledPreActConv` when it has a learned scale or a PReLU."""
    if getattr(unit, "quant", None) is not None:
        raise ValueError("pack: a unit is in a progressive / reverse-order stage (quant set); "
                         "pack the fully binary network (nn.set_quantization(net, None))")
    if getattr(unit, "scale_kind", "xnor") == "xnor" and not getattr(unit, "prelu", False):
        return PackedPreActConv.from_unit(unit)
    return PackedScaledPreActConv.from_unit(unit)


def _extra_arrays(units: list) -> dict[str, np.ndarray]:
    rows, floats, off = [], [], 0
    for u in units:
        if isinstance(u, PackedScaledPreActConv):
            e = u.extra_floats()
            rows.append(list(u.extra_geom()) + [off, e.size])
            floats.append(e)
            off += e.size
        else:
            rows.append([0, 0, 0, 0, off, 0])
    return {"packed/extra_index": np.array(rows, np.int64).reshape(-1, len(_EXTRA_COLUMNS)),
            "packed/extra_floats": np.concatenate(floats).astype(np.float32) if floats else np.zeros(0, np.float32)}


def _extra_bound(config: dict, n_units: int) -> int:
    """Upper bound on the extra floats of a network of this config: every unit's output is at most
    (R/2)^2 positions (the stem's first block) of at most F channels (the heads' 1x1 F -> F)."""
    R, Fw = int(config["resolution"]), int(config["width"])
    return n_units * ((R // 2) ** 2 * Fw + 2 * Fw + R)


def _check_extra_headers(z, path: str, n_units: int) -> bool:
    """Whether the file has the optional scale/PReLU arrays; ValueError when they are malformed."""
    have = [k in z.entries for k in ("packed/extra_index", "packed/extra_floats")]
    if not any(have):
        return False
    if not all(have):
        raise ValueError(f"{path}: packed/extra_index and packed/extra_floats must come together")
    ei, ef = z.entries["packed/extra_index"], z.entries["packed/extra_floats"]
    if ei.dtype.kind != "i" or ei.shape != (n_units, len(_EXTRA_COLUMNS)):
        raise ValueError(f"{path}: packed/extra_index must be an integer ({n_units}, {len(_EXTRA_COLUMNS)}) "
                         f"array, got {ei.dtype} {ei.shape}")
    if ef.dtype != np.float32 or len(ef.shape) != 1:
        raise ValueError(f"{path}: packed/extra_floats must be a 1-d float32 array, got {ef.dtype} {ef.shape}")
    return True


def _read_extra(z, path: str, names: list[str], units: dict, extra_index: list) -> None:
    """Check every extra index row (kind, sizes, prelu flag, contiguous offsets, lengths that match
    the geometry, finite values) and attach the unit's fields to `units[name]`."""
    from .serialization import check_values
    ef = z.read("packed/extra_floats")
    check_values(f"{path}: packed/extra_floats", ef)
    off = 0
    for name, row in zip(names, extra_index):
        g = dict(zip(_EXTRA_COLUMNS, row))
        kind, oh, ow, pr = g["scale_kind"], g["out_h"], g["out_w"], g["prelu"]
        cout = int(units[name]["geom"][1])
        spatial = kind in (2, 3)
        bad = [c for c, ok in (("scale_kind", kind in (0, 1, 2, 3)), ("prelu", pr in (0, 1)),
                               ("out_h", oh >= 1 if spatial else oh == 0),
                               ("out_w", ow >= 1 if spatial else ow == 0)) if not ok]
        if bad:
            raise ValueError(f"{path}: unit {name} has invalid {', '.join(bad)} in its extra index row {row}")
        n = {2: oh * ow * cout, 3: cout + oh + ow}.get(kind, 0) + (cout if pr else 0)
        if (g["e_offset"], g["e_length"]) != (off, n):
            raise ValueError(f"{path}: unit {name} has inconsistent offsets or sizes in its extra index row "
                             f"{row} (corrupt file?)")
        off += n
        if off > ef.size:
            raise ValueError(f"{path}: unit {name} points past the end of packed/extra_floats")
        if kind == 0 and not pr:
            continue  # a plain unit: its packed twin is PackedPreActConv
        units[name]["extra"] = (kind, oh, ow, pr)
        units[name]["extra_floats"] = ef[g["e_offset"]:off]
    if off != ef.size:
        raise ValueError(f"{path}: packed/extra_floats holds {ef.size} floats, the extra index uses {off}")
