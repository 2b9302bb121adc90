"""Pooling and upsampling on NHWC arrays: NumPy references and Numba kernels.

Pooling windows are k x k with stride s and no padding, in "floor" mode (PyTorch's default):
OH = (H - k) // s + 1, so a trailing odd row/column is dropped. Max pooling records, per output
value, the flat (y*W + x) index of the winner so the backward can route the gradient to it (the
first maximum wins ties, as in `np.argmax`).

Bilinear x2 upsampling follows PyTorch's `align_corners=False`: output pixel o samples the input at
`(o + 0.5) / 2 - 0.5`, clamped at 0, i.e. weights (0.25, 0.75) / (0.75, 0.25) between neighbours,
with the border pixel repeated. It is used inside the multi-scale blocks (paper Fig. 7c/7d);
the hourglass itself uses nearest upsampling.

Optimizations (Numba rungs): inner loop over contiguous channels; serial on purpose (memory-bound
copies; see `im2col.py` for the measurement against a parallel region).
"""
from __future__ import annotations

import numpy as np
from numba import njit


def pool_out(h: int, k: int, s: int) -> int:
    return (h - k) // s + 1


# ---- max pool -------------------------------------------------------------------------------

def maxpool_ref(x: np.ndarray, k: int, s: int):
    """x (N, H, W, C) -> (out (N, OH, OW, C), argmax flat index y*W+x (N, OH, OW, C))."""
    N, H, W, C = x.shape
    OH, OW = pool_out(H, k, s), pool_out(W, k, s)
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s][:, :OH, :OW]
    flat = win.reshape(N, OH, OW, C, k * k)
    a = flat.argmax(-1)
    out = np.take_along_axis(flat, a[..., None], -1)[..., 0]
    oy = np.arange(OH)[None, :, None, None] * s + a // k
    ox = np.arange(OW)[None, None, :, None] * s + a % k
    return out, (oy * W + ox).astype(np.int64)


@njit(cache=True)
def _maxpool(x, k, s, OH, OW, out, idx):
    N, H, W, C = x.shape
    for row in range(N * OH):
        n = row // OH
        oy = row - n * OH
        for ox in range(OW):
            for c in range(C):
                best = x[n, oy * s, ox * s, c]
                bi = (oy * s) * W + ox * s
                for i in range(k):
                    for j in range(k):
                        v = x[n, oy * s + i, ox * s + j, c]
                        if v > best:
                            best = v
                            bi = (oy * s + i) * W + ox * s + j
                out[n, oy, ox, c] = best
                idx[n, oy, ox, c] = bi


def maxpool(x: np.ndarray, k: int = 2, s: int = 2):
    N, H, W, C = x.shape
    OH, OW = pool_out(H, k, s), pool_out(W, k, s)
    out = np.empty((N, OH, OW, C), dtype=x.dtype)
    idx = np.empty((N, OH, OW, C), dtype=np.int64)
    _maxpool(np.ascontiguousarray(x), k, s, OH, OW, out, idx)
    return out, idx


def maxpool_backward_ref(dout: np.ndarray, idx: np.ndarray, shape: tuple) -> np.ndarray:
    """Route each output gradient to its winner (overlapping windows accumulate). Pure NumPy."""
    N, H, W, C = shape
    dx = np.zeros((N, H * W, C), dtype=dout.dtype)
    n_i = np.arange(N)[:, None, None, None]
    c_i = np.arange(C)[None, None, None, :]
    np.add.at(dx, (np.broadcast_to(n_i, idx.shape), idx, np.broadcast_to(c_i, idx.shape)), dout)
    return dx.reshape(N, H, W, C)


@njit(cache=True, nogil=True)
def _maxpool_backward(dout, idx, dx):
    N, OH, OW, C = dout.shape
    W = dx.shape[2]
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    p = idx[n, oy, ox, c]
                    dx[n, p // W, p - (p // W) * W, c] += dout[n, oy, ox, c]


def maxpool_backward(dout: np.ndarray, idx: np.ndarray, shape: tuple) -> np.ndarray:
    """Route each output gradient to its winner, one pass (Numba); overlapping windows add up in
    output order, so the result equals `maxpool_backward_ref` up to the order of those sums."""
    dx = np.zeros(shape, dtype=dout.dtype)
    _maxpool_backward(np.ascontiguousarray(dout), np.ascontiguousarray(idx), dx)
    return dx


# ---- average pool ---------------------------------------------------------------------------

def avgpool_ref(x: np.ndarray, k: int, s: int) -> np.ndarray:
    N, H, W, C = x.shape
    OH, OW = pool_out(H, k, s), pool_out(W, k, s)
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s][:, :OH, :OW]
    return win.mean(axis=(-2, -1)).astype(x.dtype)


@njit(cache=True)
def _avgpool(x, k, s, OH, OW, out):
    N, H, W, C = x.shape
    inv = 1.0 / (k * k)
    for row in range(N * OH):
        n = row // OH
        oy = row - n * OH
        for ox in range(OW):
            for c in range(C):
                acc = 0.0
                for i in range(k):
                    for j in range(k):
                        acc += x[n, oy * s + i, ox * s + j, c]
                out[n, oy, ox, c] = acc * inv


def avgpool(x: np.ndarray, k: int = 2, s: int = 2) -> np.ndarray:
    N, H, W, C = x.shape
    OH, OW = pool_out(H, k, s), pool_out(W, k, s)
    out = np.empty((N, OH, OW, C), dtype=x.dtype)
    _avgpool(np.ascontiguousarray(x), k, s, OH, OW, out)
    return out


def avgpool_backward(dout: np.ndarray, shape: tuple, k: int, s: int) -> np.ndarray:
    N, H, W, C = shape
    OH, OW = dout.shape[1:3]
    dx = np.zeros(shape, dtype=dout.dtype)
    g = dout / (k * k)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + s * OH:s, j:j + s * OW:s, :] += g
    return dx


