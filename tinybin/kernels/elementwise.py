"""The binary activation of paper §4.1 as Numba kernels beside their NumPy definitions.

    sign(x)          = +1 if x >= 0 else -1        (sign(0) = +1, never 0)
    ste_backward     = g * 1{|x| <= 1}             (the clipped straight-through estimator)

Optimizations (Numba rungs): one pass over the data, no boolean or integer temporaries (the NumPy
forms make two to four passes); the work is cut into the fixed pieces of `pieces.py`. Exact:
the kernels must equal the references bit for bit (no fastmath).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import pieces as _pieces


def sign_ref(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1, -1).astype(x.dtype)


def ste_backward_ref(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return g * (np.abs(x) <= 1)


# The constants come in as arguments of the array's dtype: a float64 literal stored into a float32
# array kept LLVM from vectorizing the loop (measured 10x slower than a copy).

@njit(cache=True, nogil=True)
def _sign(x, one, minus_one, out):
    for i in range(x.size):
        out[i] = one if x[i] >= 0 else minus_one


@njit(cache=True, nogil=True)
def _ste_backward(g, x, one, zero, out):
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] if -one <= v <= one else zero


def sign(x: np.ndarray) -> np.ndarray:
    """sign(x) = +1 where x >= 0, else -1 (sign(0) = sign(-0.0) = +1; never 0); same shape and dtype
    as x (Numba for float arrays, `sign_ref` otherwise).

    The one definition of the package (README, "Conventions"): the float training graph, the packers
    (bit 1 <=> sign +1) and the kernels' float references all use it."""
    if x.dtype not in (np.float32, np.float64):
        return sign_ref(x)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    one, minus_one = x.dtype.type(1), x.dtype.type(-1)
    _pieces.run(lambda r: _sign(xf[r[0]:r[1]], one, minus_one, out[r[0]:r[1]]),
                _pieces.split(xf.size, work=xf.size), work=xf.size)
    return out.reshape(x.shape)


def ste_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g * 1{|x| <= 1} (Numba), g and x of the same shape."""
    if g.shape != x.shape or g.dtype != x.dtype or x.dtype not in (np.float32, np.float64):
        return ste_backward_ref(g, x)
    gf = np.ascontiguousarray(g).reshape(-1)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    _pieces.run(lambda r: _ste_backward(gf[r[0]:r[1]], xf[r[0]:r[1]], one, zero, out[r[0]:r[1]]),
                _pieces.split(xf.size, work=xf.size), work=xf.size)
    return out.reshape(x.shape)


# ---- residual adds, ReLU and channel concatenation ------------------------------------------
# Plain NumPy runs these on one thread; at batch 1 they were half of the packed network's time at
# two threads (the XNOR kernels are parallel). Cut into the fixed pieces of `pieces.py`: every
# output element is computed by the same single operation whatever the piece, so the results are
# the NumPy ones bit for bit at any thread count.

def relu_ref(x: np.ndarray) -> np.ndarray:
    """max(x, 0) with NaN kept and -0.0 -> +0.0 (the definition the kernel follows)."""
    return np.where(x <= 0, x.dtype.type(0), x)


def relu_backward_ref(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, g, g.dtype.type(0))


@njit(cache=True, nogil=True)
def _add(a, b, out):
    for i in range(a.size):
        out[i] = a[i] + b[i]


@njit(cache=True, nogil=True)
def _relu(x, zero, out):
    for i in range(x.size):
        v = x[i]
        out[i] = zero if v <= zero else v


@njit(cache=True, nogil=True)
def _relu_backward(g, x, zero, out):
    for i in range(x.size):
        out[i] = g[i] if x[i] > zero else zero


def _flat_pieces(size: int):
    return _pieces.split(size, work=size)


def _same_float(*arrays) -> bool:
    a0 = arrays[0]
    return (a0.dtype in (np.float32, np.float64)
            and all(a.shape == a0.shape and a.dtype == a0.dtype for a in arrays))


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b; arrays of one shape and float dtype in parallel pieces (Numba), equal to NumPy's
    a + b bit for bit; anything else (broadcasting, mixed dtypes) by NumPy."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and _same_float(a, b)):
        return a + b
    af = np.ascontiguousarray(a).reshape(-1)
    bf = np.ascontiguousarray(b).reshape(-1)
    out = np.empty_like(af)
    _pieces.run(lambda r: _add(af[r[0]:r[1]], bf[r[0]:r[1]], out[r[0]:r[1]]), _flat_pieces(af.size), work=af.size)
    return out.reshape(a.shape)


def relu(x: np.ndarray) -> np.ndarray:
    """`relu_ref` (max(x, 0), NaN kept, -0.0 -> +0.0) in parallel pieces (Numba) for float arrays."""
    if x.dtype not in (np.float32, np.float64):
        return relu_ref(x)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    zero = x.dtype.type(0)
    _pieces.run(lambda r: _relu(xf[r[0]:r[1]], zero, out[r[0]:r[1]]), _flat_pieces(xf.size), work=xf.size)
    return out.reshape(x.shape)


def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g where x > 0, else 0 (`relu_backward_ref`), in parallel pieces (Numba)."""
    if not _same_float(g, x):
        return relu_backward_ref(g, x)
    gf = np.ascontiguousarray(g).reshape(-1)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    zero = x.dtype.type(0)
    _pieces.run(lambda r: _relu_backward(gf[r[0]:r[1]], xf[r[0]:r[1]], zero, out[r[0]:r[1]]),
                _flat_pieces(xf.size), work=xf.size)
    return out.reshape(x.shape)


