"""XNOR-popcount ladder, rung 0: the float definitions, plus the shape rules and input checks.

Paper: Bulat & Tzimiropoulos, "Hierarchical Binary CNNs for Landmark Localization with Limited
Resources", section 3: with activations and weights binarized to {-1, +1}, a convolution's dot
products are sums of products of signs. These functions compute them in float64 from the float
inputs (``sign`` from ``bitpack``: sign(0) = +1), which is exact for every integer below 2**53,
so every packed rung above must equal them bit for bit.
"""

from __future__ import annotations

import numpy as np

from .bitpack import n_words, sign, tail_mask

__all__ = ["output_size", "xnor_gemm_ref", "conv2d_ref"]


def output_size(size: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution: ``floor((size + 2*padding - k) / stride) + 1`` (0 if negative)."""
    return max(0, (size + 2 * padding - k) // stride + 1)


def _check_int(v, name: str, lo: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return int(v)


def _check_bits(a, name: str, ndim: int, n_channels: int) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a uint64 ndarray, got {type(a).__name__}")
    if a.dtype != np.uint64:
        raise ValueError(f"{name} must have dtype uint64 (packed signs), got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    Cw = n_words(n_channels)
    if a.shape[-1] != Cw:
        raise ValueError(
            f"{name} has {a.shape[-1]} words on its last axis, expected ceil(n_channels/64) = "
            f"{Cw} for n_channels = {n_channels}"
        )
    if n_channels % 64 and a.size and np.any(a[..., -1] & ~tail_mask(n_channels)):
        raise ValueError(
            f"{name} has nonzero tail bits beyond channel {n_channels} (pack with pack_signs)"
        )
    return a


def _check_float(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return a


def _check_conv_args(x_bits, w_bits, n_channels, stride, padding):
    n_channels = _check_int(n_channels, "n_channels", 1)
    stride = _check_int(stride, "stride", 1)
    padding = _check_int(padding, "padding", 0)
    for a, name in ((x_bits, "x_bits"), (w_bits, "w_bits")):
        if not isinstance(a, np.ndarray) or a.ndim != 4:
            shape = getattr(a, "shape", type(a).__name__)
            raise ValueError(f"{name} must be a 4-d uint64 array, got {shape}")
    if x_bits.shape[-1] != w_bits.shape[-1]:
        raise ValueError(
            f"channel words differ: x_bits has {x_bits.shape[-1]} words per pixel, "
            f"w_bits has {w_bits.shape[-1]} per tap"
        )
    _check_bits(x_bits, "x_bits", 4, n_channels)
    _check_bits(w_bits, "w_bits", 4, n_channels)
    return n_channels, stride, padding


def _sign64(a: np.ndarray) -> np.ndarray:
    """``sign(a)`` in float64: products and sums of ±1 stay exact integers."""
    return sign(np.asarray(a, dtype=np.float64))


def xnor_gemm_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Definition: ``sign(a) @ sign(b).T``. a: (M, K), b: (N, K) float -> (M, N) int32."""
    a = _check_float(a, "a", 2)
    b = _check_float(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same K, got {a.shape[1]} and {b.shape[1]}")
    return (_sign64(a) @ _sign64(b).T).astype(np.int32)


def conv2d_ref(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Definition: convolution of sign(x) with sign(w), zero padding -> int32.

    x: (N, H, W, C) float, w: (Cout, KH, KW, C) float -> (N, OH, OW, Cout) int32 with
    ``out[n, i, j, o] = sum_{kh, kw, c} xs[n, s*i + kh - p, s*j + kw - p, c] * sign(w[o, kh, kw, c])``
    where ``xs = sign(x)`` inside the image and 0 outside (padding is applied AFTER the sign).
    """
    x = _check_float(x, "x", 4)
    w = _check_float(w, "w", 4)
    stride = _check_int(stride, "stride", 1)
    p = _check_int(padding, "padding", 0)
    N, H, W, C = x.shape
    Cout, KH, KW, Cin = w.shape
    if Cin != C:
        raise ValueError(f"x has {C} channels but w expects {Cin}")
    OH, OW = output_size(H, KH, stride, p), output_size(W, KW, stride, p)
    xs = np.zeros((N, H + 2 * p, W + 2 * p, C))
    xs[:, p : p + H, p : p + W] = _sign64(x)
    ws = _sign64(w)
    out = np.zeros((N, OH, OW, Cout))
    for kh in range(KH):
        for kw in range(KW):
            patch = xs[:, kh : kh + stride * (OH - 1) + 1 : stride, kw : kw + stride * (OW - 1) + 1 : stride]
            out += patch @ ws[:, kh, kw, :].T  # (N, OH, OW, C) @ (C, Cout)
    return out.astype(np.int32)
