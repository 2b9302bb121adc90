"""Layers as modules: parameters, buffers, submodules, train/eval, state dicts (PyTorch names).

`Module.__setattr__` registers what you assign: a `Parameter` becomes a parameter, a `Module` a
submodule, and `register_buffer` stores non-trainable arrays (BatchNorm running statistics).
`state_dict()` flattens all of them into dotted names ("blocks.0.conv1.bn.weight").

The two pre-activation units of the paper (§4.1, Fig. 7) are single modules:

    PreActConv(binary=False):  BatchNorm -> ReLU -> Conv          (real-valued network)
    PreActConv(binary=True):   BatchNorm -> Sign -> BinaryConv    (XNOR weights, no bias)

Every block of `blocks.py` is written in terms of `PreActConv`; `tinybin.packed.pack` swaps each
binary one for its packed twin.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from . import functional as F
from .tensor import Tensor


class Parameter(Tensor):
    """A trainable tensor (requires_grad=True unless frozen)."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class: assign Parameters, Modules and buffers as attributes; write `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for d in (self._parameters, self._modules, self._buffers):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # ---- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> list[Parameter]:
        """Trainable parameters (frozen ones, requires_grad=False, are left out)."""
        return [p for _, p in self.named_parameters() if p.requires_grad]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, m in self.named_modules():
            for name, b in m._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    # ---- modes, gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for _, p in self.named_parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Freeze (False) or unfreeze (True) every parameter of this module."""
        for _, p in self.named_parameters():
            p.requires_grad = flag
        return self

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        sd = OrderedDict()
        for name, p in self.named_parameters():
            sd[name] = p.data.copy()
        for name, b in self.named_buffers():
            sd[name] = np.array(b, copy=True)
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into this module. Checks every key and shape *before* writing anything,
        so a bad state dict leaves the module unchanged."""
        own = dict(self.named_parameters())
        bufs = dict(self.named_buffers())
        expected = set(own) | set(bufs)
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if strict and (missing or unexpected):
            raise ValueError(f"state dict mismatch: missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                             f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
        for k in expected & set(state):
            target = own[k].data if k in own else bufs[k]
            v = np.asarray(state[k])
            if v.shape != target.shape:
                raise ValueError(f"state dict: {k} has shape {v.shape}, the module expects {target.shape}")
            if v.dtype.kind != "f":
                raise ValueError(f"state dict: {k} has dtype {v.dtype}, expected a float array")
            if not np.isfinite(v).all():
                raise ValueError(f"state dict: {k} contains NaN or Inf")
        for k in expected & set(state):
            v = np.asarray(state[k])
            if k in own:
                own[k].data = v.astype(own[k].data.dtype, copy=True)
            else:
                bufs[k][...] = v  # buffers are updated in place: modules hold references to them

    def to(self, dtype) -> "Module":
        """Cast parameters and buffers (float64 for gradient checks)."""
        for _, p in self.named_parameters():
            p.data = p.data.astype(dtype)
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                m.register_buffer(name, b.astype(dtype))
        return self

    # ---- calling -----------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


def count_parameters(module: Module) -> int:
    """Number of parameters (weights, biases, BatchNorm scale and shift; not running statistics),
    frozen ones included. This is how the paper's tables count (Torch `getParameters`)."""
    return int(sum(p.data.size for _, p in module.named_parameters()))


def he_normal(rng: np.random.Generator, shape: tuple, fan_in: int) -> np.ndarray:
    """He / MSRA initialisation (paper §6.1, "as in [16]"): N(0, 2 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ---- layers ---------------------------------------------------------------------------------

class Conv2d(Module):
    """Real-valued convolution, NHWC, weight (Cout, KH, KW, Cin), He-initialised."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True, rng=None):
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride) < 1:
            raise ValueError(f"Conv2d: channels, kernel and stride must be >= 1, got "
                             f"{in_channels}, {out_channels}, {kernel_size}, {stride}")
        k = kernel_size
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride = stride
        self.padding = k // 2 if padding is None else padding
        r = _rng(rng)
        self.weight = Parameter(he_normal(r, (out_channels, k, k, in_channels), k * k * in_channels))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
                f"p={self.padding}, bias={self.bias is not None}")


