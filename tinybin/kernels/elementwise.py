"""The binary activation of paper §4.1 as Numba kernels beside their NumPy definitions.

    sign(x)          = +1 if x >= 0 else -1        (sign(0) = +1, never 0; DESIGN.md §2)
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
    """sign(x) in {-1, +1}, same shape and dtype as x (Numba for float arrays)."""
    if x.dtype not in (np.float32, np.float64):
        return sign_ref(x)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    one, minus_one = x.dtype.type(1), x.dtype.type(-1)
    _pieces.run(lambda r: _sign(xf[r[0]:r[1]], one, minus_one, out[r[0]:r[1]]),
                _pieces.split(xf.size, work=xf.size))
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
                _pieces.split(xf.size, work=xf.size))
    return out.reshape(x.shape)