# ---- upsampling -----------------------------------------------------------------------------

def upsample_nearest_ref(x: np.ndarray, f: int = 2) -> np.ndarray:
    return x.repeat(f, axis=1).repeat(f, axis=2)


def upsample_nearest_backward_ref(dout: np.ndarray, f: int = 2) -> np.ndarray:
    N, OH, OW, C = dout.shape
    return dout.reshape(N, OH // f, f, OW // f, f, C).sum(axis=(2, 4))


@njit(cache=True, nogil=True)
def _upsample_nearest(x, f, out):
    N, H, W, C = x.shape
    for n in range(N):
        for y in range(H * f):
            for xx in range(W * f):
                for c in range(C):
                    out[n, y, xx, c] = x[n, y // f, xx // f, c]


@njit(cache=True, nogil=True)
def _upsample_nearest_backward(dout, f, dx):
    N, H, W, C = dx.shape
    for n in range(N):
        for y in range(H):
            for xx in range(W):
                for c in range(C):
                    acc = dout[n, y * f, xx * f, c]
                    for i in range(f):
                        for j in range(f):
                            if i > 0 or j > 0:
                                acc += dout[n, y * f + i, xx * f + j, c]
                    dx[n, y, xx, c] = acc


def upsample_nearest(x: np.ndarray, f: int = 2) -> np.ndarray:
    """Repeat every pixel f x f times, one pass (Numba); equal to `upsample_nearest_ref`."""
    N, H, W, C = x.shape
    out = np.empty((N, H * f, W * f, C), dtype=x.dtype)
    _upsample_nearest(np.ascontiguousarray(x), f, out)
    return out


def upsample_nearest_backward(dout: np.ndarray, f: int = 2) -> np.ndarray:
    """Sum of each f x f block of dout, one pass (Numba), row-major within the block."""
    N, OH, OW, C = dout.shape
    dx = np.empty((N, OH // f, OW // f, C), dtype=dout.dtype)
    _upsample_nearest_backward(np.ascontiguousarray(dout), f, dx)
    return dx


def _bilinear_taps(n_in: int, f: int):
    """Per output index: (i0, i1, w0, w1) with PyTorch align_corners=False semantics."""
    o = np.arange(n_in * f)
    src = np.maximum((o + 0.5) / f - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def upsample_bilinear_ref(x: np.ndarray, f: int = 2) -> np.ndarray:
    """Separable bilinear resize by an integer factor, align_corners=False. Pure NumPy."""
    N, H, W, C = x.shape
    y0, y1, wy0, wy1 = _bilinear_taps(H, f)
    x0, x1, wx0, wx1 = _bilinear_taps(W, f)
    dt = x.dtype
    rows = x[:, y0] * wy0.astype(dt)[None, :, None, None] + x[:, y1] * wy1.astype(dt)[None, :, None, None]
    return rows[:, :, x0] * wx0.astype(dt)[None, None, :, None] + rows[:, :, x1] * wx1.astype(dt)[None, None, :, None]


def upsample_bilinear_backward_ref(dout: np.ndarray, shape: tuple, f: int = 2) -> np.ndarray:
    N, H, W, C = shape
    y0, y1, wy0, wy1 = _bilinear_taps(H, f)
    x0, x1, wx0, wx1 = _bilinear_taps(W, f)
    dt = dout.dtype
    drows = np.zeros((N, H * f, W, C), dtype=dt)
    np.add.at(drows, (slice(None), slice(None), x0), dout * wx0.astype(dt)[None, None, :, None])
    np.add.at(drows, (slice(None), slice(None), x1), dout * wx1.astype(dt)[None, None, :, None])
    dx = np.zeros(shape, dtype=dt)
    np.add.at(dx, (slice(None), y0), drows * wy0.astype(dt)[None, :, None, None])
    np.add.at(dx, (slice(None), y1), drows * wy1.astype(dt)[None, :, None, None])
    return dx


@njit(cache=True)
def _upsample_bilinear(x, y0, y1, wy0, wy1, x0, x1, wx0, wx1, out):
    N, H, W, C = x.shape
    OH, OW = out.shape[1], out.shape[2]
    for row in range(N * OH):
        n = row // OH
        oy = row - n * OH
        a0, a1, b0, b1 = y0[oy], y1[oy], wy0[oy], wy1[oy]
        for ox in range(OW):
            c0, c1, d0, d1 = x0[ox], x1[ox], wx0[ox], wx1[ox]
            for c in range(C):
                top = x[n, a0, c0, c] * d0 + x[n, a0, c1, c] * d1
                bot = x[n, a1, c0, c] * d0 + x[n, a1, c1, c] * d1
                out[n, oy, ox, c] = top * b0 + bot * b1


def upsample_bilinear(x: np.ndarray, f: int = 2) -> np.ndarray:
    """Numba bilinear x f upsampling (align_corners=False)."""
    N, H, W, C = x.shape
    dt = x.dtype
    y0, y1, wy0, wy1 = _bilinear_taps(H, f)
    x0, x1, wx0, wx1 = _bilinear_taps(W, f)
    out = np.empty((N, H * f, W * f, C), dtype=dt)
    _upsample_bilinear(np.ascontiguousarray(x), y0, y1, wy0.astype(dt), wy1.astype(dt),
                       x0, x1, wx0.astype(dt), wx1.astype(dt), out)
    return out


def upsample_bilinear_backward(dout: np.ndarray, shape: tuple, f: int = 2) -> np.ndarray:
    """Adjoint of the bilinear upsampling (via np.add.at; cheap next to the convolutions)."""
    return upsample_bilinear_backward_ref(dout, shape, f)
