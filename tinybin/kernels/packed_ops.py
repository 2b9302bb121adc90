"""Deployment kernels for the float operations of a packed network, each beside its NumPy reference.

A packed network (``tinybin.packed``) runs the binary units on bits; what stays float (pooling
between hourglass levels) must give the SAME numbers as the float network, bit for bit, because
every value later goes through a sign. The kernels here are therefore exact twins of the
training ops, only faster for inference: no argmax indices kept for a backward pass, output rows
in parallel, the channel loop innermost (contiguous in NHWC, vectorised by LLVM).

    max_pool2d_ref   NumPy definition (sliding windows, max over the window)
    max_pool2d       Numba kernel: same scan order and the same strict ``>`` as the training
                     kernel (``kernels.pool``), so even signed zeros come out identical
    affine_ref       NumPy ``x * scale + shift`` per channel in float32: eval-mode BatchNorm
    affine           Numba kernel: one pass, the product and the sum rounded separately (no FMA,
                     no fast-math), i.e. exactly NumPy's two float32 operations
"""
from __future__ import annotations

import numpy as np
from numba import config, njit, prange

from ..threads import serial_if_small

__all__ = ["max_pool2d_ref", "max_pool2d", "affine_ref", "affine"]


def _pool_out(size: int, k: int, s: int) -> int:
    return (size - k) // s + 1


def _check(x, k, s) -> tuple[np.ndarray, int, int]:
    x = np.asarray(x)
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"max_pool2d: expected a float (N, H, W, C) array, got {x.dtype} {x.shape}")
    for v, name in ((k, "kernel_size"), (s, "stride")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"max_pool2d: {name} must be an integer >= 1, got {v!r}")
    if x.shape[1] < k or x.shape[2] < k:
        raise ValueError(f"max_pool2d: input {x.shape[1]}x{x.shape[2]} is smaller than the {k}x{k} window")
    return x, int(k), int(s)


def max_pool2d_ref(x: np.ndarray, k: int = 2, s: int = 2) -> np.ndarray:
    """Max over k x k windows with stride s, no padding. (N, H, W, C) -> (N, OH, OW, C)."""
    x, k, s = _check(x, k, s)
    N, H, W, C = x.shape
    OH, OW = _pool_out(H, k, s), _pool_out(W, k, s)
    out = x[:, 0:s * (OH - 1) + 1:s, 0:s * (OW - 1) + 1:s].copy()
    for i in range(k):
        for j in range(k):
            v = x[:, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s]
            np.copyto(out, v, where=v > out)  # strict >, scan order (i, j): the first max wins
    return out


@njit(parallel=True, cache=True)
def _max_pool_kernel(x, k, s, out):
    """Output rows in parallel; per output pixel the window's first tap is copied, then each
    further tap replaces the channels where it is strictly larger (channel loop innermost)."""
    N, OH, OW, C = out.shape
    for t in prange(N * OH):
        n = t // OH
        oy = t - n * OH
        for ox in range(OW):
            y0 = oy * s
            x0 = ox * s
            for c in range(C):
                out[n, oy, ox, c] = x[n, y0, x0, c]
            for i in range(k):
                for j in range(k):
                    if i == 0 and j == 0:
                        continue
                    for c in range(C):
                        v = x[n, y0 + i, x0 + j, c]
                        if v > out[n, oy, ox, c]:
                            out[n, oy, ox, c] = v


def max_pool2d(x: np.ndarray, k: int = 2, s: int = 2) -> np.ndarray:
    """Inference max pooling, equal to ``max_pool2d_ref`` and to the training op bit for bit.

    x: (N, H, W, C) float -> (N, OH, OW, C), OH = (H - k) // s + 1.
    """
    x, k, s = _check(x, k, s)
    if config.DISABLE_JIT:
        return max_pool2d_ref(x, k, s)
    N, H, W, C = x.shape
    out = np.empty((N, _pool_out(H, k, s), _pool_out(W, k, s), C), dtype=x.dtype)
    if out.size:
        with serial_if_small(out.size * k * k):
            _max_pool_kernel(np.ascontiguousarray(x), k, s, out)
    return out


def _check_affine(x, scale, shift):
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim < 1:
        raise ValueError(f"affine: expected a float32 (..., C) array, got {x.dtype} {x.shape}")
    C = x.shape[-1]
    s = np.ascontiguousarray(scale, dtype=np.float32)
    b = np.ascontiguousarray(shift, dtype=np.float32)
    if s.shape != (C,) or b.shape != (C,):
        raise ValueError(f"affine: scale and shift must have shape ({C},), got {s.shape}, {b.shape}")
    return x, s, b


def affine_ref(x: np.ndarray, scale, shift) -> np.ndarray:
    """``x * scale + shift`` along the last axis in float32 (NumPy: two rounded operations)."""
    x, s, b = _check_affine(x, scale, shift)
    return x * s + b


@njit(parallel=True, cache=True)
def _affine_kernel(x, s, b, out):
    """Rows in parallel, channels innermost (vectorised); mul then add, each rounded to float32."""
    R, C = x.shape
    for r in prange(R):
        for c in range(C):
            out[r, c] = x[r, c] * s[c] + b[c]


def affine(x: np.ndarray, scale, shift) -> np.ndarray:
    """Eval-mode BatchNorm ``x * scale + shift``, equal to ``affine_ref`` bit for bit.

    x: (..., C) float32; scale, shift: (C,) -> float32 (..., C).
    """
    x, s, b = _check_affine(x, scale, shift)
    if config.DISABLE_JIT:
        return affine_ref(x, s, b)
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(x2)
    if out.size:
        with serial_if_small(out.size):
            _affine_kernel(x2, s, b, out)
    return out.reshape(x.shape)
