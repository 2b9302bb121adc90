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


@njit(cache=True, nogil=True)
def _sign(x, i0, i1, out):
    for i in range(i0, i1):
        out[i] = 1.0 if x[i] >= 0 else -1.0


@njit(cache=True, nogil=True)
def _ste_backward(g, x, i0, i1, out):
    for i in range(i0, i1):
        out[i] = g[i] if abs(x[i]) <= 1 else 0.0


def sign(x: np.ndarray) -> np.ndarray:
    """sign(x) in {-1, +1}, same shape and dtype as x (Numba for float arrays)."""
    if x.dtype not in (np.float32, np.float64):
        return sign_ref(x)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    _pieces.run(lambda r: _sign(xf, r[0], r[1], out), _pieces.split(xf.size))
    return out.reshape(x.shape)


def ste_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g * 1{|x| <= 1} (Numba), g and x of the same shape."""
    if g.shape != x.shape or g.dtype != x.dtype or x.dtype not in (np.float32, np.float64):
        return ste_backward_ref(g, x)
    gf = np.ascontiguousarray(g).reshape(-1)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    _pieces.run(lambda r: _ste_backward(gf, xf, r[0], r[1], out), _pieces.split(xf.size))
    return out.reshape(x.shape)
