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

    def forward(self, x: Tensor) -> Tensor:
        return F.binary_conv2d(x, self.weight, self.stride, self.padding)


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


class PreActConv(Module):
    """The paper's pre-activation unit `P(cin -> cout, k)` as one module.

    binary=True:  BatchNorm(cin) -> Sign -> BinaryConv k x k (XNOR weights, no bias)   (§4.1)
    binary=False: BatchNorm(cin) -> ReLU -> Conv k x k (bias)                           (real twin)
    relu_after_conv: append a ReLU after the convolution (the "+ReLU" variant of Table 4).
    Padding is k // 2 (zero padding of the signed input), so stride 1 keeps H and W.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 binary: bool = True, relu_after_conv: bool = False, rng=None):
        super().__init__()
        self.binary, self.relu_after_conv = binary, relu_after_conv
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.bn = BatchNorm2d(in_channels)
        if binary:
            self.conv = BinaryConv2d(in_channels, out_channels, kernel_size, stride, rng=rng)
        else:
            self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, bias=True, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        h = self.bn(x)
        h = F.sign_ste(h) if self.binary else F.relu(h)
        y = self.conv(h)
        return F.relu(y) if self.relu_after_conv else y

    def extra_repr(self):
        kind = "binary" if self.binary else "real"
        return (f"{kind} {self.in_channels}->{self.out_channels}, k={self.kernel_size}"
                + (", +relu" if self.relu_after_conv else ""))
