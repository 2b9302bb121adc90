"""The maths of tinybin: every differentiable op as a forward/backward pair (CS231n style).

All image tensors are NHWC: x (N, H, W, C); convolution weights are (Cout, KH, KW, Cin).
Each op is a `Function` subclass whose `forward(ctx, *arrays)` computes the output from plain
arrays and saves what its `backward(ctx, dout)` needs; the public function below it wraps
`Function.apply` and checks its inputs.

The binary ops follow paper §4.1 and XNOR-Net (paper eq. 1):

    sign(x)      = +1 if x >= 0 else -1                 (never 0; one definition, `sign` below)
    sign_ste     forward sign(x), backward dout * 1{|x| <= 1}      (clipped straight-through)
    W_b          = sign(W) * alpha_o,  alpha_o = mean |W[o]|        (one scale per output channel)

A binary convolution is computed as `conv(sign(x), sign(W)) * alpha`: the conv of two ±1 tensors
is a sum of integers, which float32 GEMM computes exactly (|sum| < 2**24), so the float training
graph and the packed XNOR-popcount kernel of `tinybin.packed` produce the same numbers bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .kernels import batchnorm as _bn
from .kernels import conv as _conv
from .kernels import elementwise as _ew
from .kernels import im2col as _im
from .kernels import pool as _pool
from .kernels.elementwise import sign  # noqa: F401  (the one sign of the package, re-exported)
from .tensor import Context, Function, Tensor, is_grad_enabled


# ---- input checks --------------------------------------------------------------------------

def _arr(t) -> np.ndarray:
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def check_input(x, name: str, rank: int | None = None, channels: int | None = None,
                finite: bool = False) -> None:
    """Raise a ValueError saying what was expected and what came."""
    a = _arr(x)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: expected a float32 (or float64) array, got dtype {a.dtype}")
    if rank is not None and a.ndim != rank:
        what = {4: "(N, H, W, C)", 2: "(N, C)"}.get(rank, f"rank {rank}")
        raise ValueError(f"{name}: expected a rank-{rank} array {what}, got shape {a.shape}")
    if channels is not None and a.shape[-1] != channels:
        raise ValueError(f"{name}: expected {channels} channels in the last axis (NHWC), "
                         f"got shape {a.shape}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf values")


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back to `shape`."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and grad.shape[i] != 1:
            grad = grad.sum(axis=i, keepdims=True)
    return grad


def _needs_grad(ctx: Context) -> bool:
    return is_grad_enabled() and any(ctx.needs_input_grad)


# ---- elementwise and reductions --------------------------------------------------------------

class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return _ew.add(a, b)                                        # pieces when shapes match

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(g, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(-g, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return _unbroadcast(g * b, a.shape), _unbroadcast(g * a, b.shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        if ctx.axis is not None and not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        return np.broadcast_to(g, ctx.shape).copy()


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape=()):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


def add(a: Tensor, b: Tensor) -> Tensor:
    """a + b with NumPy broadcasting (residual sums of paper Fig. 7)."""
    return Add.apply(a, b)


def sub(a: Tensor, b: Tensor) -> Tensor:
    return Sub.apply(a, b)


def mul(a: Tensor, b: Tensor) -> Tensor:
    return Mul.apply(a, b)


def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - mirrors numpy
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    n = x.data.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    return Sum.apply(x, axis=axis, keepdims=keepdims) * (1.0 / n)


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    return Reshape.apply(x, shape=tuple(shape))


# ---- activations ---------------------------------------------------------------------------

class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = _ew.relu(x)                                             # max(x, 0), in pieces
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return _ew.relu_backward(g, x)                              # g * 1{x > 0}


class SignSTE(Function):
    """Forward sign(x); backward the clipped straight-through estimator dout * 1{|x| <= 1}."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return _ew.ste_backward(g, x)                               # g * 1{|x| <= 1}


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = sigmoid_np(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * y * (1 - y)


def sigmoid_np(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow for |x| up to float max)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        m = x.max(axis=axis, keepdims=True)
        z = x - m
        y = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g - np.exp(y) * g.sum(axis=ctx.axis, keepdims=True)


def relu(x: Tensor) -> Tensor:
    """max(x, 0); its gradient is 1{x > 0}."""
    return ReLU.apply(x)


def sign_ste(x: Tensor) -> Tensor:
    """Binary activation (paper §4.1): forward sign(x) in {-1, +1}; backward dout * 1{|x| <= 1}."""
    return SignSTE.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis` (the channel axis by default), computed stably."""
    return LogSoftmax.apply(x, axis=axis)


# ---- convolution ---------------------------------------------------------------------------

def conv2d_np(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
              stride: int = 1, padding: int = 0) -> np.ndarray:
    """Array-level NHWC convolution (no graph): blocked im2col + BLAS GEMM (kernels/conv.py)."""
    N, H, W, C = x.shape
    Cout, KH, KW, _ = w.shape
    OH, OW = _im.out_size(H, KH, stride, padding), _im.out_size(W, KW, stride, padding)
    out = _conv.conv_forward(x, w.reshape(Cout, -1), KH, KW, stride, padding, bias=b)  # (N*OH*OW, Cout)
    return out.reshape(N, OH, OW, Cout)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b=None, stride=1, padding=0):
        if _needs_grad(ctx):
            ctx.save_for_backward(x, w)  # im2col is recomputed block by block in the backward
            ctx.geom = (stride, padding)
        return conv2d_np(x, w, b, stride, padding)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        stride, padding = ctx.geom
        Cout, KH, KW, _ = w.shape
        g2 = g.reshape(-1, Cout)                                    # (N*OH*OW, Cout)
        dx, dw = _conv.conv_backward(x, g2, w.reshape(Cout, -1), KH, KW, stride, padding,
                                     need_dx=ctx.needs_input_grad[0], need_dw=ctx.needs_input_grad[1])
        dw = None if dw is None else dw.reshape(w.shape)
        db = g2.sum(axis=0) if len(ctx.parents) > 2 and ctx.needs_input_grad[2] else None
        return dx, dw, db


def _check_conv(x, w, b, stride, padding):
    check_input(x, "conv2d input", rank=4)
    check_input(w, "conv2d weight", rank=4)
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"conv2d: input has {x.shape[-1]} channels (NHWC, last axis) but the weight "
                         f"(Cout, KH, KW, Cin) expects Cin={w.shape[-1]}; shapes {x.shape} and {w.shape}")
    if x.dtype != w.dtype:
        raise ValueError(f"conv2d: input dtype {x.dtype} and weight dtype {w.dtype} differ")
    if b is not None and _arr(b).shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},), got {_arr(b).shape}")
    if int(stride) < 1 or int(padding) < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    H, W = x.shape[1] + 2 * padding, x.shape[2] + 2 * padding
    if H < w.shape[1] or W < w.shape[2]:
        raise ValueError(f"conv2d: padded input {H}x{W} is smaller than the kernel {w.shape[1]}x{w.shape[2]}")


def conv2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride: int = 1, padding: int = 0) -> Tensor:
    """2-D convolution (cross-correlation), NHWC.

    x (N, H, W, Cin), w (Cout, KH, KW, Cin), b (Cout,) or None ->
    y (N, OH, OW, Cout), OH = (H + 2*padding - KH) // stride + 1, zero padding:

        y[n, oy, ox, o] = b[o] + sum_{i, j, c} x_pad[n, oy*stride + i, ox*stride + j, c] * w[o, i, j, c]
    """
    _check_conv(x, w, b, stride, padding)
    if b is None:
        return Conv2d.apply(x, w, stride=int(stride), padding=int(padding))
    return Conv2d.apply(x, w, b, stride=int(stride), padding=int(padding))


# ---- binary weights --------------------------------------------------------------------------

def weight_alpha(w: np.ndarray) -> np.ndarray:
    """XNOR-Net scale (paper eq. 1): alpha_o = mean |W[o, :, :, :]|, one per output channel."""
    return np.abs(w).mean(axis=(1, 2, 3), dtype=np.float64).astype(w.dtype)


class BinarizeWeights(Function):
    @staticmethod
    def forward(ctx, w):
        return sign(w) * weight_alpha(w)[:, None, None, None]

    @staticmethod
    def backward(ctx, g):
        return g  # straight through: dL/dW := dL/dW_b


def binarize_weights(w: Tensor) -> Tensor:
    """XNOR-Net weights (paper eq. 1): W_b = sign(W) * alpha, alpha_o = mean|W[o]|.

    Backward: the plain straight-through estimator, dL/dW = dL/dW_b (alpha is treated as a
    constant and the sign as the identity), as in the XNOR-Net reference training.
    """
    check_input(w, "binarize_weights", rank=4)
    return BinarizeWeights.apply(w)


# A binary conv whose input is the output of a sign (`signed=True`, as `nn.PreActConv` passes)
# runs its forward on the packed engine's XNOR-popcount kernel, in training too: the float GEMM
# of ±1 inputs and ±1 weights sums integers, exact in float32 whatever the order (|sum| <= K <
# 2**24), and both paths multiply that integer by alpha with one float32 rounding, so the outputs
# are bit for bit equal (tests/test_functional.py) at a small fraction of the GEMM's cost. The
# backward stays float: the output gradient is not binary. False: always the float GEMM.
# Small convolutions stay on the float GEMM too: packing both operands costs a fixed ~0.1-0.2 ms,
# and an inner dimension KH*KW*Cin under 64 leaves most of each 64-bit word empty. The cut-offs
# come from benchmarks/bench_packed_forward.py (batch 16, one thread); either path gives the same
# numbers, so they only move time.
PACKED_FORWARD = True
PACKED_MIN_K = 64                # KH * KW * Cin
PACKED_MIN_WORK = 10_000_000     # multiply-adds of the float GEMM: N * OH * OW * K * Cout


def _packed_forward_ok(x: np.ndarray, rows: int, k: int, cout: int) -> bool:
    from .kernels import xnor
    return (PACKED_FORWARD and x.dtype == np.float32 and k >= PACKED_MIN_K and rows * k * cout >= PACKED_MIN_WORK
            and xnor.HAVE_FAST_KERNEL)


def _packed_sign_conv(x, sw, alpha, stride, padding) -> np.ndarray:
    """conv(x, sw) * alpha for x and sw of ±1 values, on packed bits -> (N, OH, OW, Cout) float32."""
    from .kernels import bitpack, xnor
    prepared = xnor.prepare_weights(bitpack.pack_signs(sw), x.shape[-1])
    return xnor.conv2d_prepared(bitpack.pack_signs(x), prepared, stride, padding, alpha=alpha)


class BinaryConv2d(Function):
    @staticmethod
    def forward(ctx, x, w, stride=1, padding=0, signed=False, scaled=True):
        N, H, W, C = x.shape
        Cout, KH, KW, _ = w.shape
        OH, OW = _im.out_size(H, KH, stride, padding), _im.out_size(W, KW, stride, padding)
        alpha = weight_alpha(w) if scaled else np.ones(Cout, w.dtype)   # x 1.0: exact
        sw = sign(w)
        if signed and _packed_forward_ok(x, N * OH * OW, KH * KW * C, Cout):
            out = _packed_sign_conv(x, sw, alpha, stride, padding)
        else:
            # integer sums (exact in float32), then one float multiply by alpha, as the packed kernel
            out = _conv.conv_forward(x, sw.reshape(Cout, -1), KH, KW, stride, padding, scale=alpha)
            out = out.reshape(N, OH, OW, Cout)
        if _needs_grad(ctx):
            ctx.save_for_backward(x, sw, alpha)
            ctx.geom = (stride, padding)
        return out

    @staticmethod
    def backward(ctx, g):
        x, sw, alpha = ctx.saved
        stride, padding = ctx.geom
        Cout, KH, KW, _ = sw.shape
        g2 = g.reshape(-1, Cout)
        wb = (sw * alpha[:, None, None, None]).reshape(Cout, -1)
        # STE: dL/dW = dL/dW_b
        dx, dw = _conv.conv_backward(x, g2, wb, KH, KW, stride, padding,
                                     need_dx=ctx.needs_input_grad[0], need_dw=ctx.needs_input_grad[1])
        return dx, (None if dw is None else dw.reshape(sw.shape))


def binary_conv2d(x: Tensor, w: Tensor, stride: int = 1, padding: int = 0, signed: bool = False,
                  alpha: bool = True) -> Tensor:
    """Convolution with XNOR-Net binary weights: conv2d(x, sign(W)) * alpha (paper eq. 1).

    The same function as `conv2d(x, binarize_weights(w))`, but computed as an integer-valued
    conv followed by one multiply per output, so that with x = sign(...) it equals the packed
    XNOR-popcount result times alpha exactly. Gradients: dL/dx through W_b = sign(W)*alpha;
    dL/dW = dL/dW_b (straight-through, as `binarize_weights`).

    signed=True promises that every value of x is +1 or -1 (x is the output of a sign); the
    forward of a large enough conv then runs on the XNOR-popcount kernel (`PACKED_FORWARD`,
    `PACKED_MIN_K`, `PACKED_MIN_WORK`), with the same result.

    alpha=False: no scale, conv2d(x, sign(W)) -- the same numbers and gradients as
    `conv2d(x, sign_weights(w))` (XNOR-Net++'s conv before its learned Gamma), with the packed
    forward for signed inputs.
    """
    _check_conv(x, w, None, stride, padding)
    return BinaryConv2d.apply(x, w, stride=int(stride), padding=int(padding), signed=bool(signed),
                              scaled=bool(alpha))


# ---- batch normalisation --------------------------------------------------------------------

def bn_fold(gamma: np.ndarray, beta: np.ndarray, mean_: np.ndarray, var: np.ndarray,
            eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as one affine map y = x * scale + shift (float32 arithmetic).

    scale = gamma / sqrt(var + eps), shift = beta - mean * scale. The packed network folds the
    BN in front of a sign with exactly these arrays, so both paths compare the same numbers.
    """
    dt = gamma.dtype
    scale = (gamma / np.sqrt(var.astype(dt) + dt.type(eps))).astype(dt)
    shift = (beta - mean_.astype(dt) * scale).astype(dt)
    return scale, shift


def _batch_stats(x2, running_mean, running_var, momentum, eps):
    """(mean, inv_std) float64 of the rows of x2 (one pass, kernels/batchnorm.py); the running
    statistics, when given, updated in place (unbiased variance, as PyTorch)."""
    M = x2.shape[0]
    mu, var = _bn.stats(x2)
    inv_std = 1.0 / np.sqrt(var + eps)
    if running_mean is not None:
        unbiased = var * (M / max(M - 1, 1))
        running_mean *= 1 - momentum
        running_mean += (momentum * mu).astype(running_mean.dtype)
        running_var *= 1 - momentum
        running_var += (momentum * unbiased).astype(running_var.dtype)
    return mu, inv_std


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        C = x.shape[-1]
        x2 = x.reshape(-1, C)
        if training:
            mu, inv_std = _batch_stats(x2, running_mean, running_var, momentum, eps)
            y = _bn.normalize(x2, mu, inv_std, gamma, beta)         # (x - mu) * inv_std * gamma + beta
            if _needs_grad(ctx):
                ctx.save_for_backward(x2, mu, inv_std, gamma)       # xhat is recomputed from x
            ctx.training = True
        else:
            scale, shift = bn_fold(gamma, beta, running_mean, running_var, eps)
            y = x2 * scale + shift
            if _needs_grad(ctx):
                inv_std = (1.0 / np.sqrt(running_var.astype(x.dtype) + eps)).astype(x.dtype)
                ctx.save_for_backward(x2, running_mean, inv_std, gamma)
            ctx.training = False
        ctx.shape = x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x2, mean_, inv_std, gamma = ctx.saved
        C = ctx.shape[-1]
        g2 = g.reshape(-1, C)
        if ctx.training:  # dx = gamma*inv_std*(g - mean(g) - xhat*mean(g*xhat)), kernels/batchnorm.py
            dx, dgamma, dbeta = _bn.backward(g2, x2, mean_, inv_std, gamma)
        else:
            xhat = (x2 - mean_) * inv_std
            dgamma = (g2 * xhat).sum(axis=0)
            dbeta = g2.sum(axis=0)
            dx = g2 * (gamma * inv_std)
        return dx.reshape(ctx.shape), dgamma, dbeta


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, running_mean: np.ndarray | None = None,
               running_var: np.ndarray | None = None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every axis but the last (channels), NHWC.

    Training: y = (x - mean_b) / sqrt(var_b + eps) * gamma + beta with batch statistics, and the
    running statistics updated in place (running = (1 - momentum) * running + momentum * batch,
    unbiased variance, as PyTorch). Eval: y = x * scale + shift from the running statistics
    (`bn_fold`).
    """
    C = gamma.shape[0]
    check_input(x, "batch_norm input", channels=C)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm in eval mode needs running_mean and running_var")
    return BatchNorm.apply(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)


class BatchNormAct(Function):
    """Training-mode BatchNorm fused with the activation behind it (kernels/batchnorm.py)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean=None, running_var=None, act="sign",
                momentum=0.1, eps=1e-5):
        C = x.shape[-1]
        x2 = x.reshape(-1, C)
        mu, inv_std = _batch_stats(x2, running_mean, running_var, momentum, eps)
        y = _bn.normalize_act(x2, mu, inv_std, gamma, beta, act)  # act(h), h never stored
        if _needs_grad(ctx):
            ctx.save_for_backward(x2, mu, inv_std, gamma, beta)     # h is recomputed from x
            ctx.act, ctx.shape = act, x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x2, mu, inv_std, gamma, beta = ctx.saved
        g2 = g.reshape(-1, ctx.shape[-1])
        dx, dgamma, dbeta = _bn.act_backward(g2, x2, mu, inv_std, gamma, beta, ctx.act)
        return dx.reshape(ctx.shape), dgamma, dbeta


def batch_norm_act(x: Tensor, gamma: Tensor, beta: Tensor, running_mean: np.ndarray | None = None,
                   running_var: np.ndarray | None = None, act: str = "sign",
                   momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """`sign_ste(batch_norm(x, ...))` (act="sign") or `relu(batch_norm(x, ...))` (act="relu") in
    training mode, as one op: the same numbers bit for bit, in two passes over x forward (statistics;
    normalise + activation) and two backward (reductions; dx), h = BN(x) never stored.

    Forward: act(h), h = (x - mean_b) * inv_std * gamma + beta (batch statistics, running ones
    updated in place as `batch_norm`). Backward: g masked by 1{|h| <= 1} (sign, the clipped STE)
    or 1{h > 0} (ReLU), then the BatchNorm backward of `batch_norm`.
    """
    C = gamma.shape[0]
    check_input(x, "batch_norm_act input", channels=C)
    if act not in _bn.ACTS:
        raise ValueError(f"batch_norm_act: act must be one of {_bn.ACTS}, got {act!r}")
    return BatchNormAct.apply(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                              act=act, momentum=momentum, eps=eps)


# ---- pooling, upsampling, concatenation -------------------------------------------------------

class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, k=2, s=2):
        out, idx = _pool.maxpool(x, k, s)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.k, ctx.s = x.shape, k, s
        return out

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved
        return _pool.maxpool_backward(g, idx, ctx.shape)          # scatter to the winners


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, k=2, s=2):
        ctx.shape, ctx.k, ctx.s = x.shape, k, s
        return _pool.avgpool(x, k, s)

    @staticmethod
    def backward(ctx, g):
        return _pool.avgpool_backward(g, ctx.shape, ctx.k, ctx.s)


def _check_pool(x, k, s, name):
    check_input(x, name, rank=4)
    if k < 1 or s < 1:
        raise ValueError(f"{name}: kernel and stride must be >= 1, got {k}, {s}")
    if x.shape[1] < k or x.shape[2] < k:
        raise ValueError(f"{name}: input {x.shape[1]}x{x.shape[2]} is smaller than the {k}x{k} window")


def max_pool2d(x: Tensor, kernel_size: int = 2, stride: int | None = None) -> Tensor:
    """Max over k x k windows, stride s (default k), floor mode: OH = (H - k) // s + 1."""
    s = kernel_size if stride is None else stride
    _check_pool(x, kernel_size, s, "max_pool2d")
    return MaxPool2d.apply(x, k=int(kernel_size), s=int(s))


def avg_pool2d(x: Tensor, kernel_size: int = 2, stride: int | None = None) -> Tensor:
    """Mean over k x k windows, stride s (default k), floor mode (paper Table 4 'AvgPool')."""
    s = kernel_size if stride is None else stride
    _check_pool(x, kernel_size, s, "avg_pool2d")
    return AvgPool2d.apply(x, k=int(kernel_size), s=int(s))


class Upsample(Function):
    @staticmethod
    def forward(ctx, x, scale=2, mode="nearest"):
        ctx.shape, ctx.scale, ctx.mode = x.shape, scale, mode
        if mode == "nearest":
            return _pool.upsample_nearest(x, scale)
        return _pool.upsample_bilinear(x, scale)

    @staticmethod
    def backward(ctx, g):
        if ctx.mode == "nearest":
            return _pool.upsample_nearest_backward(g, ctx.scale)
        return _pool.upsample_bilinear_backward(g, ctx.shape, ctx.scale)


def upsample(x: Tensor, scale: int = 2, mode: str = "nearest") -> Tensor:
    """Integer-factor upsampling, NHWC. 'nearest' repeats pixels (the hourglass); 'bilinear'
    uses PyTorch's align_corners=False sampling (the multi-scale blocks, paper Fig. 7c/7d)."""
    check_input(x, "upsample", rank=4)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"upsample: scale must be a positive integer, got {scale}")
    return Upsample.apply(x, scale=int(scale), mode=mode)


class Concat(Function):
    @staticmethod
    def forward(ctx, *xs, axis=-1):
        ctx.sizes = [a.shape[axis] for a in xs]
        ctx.axis = axis
        if axis in (-1, xs[0].ndim - 1):
            return _ew.concat_last(xs)                              # row pieces (Numba)
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        idx = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.ascontiguousarray(p) for p in np.split(g, idx, axis=ctx.axis))


def concat(xs: Sequence[Tensor], axis: int = -1) -> Tensor:
    """Concatenate along the channel axis (NHWC: the last); the hierarchical block's 'C'."""
    if len(xs) == 0:
        raise ValueError("concat: needs at least one tensor")
    ref = _arr(xs[0]).shape
    for i, t in enumerate(xs):
        s = _arr(t).shape
        if len(s) != len(ref) or any(a != b for k, (a, b) in enumerate(zip(s, ref))
                                     if k != (axis % len(ref))):
            raise ValueError(f"concat: tensor {i} has shape {s}, incompatible with {ref} "
                             f"outside axis {axis}")
    return Concat.apply(*xs, axis=axis)


# ---- beyond the paper: learned scales (XNOR-Net++) and PReLU (Bulat et al. 2019) -------------
# Appended ops, each a forward/backward pair like the ones above. `tinybin.nn` builds the learned
# scale unit and PReLU from them; `tinybin.packed` reuses `rank1_product` and `prelu_np`, so the
# packed network multiplies by exactly the same float32 numbers as the training graph.

class SignWeights(Function):
    @staticmethod
    def forward(ctx, w):
        return sign(w)

    @staticmethod
    def backward(ctx, g):
        return g  # straight through, as binarize_weights: dL/dW := dL/d sign(W)


def sign_weights(w: Tensor) -> Tensor:
    """Binary weights without a scale (XNOR-Net++, arXiv:1909.13863, eq. 4): forward sign(W) in
    {-1, +1} (sign(0) = +1); backward the plain straight-through estimator dL/dW = dL/d sign(W),
    the same estimator `binarize_weights` uses. The scale lives in a learned Gamma after the conv."""
    check_input(w, "sign_weights", rank=4)
    return SignWeights.apply(w)


def rank1_product(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Gamma = a (x) b (x) c as an (OH, OW, Cout) array: Gamma[y, x, o] = (b[y] * c[x]) * a[o].

    a (Cout,) channel, b (OH,) height, c (OW,) width factors. The float32 rounding order is fixed
    here (height times width first, then channel); the packed unit calls this same function."""
    return (b[:, None, None] * c[None, :, None]) * a[None, None, :]


class Rank1Scale(Function):
    @staticmethod
    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b, c)
        return rank1_product(a, b, c)

    @staticmethod
    def backward(ctx, g):
        a, b, c = ctx.saved
        da = np.einsum("yxo,y,x->o", g, b, c)
        db = np.einsum("yxo,x,o->y", g, c, a)
        dc = np.einsum("yxo,y,o->x", g, b, a)
        return da, db, dc


def rank1_scale(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """XNOR-Net++'s rank-1 scale (arXiv:1909.13863, §3.2 "Gamma = alpha (x) beta (x) gamma"):
    a (Cout,), b (OH,), c (OW,) -> Gamma (OH, OW, Cout), Gamma[y, x, o] = b[y] c[x] a[o].

    Gradients: dL/da_o = sum_yx g b_y c_x, dL/db_y = sum_xo g c_x a_o, dL/dc_x = sum_yo g b_y a_o.
    Cout + OH + OW numbers instead of Cout * OH * OW for the full spatial scale."""
    for t, n in ((a, "rank1_scale channel factor"), (b, "rank1_scale height factor"),
                 (c, "rank1_scale width factor")):
        check_input(t, n, rank=1)
    return Rank1Scale.apply(a, b, c)


def prelu_np(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """PReLU on arrays: x where x >= 0, else a * x (a per channel, the last axis); one Numba pass
    (`kernels.elementwise.prelu`, equal to `prelu_ref` bit for bit)."""
    return _ew.prelu(x, a)


class PReLU(Function):
    @staticmethod
    def forward(ctx, x, a):
        ctx.save_for_backward(x, a)
        return prelu_np(x, a)

    @staticmethod
    def backward(ctx, g):
        x, a = ctx.saved
        return _ew.prelu_backward(g, x, a)                          # one pass, dx and da


def prelu(x: Tensor, a: Tensor) -> Tensor:
    """Parametric ReLU (He et al. 2015), one slope per channel (NHWC, last axis):

        y = x if x >= 0 else a_c * x;   dL/dx = g * (1 if x >= 0 else a_c);
        dL/da_c = sum_{x < 0} g * x

    The learnable activation after the binary convolution of Bulat et al., "Improved training of
    binary networks for human pose estimation and image recognition" (arXiv:1904.05868)."""
    C = _arr(a).shape[0] if _arr(a).ndim == 1 else -1
    check_input(x, "prelu input", channels=C if C > 0 else None)
    if _arr(a).ndim != 1:
        raise ValueError(f"prelu: slopes must have shape (C,), got {_arr(a).shape}")
    return PReLU.apply(x, a)