# ---- PReLU (beyond the paper: the learnable activation after the binary convolution) -----------
# One pass each way instead of NumPy's three to five (masks, products, `where`, the reduction).
# The slope gradient da_c = sum over rows of (g * x) * 1{x < 0} is accumulated row after row from
# +0, the order in which NumPy reduces a C-contiguous (M, C) array over axis 0, so the kernels
# equal the references bit for bit (tested); it stays one sequential pass (at any thread count)
# because splitting the rows would change that order.

def prelu_ref(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """x where x >= 0, else a * x (a per channel, the last axis)."""
    return np.where(x >= 0, x, x * a)


def prelu_backward_ref(g: np.ndarray, x: np.ndarray, a: np.ndarray):
    """(dx, da): dx = g * (1 if x >= 0 else a); da_c = sum of g * x where x < 0."""
    neg = x < 0
    dx = np.where(neg, g * a, g)
    da = (g * x * neg).reshape(-1, x.shape[-1]).sum(axis=0)
    return dx, da


@njit(cache=True, nogil=True)
def _prelu(x, a, out):
    M, C = x.shape
    for m in range(M):
        for c in range(C):
            v = x[m, c]
            out[m, c] = v if v >= 0 else v * a[c]


@njit(cache=True, nogil=True)
def _prelu_backward(g, x, a, one, zero, dx, da):
    M, C = x.shape
    for c in range(C):
        da[c] = zero
    for m in range(M):
        for c in range(C):
            v, gv = x[m, c], g[m, c]
            if v < 0:
                dx[m, c] = gv * a[c]
                da[c] += (gv * v) * one
            else:
                dx[m, c] = gv
                da[c] += (gv * v) * zero                # +-0, or NaN from inf * 0, as NumPy's


def _prelu_arrays(x, a, *more) -> bool:
    return (x.ndim >= 1 and x.dtype in (np.float32, np.float64) and a.dtype == x.dtype
            and a.shape == (x.shape[-1],) and all(m.shape == x.shape and m.dtype == x.dtype for m in more))


def prelu(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`prelu_ref` in one Numba pass when x and the slopes a (C,) share a float dtype; bit for bit
    the reference (one multiply per negative element, nothing else)."""
    if not _prelu_arrays(x, a):
        return prelu_ref(x, a)
    C = x.shape[-1]
    xf = np.ascontiguousarray(x).reshape(-1, C)
    out = np.empty_like(xf)
    _pieces.run(lambda r: _prelu(xf[r[0]:r[1]], a, out[r[0]:r[1]]),
                _pieces.split(xf.shape[0], work=xf.size), work=xf.size)
    return out.reshape(x.shape)


def prelu_backward(g: np.ndarray, x: np.ndarray, a: np.ndarray):
    """`prelu_backward_ref` (dx, da) in one sequential Numba pass, bit for bit the reference."""
    if not _prelu_arrays(x, a, g):
        return prelu_backward_ref(g, x, a)
    C = x.shape[-1]
    xf = np.ascontiguousarray(x).reshape(-1, C)
    gf = np.ascontiguousarray(g).reshape(-1, C)
    dx = np.empty_like(xf)
    da = np.empty(C, dtype=x.dtype)
    _prelu_backward(gf, xf, np.ascontiguousarray(a), x.dtype.type(1), x.dtype.type(0), dx, da)
    return dx.reshape(x.shape), da


def concat_last(xs) -> np.ndarray:
    """np.concatenate(xs, axis=-1) for float arrays equal in every axis but the last, copied in
    parallel row pieces; other inputs by np.concatenate. An exact copy either way."""
    x0 = xs[0]
    if (x0.ndim < 1 or x0.dtype not in (np.float32, np.float64)
            or any(a.dtype != x0.dtype or a.shape[:-1] != x0.shape[:-1] for a in xs)):
        return np.concatenate(xs, axis=-1)
    lead = x0.shape[:-1]
    M = int(np.prod(lead, dtype=np.int64))
    srcs = [np.ascontiguousarray(a).reshape(M, a.shape[-1]) for a in xs]
    offs = np.cumsum([0] + [a.shape[-1] for a in xs])
    out = np.empty((M, int(offs[-1])), dtype=x0.dtype)

    def piece(r):
        for s, c0, c1 in zip(srcs, offs[:-1], offs[1:]):
            out[r[0]:r[1], c0:c1] = s[r[0]:r[1]]            # a strided copy: NumPy releases the GIL
    _pieces.run(piece, _pieces.split(M, work=out.size), work=out.size)
    return out.reshape(lead + (int(offs[-1]),))
