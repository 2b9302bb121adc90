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
from .serialization import atomic_savez, meta_array, read_meta, read_npz
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
    names = _swap_units(twin, lambda name, unit: PackedPreActConv.from_unit(unit))
    _swap_float_ops(twin)
    return PackedNetwork(twin, names)


def load(path, build: Callable[[dict], Module] | None = None) -> PackedNetwork:
    """Read a packed network written by `PackedNetwork.save`.

    The float skeleton is rebuilt from the stored config with `build(config)` (default:
    `HourGlass.from_config`), its binary units are replaced by packed ones read from the file.
    Raises ValueError for a missing, truncated or corrupt file or inconsistent arrays.
    """
    path = str(path)
    arrays = read_npz(path)
    meta = read_meta(arrays, path, PACKED_KIND)
    if build is None:
        from .models import HourGlass
        build = HourGlass.from_config
    try:
        net = build(meta["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: cannot rebuild the network from its config ({e})") from None
    net.eval()
    try:
        words, floats, index = arrays["packed/w_bits"], arrays["packed/floats"], arrays["packed/index"]
    except KeyError as e:
        raise ValueError(f"{path}: missing array {e}") from None
    names_in_file = list(meta.get("units", []))
    if index.ndim != 2 or index.shape != (len(names_in_file), 10) or words.dtype != np.uint64:
        raise ValueError(f"{path}: packed index does not match its unit list")
    units = {}
    for name, (cin, cout, k, st, pad, relu, wo, wl, fo, fl) in zip(names_in_file, index.tolist()):
        if wo + wl > words.size or fo + fl > floats.size or fl != 2 * cin + cout \
                or wl != cout * k * k * bitpack.n_words(cin):
            raise ValueError(f"{path}: unit {name} has inconsistent sizes (corrupt file?)")
        f = floats[fo:fo + fl]
        units[name] = dict(geom=np.array([cin, cout, k, st, pad, relu]), scale=f[:cin], shift=f[cin:2 * cin],
                           alpha=f[2 * cin:], w_bits=words[wo:wo + wl].reshape(cout, k, k, bitpack.n_words(cin)))

    def make(name, unit):
        if name not in units:
            raise ValueError(f"{path}: no packed weights for unit {name}")
        p = PackedPreActConv.from_arrays(units[name])
        if (p.in_channels, p.out_channels, p.kernel_size) != (unit.in_channels, unit.out_channels,
                                                             unit.kernel_size):
            raise ValueError(f"{path}: unit {name} has the wrong geometry for this network")
        return p

    names = _swap_units(net, make)
    _swap_float_ops(net)
    if sorted(names) != sorted(units):
        raise ValueError(f"{path}: the file's packed units do not match the network rebuilt from its config")
    state = {k[len("float/"):]: v for k, v in arrays.items() if k.startswith("float/")}
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

        def traced(x, _m=m, _orig=orig):
            y = _orig(x)
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