class BinaryConv2d(Conv2d):
    """XNOR-Net convolution (paper eq. 1): conv(x, sign(W)) * alpha, alpha_o = mean|W[o]|.

    Keeps real-valued latent weights for training; no bias. Feed it signed (±1) inputs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False, rng=rng)

    def forward(self, x: Tensor, signed: bool = False) -> Tensor:
        """signed=True: x holds only ±1 (a sign's output); the forward then runs on the packed
        XNOR kernel, bit for bit the same result (`functional.binary_conv2d`)."""
        return F.binary_conv2d(x, self.weight, self.stride, self.padding, signed=signed)


class BatchNorm2d(Module):
    """BatchNorm over N, H, W for each channel (NHWC); affine (gamma, beta) and running stats."""

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Eval-mode (scale, shift): BN(x) = x * scale + shift."""
        return F.bn_fold(self.weight.data, self.bias.data, self.running_mean, self.running_var, self.eps)

    def extra_repr(self):
        return str(self.num_features)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sign(Module):
    """Binary activation: sign in the forward pass, clipped straight-through in the backward."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sign_ste(x)


class MaxPool2d(Module):
    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(MaxPool2d):
    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride)


class Upsample(Module):
    def __init__(self, scale_factor: int = 2, mode: str = "nearest"):
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: Tensor) -> Tensor:
        return F.upsample(x, self.scale_factor, self.mode)

    def extra_repr(self):
        return f"x{self.scale_factor}, {self.mode}"


class Sequential(Module):
    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x


# PreActConv runs its training-mode BatchNorm and activation as one fused op
# (`F.batch_norm_act`); False selects the separate ops, the reference the tests compare against.
FUSED_BN_ACT = True


class PreActConv(Module):
    """The paper's pre-activation unit `P(cin -> cout, k)` as one module.

    binary=True:  BatchNorm(cin) -> Sign -> BinaryConv k x k (XNOR weights, no bias)   (§4.1)
    binary=False: BatchNorm(cin) -> ReLU -> Conv k x k (bias)                           (real twin)
    relu_after_conv: append a ReLU after the convolution (the "+ReLU" variant of Table 4).
    Padding is k // 2 (zero padding of the signed input), so stride 1 keeps H and W.
    scale (binary only): "xnor" (alpha = mean|W|, eq. 1) or a learned XNOR-Net++ scale Gamma,
    "learned_channel" | "learned_spatial" | "learned_rank1" (`LearnedScaleBinaryConv2d`).
    prelu: a per-channel PReLU after the convolution (arXiv:1904.05868; `PReLU`).
    `quant` (set by the trainer, None = fully binary) mixes in the real-valued stages of
    progressive quantization and reverse-order initialisation (`set_quantization`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 binary: bool = True, relu_after_conv: bool = False, rng=None,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__()
        check_unit_options(binary, relu_after_conv, scale, prelu)
        self.binary, self.relu_after_conv = binary, relu_after_conv
        self.scale_kind, self.prelu, self.quant = scale, bool(prelu), None
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.bn = BatchNorm2d(in_channels)
        if binary and scale != "xnor":
            self.conv = LearnedScaleBinaryConv2d(in_channels, out_channels, kernel_size, stride, scale=scale, rng=rng)
        elif binary:
            self.conv = BinaryConv2d(in_channels, out_channels, kernel_size, stride, rng=rng)
        else:
            self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, bias=True, rng=rng)
        if self.prelu:
            self.act = PReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        bn = self.bn
        if self.binary and self.quant is not None:
            y = quantized_forward(self, bn(x))
        elif FUSED_BN_ACT and bn.training:   # BN -> act as one op (bit-identical, fewer passes)
            y = self._conv(F.batch_norm_act(x, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                            "sign" if self.binary else "relu", bn.momentum, bn.eps))
        else:
            h = bn(x)
            y = self._conv(F.sign_ste(h) if self.binary else F.relu(h))
        if self.prelu:
            y = self.act(y)
        return F.relu(y) if self.relu_after_conv else y

    def _conv(self, a: Tensor) -> Tensor:
        """The convolution of the activation `a`; a binary unit's `a` is a sign's ±1 output."""
        if isinstance(self.conv, BinaryConv2d):                   # XNOR or learned scale
            return self.conv(a, signed=True)
        return self.conv(a)

    def extra_repr(self):
        kind = "binary" if self.binary else "real"
        return (f"{kind} {self.in_channels}->{self.out_channels}, k={self.kernel_size}"
                + (", +relu" if self.relu_after_conv else "")
                + (f", scale={self.scale_kind}" if self.scale_kind != "xnor" else "")
                + (", prelu" if self.prelu else ""))


# ---- beyond the paper: learned scales, PReLU, quantization stages ---------------------------
# XNOR-Net++ (Bulat & Tzimiropoulos, BMVC 2019, arXiv:1909.13863) and "Improved training of binary
# networks for human pose estimation and image recognition" (Bulat, Tzimiropoulos, Kossaifi,
# Pantic, arXiv:1904.05868). `PreActConv(scale=..., prelu=...)` builds these; `tinybin.packed`
# folds them into the packed unit; `tinybin.train` drives the quantization stages.

SCALES = ("xnor", "learned_channel", "learned_spatial", "learned_rank1")
QUANT_MODES = ("real", "act", "binary")


def check_unit_options(binary: bool, relu_after_conv: bool, scale: str, prelu: bool) -> None:
    """ValueError for a unit option outside its range or a combination we do not define."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if scale != "xnor" and not binary:
        raise ValueError(f"scale={scale!r} is a binary-unit option (the real twin has a real conv with bias)")
    if not isinstance(prelu, (bool, np.bool_)):
        raise ValueError(f"prelu must be True or False, got {prelu!r}")
    if prelu and relu_after_conv:
        raise ValueError("prelu and relu_after_conv are two activations after the same conv; choose one")


class LearnedScaleBinaryConv2d(BinaryConv2d):
    """XNOR-Net++ binary convolution (arXiv:1909.13863): Y = (sign(A) conv sign(W)) * Gamma.

    One learned scale Gamma replaces both XNOR-Net's weight scale alpha = mean|W| and its
    activation scale; it is trained by backpropagation like any other parameter. Shapes
    (the paper's cases at a fixed compute budget), for an output (N, OH, OW, Cout):

        learned_channel   gamma_c (Cout,)                                  Gamma[y, x, o] = c[o]
        learned_spatial   gamma (OH, OW, Cout)                             Gamma[y, x, o] = g[y, x, o]
        learned_rank1     gamma_c (Cout,), gamma_h (OH,), gamma_w (OW,)    Gamma = h[y] w[x] c[o]

    Initialisation (our choice; the paper's text we could consult does not fix it, the authors'
    later library starts from ones): Gamma starts at XNOR-Net's alpha_o = mean|W[o]| of the
    initial weights (spatial: copied at every position; rank-1: c = alpha, h = w = 1), so that at
    step 0 every learned variant computes exactly the function of scale="xnor", and only training
    moves it. Ones would multiply the outputs by ~1/alpha (~10-30x at He initialisation) and
    unbalance the residual sums.

    The spatial shapes depend on the output size, i.e. on the input resolution: a network's
    resolution is fixed in its config, so `build_scales(net, input_shape)` (which `HourGlass`
    calls at construction) runs one shape-only forward pass and allocates them. A spatial unit
    fed another size raises ValueError.

    Forward: `binary_conv2d(x, W, alpha=False)` = conv2d(x, sign(W)) -- an exact integer conv for
    x in {-1, +1}, on the packed XNOR kernel when the unit passes signed=True -- then one float
    multiply by Gamma, the same two steps the packed XNOR unit takes, so packed == float bit
    for bit. Gradients: dL/dGamma = sum over the broadcast axes of g * conv; dL/dx through the
    conv with sign(W) and g * Gamma; dL/dW = dL/d sign(W) (straight through, as XNOR-Net here).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, scale: str = "learned_channel", rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, rng=rng)
        if scale not in SCALES[1:]:
            raise ValueError(f"LearnedScaleBinaryConv2d: scale must be one of {SCALES[1:]}, got {scale!r}")
        self.scale_kind = scale
        self.out_hw: tuple[int, int] | None = None
        self._traced = None
        if scale == "learned_channel":
            self.gamma_c = Parameter(F.weight_alpha(self.weight.data))

    @property
    def spatial(self) -> bool:
        return self.scale_kind in ("learned_spatial", "learned_rank1")

    def build(self, oh: int, ow: int) -> None:
        """Allocate the spatial factors for an (oh, ow) output, initialised as the class says."""
        alpha = F.weight_alpha(self.weight.data)
        dt = self.weight.data.dtype
        self.out_hw = (int(oh), int(ow))
        if self.scale_kind == "learned_spatial":
            self.gamma = Parameter(np.broadcast_to(alpha, (oh, ow, self.out_channels)).astype(dt))
        elif self.scale_kind == "learned_rank1":
            self.gamma_c = Parameter(alpha.copy())
            self.gamma_h = Parameter(np.ones(oh, dt))
            self.gamma_w = Parameter(np.ones(ow, dt))

    def scale_tensor(self) -> Tensor:
        """Gamma as a Tensor broadcastable against (N, OH, OW, Cout)."""
        if self.scale_kind == "learned_channel":
            return self.gamma_c
        if self.scale_kind == "learned_spatial":
            return self.gamma
        return F.rank1_scale(self.gamma_c, self.gamma_h, self.gamma_w)

    def scale_array(self) -> np.ndarray:
        """Gamma as an array, exactly the numbers the forward multiplies by."""
        if self.scale_kind == "learned_rank1":
            return F.rank1_product(self.gamma_c.data, self.gamma_h.data, self.gamma_w.data)
        return self.scale_tensor().data

    def forward(self, x: Tensor, signed: bool = False) -> Tensor:
        """signed=True: x holds only ±1; the integer conv then runs on the packed XNOR kernel, as
        `BinaryConv2d`'s (the same numbers as the float GEMM)."""
        y = F.binary_conv2d(x, self.weight, self.stride, self.padding, signed=signed, alpha=False)
        if self.spatial:
            hw = tuple(y.shape[1:3])
            if self.out_hw is None:
                if _SHAPE_TRACE:
                    if self._traced is not None and self._traced != hw:
                        raise ValueError(f"{self.scale_kind} unit reached with two output sizes {self._traced} and {hw}")
                    self._traced = hw
                    return y
                raise ValueError(f"{self.scale_kind}: the spatial scale is not allocated yet; call "
                                 f"tinybin.nn.build_scales(module, input_shape) first (HourGlass does)")
            if hw != self.out_hw:
                raise ValueError(f"{self.scale_kind}: this unit was built for {self.out_hw[0]}x{self.out_hw[1]} "
                                 f"outputs (the network's resolution), got {hw[0]}x{hw[1]}")
        return F.mul(y, self.scale_tensor())

    def extra_repr(self):
        return super().extra_repr() + f", scale={self.scale_kind}" + (f", out={self.out_hw}" if self.spatial else "")


_SHAPE_TRACE = False


def build_scales(module: Module, input_shape: tuple[int, ...]) -> int:
    """Allocate the spatial learned scales below `module` for inputs of `input_shape`.

    One forward pass of zeros (eval mode, no gradients, running statistics untouched) records
    every spatial unit's output size, then each allocates its Gamma (`LearnedScaleBinaryConv2d.
    build`). Returns the number of units built; already built ones are left alone.
    """
    global _SHAPE_TRACE
    units = [m for m in module.modules()
             if isinstance(m, LearnedScaleBinaryConv2d) and m.spatial and m.out_hw is None]
    if not units:
        return 0
    from .tensor import no_grad
    was, prev = module.training, _SHAPE_TRACE
    dt = units[0].weight.data.dtype
    try:
        module.eval()
        _SHAPE_TRACE = True
        for u in units:
            u._traced = None
        with no_grad():
            module(Tensor(np.zeros(input_shape, dt)))
    finally:
        _SHAPE_TRACE = prev
        module.train(was)
    for u in units:
        if u._traced is None:
            raise ValueError("build_scales: a spatial unit was not reached by the forward pass")
        u.build(*u._traced)
    return len(units)


class PReLU(Module):
    """Parametric ReLU with one slope per channel, initialised to 0.25 (He et al. 2015; PyTorch's
    default). arXiv:1904.05868 places a learnable activation after the binary convolution; here it
    is `PreActConv(prelu=True)`: BN -> Sign -> BinaryConv (-> Gamma) -> PReLU."""

    def __init__(self, num_channels: int, init: float = 0.25):
        super().__init__()
        self.weight = Parameter(np.full(num_channels, init, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return str(self.weight.shape[0])


def quantized_forward(unit: "PreActConv", h: Tensor) -> Tensor:
    """A binary unit's conv during the quantization stages (`unit.quant = (lo, hi, fraction)`).

    Modes: "real" = conv(ReLU(h), W) (the real twin's unit, with the latent weights and no bias);
    "act" = conv(sign(h), W) (binary activations, real weights: reverse-order initialisation);
    "binary" = the unit's binary conv (sign(W) with its XNOR or learned scale). Output channel o
    takes the `hi` mode when it is among the first round(fraction * Cout) channels of the unit's
    fixed order (`unit.quant_rank`, see `set_quantization`), else the `lo` mode; fraction 0 is
    exactly the `lo` network, fraction 1 exactly the `hi` one.
    """
    lo, hi, frac = unit.quant
    conv = unit.conv

    def path(mode):
        if mode == "binary":
            return conv(F.sign_ste(h), signed=True)
        a = F.relu(h) if mode == "real" else F.sign_ste(h)
        return F.conv2d(a, conv.weight, None, conv.stride, conv.padding)

    if frac >= 1:
        return path(hi)
    if frac <= 0:
        return path(lo)
    m = (unit.quant_rank < int(round(frac * unit.out_channels))).astype(h.dtype)
    return F.add(F.mul(path(hi), Tensor(m)), F.mul(path(lo), Tensor(1 - m)))


def set_quantization(net: Module, state: tuple[str, str, float] | None) -> None:
    """Set every binary PreActConv of `net` to the quantization `state` (lo, hi, fraction), or
    back to fully binary (None). Each unit's channel order is a fixed permutation drawn from a
    generator seeded with the CRC32 of the unit's name, so the channels binarized at a given
    fraction do not depend on the run's history (resuming replays them exactly)."""
    import zlib
    if state is not None:
        lo, hi, frac = state
        if lo not in QUANT_MODES or hi not in QUANT_MODES or not 0 <= float(frac) <= 1:
            raise ValueError(f"set_quantization: state must be (mode, mode, fraction in [0, 1]) with modes "
                             f"in {QUANT_MODES}, got {state!r}")
        state = (lo, hi, float(frac))
    for name, m in net.named_modules():
        if isinstance(m, PreActConv) and m.binary:
            if state is not None and getattr(m, "quant_rank", None) is None:
                m.quant_rank = np.random.default_rng(zlib.crc32(name.encode())).permutation(m.out_channels)
            m.quant = state
