"""Training-mode batch normalisation over the rows of an (M, C) array (NHWC flattened), as a
NumPy reference and Numba kernels (paper §4.1: every binary unit starts with a BatchNorm).

    mean_c = sum_m x[m, c] / M,   var_c = sum_m (x[m, c] - mean_c)^2 / M      (biased)
    y      = xhat * gamma + beta,   xhat = (x - mean) / sqrt(var + eps)
    backward, with g = dL/dy:
    dbeta  = sum_m g,   dgamma = sum_m g * xhat
    dx     = gamma / sqrt(var + eps) * (g - dbeta / M - xhat * dgamma / M)

Optimizations (Numba rungs):
* one read of x for the statistics: per-channel sums of (x - s) and (x - s)^2 accumulated in
  float64, with s = the first row of x (a shift near the mean keeps the one-pass variance exact
  enough: the cancellation error scales with (mean - s)^2 / var, not mean^2 / var);
* the normalisation is one pass, y = ((x - mean) * inv_std) * gamma + beta in x's dtype: the
  reference's operations in its order, so an x equal to its channel mean (a constant channel)
  gives exactly beta, as in the reference (folding into x * scale + shift would turn that exact
  value into rounding noise of either sign, and the sign() behind it would flip);
* the backward is one reduction pass (dbeta and dgamma, float64 accumulators, xhat recomputed
  from x on the fly instead of stored) and one pass dx = a * g + b * x + c with per-channel a, b, c;
* rows are cut into the fixed pieces of `pieces.py`; per-piece partial sums are added in piece
  order, so the statistics do not depend on the thread count.
No fastmath: the kernels are compared with the reference to float32 rounding and must give the
same numbers on every run.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import pieces as _pieces


# ---- NumPy reference -------------------------------------------------------------------------

def stats_ref(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, biased var) per channel of x2 (M, C), in float64."""
    x = x2.astype(np.float64)
    mu = x.mean(axis=0)
    return mu, ((x - mu) ** 2).mean(axis=0)


def backward_ref(g2, x2, mean, inv_std, gamma):
    """(dx (M, C), dgamma (C,), dbeta (C,)) of y = (x - mean) * inv_std * gamma + beta."""
    M = x2.shape[0]
    xhat = (x2 - mean) * inv_std
    dbeta = g2.sum(axis=0)
    dgamma = (g2 * xhat).sum(axis=0)
    dx = gamma * inv_std * (g2 - dbeta / M - xhat * dgamma / M)
    return dx.astype(x2.dtype), dgamma.astype(x2.dtype), dbeta.astype(x2.dtype)


# ---- Numba kernels ---------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _stats_rows(x2, r0, r1, s, out):
    """out[0] = sum (x - s), out[1] = sum (x - s)^2 over rows [r0, r1), float64."""
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            d = np.float64(x2[m, c]) - s[c]
            out[0, c] += d
            out[1, c] += d * d


@njit(cache=True, nogil=True)
def _normalize_rows(x2, r0, r1, mean, inv_std, gamma, beta, y):
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            y[m, c] = ((x2[m, c] - mean[c]) * inv_std[c]) * gamma[c] + beta[c]


@njit(cache=True, nogil=True)
def _grad_stats_rows(g2, x2, r0, r1, mean, inv_std, out):
    """out[0] = sum g, out[1] = sum g * xhat over rows [r0, r1), float64."""
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            g = np.float64(g2[m, c])
            out[0, c] += g
            out[1, c] += g * ((np.float64(x2[m, c]) - mean[c]) * inv_std[c])


@njit(cache=True, nogil=True)
def _dx_rows(g2, x2, r0, r1, a, b, c0, dx):
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            dx[m, c] = a[c] * g2[m, c] + b[c] * x2[m, c] + c0[c]


def stats(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, biased var) per channel of x2 (M, C), float64 (Numba, one read of x2)."""
    x2 = np.ascontiguousarray(x2)
    M, C = x2.shape
    s = x2[0].astype(np.float64)

    def piece(r):
        out = np.zeros((2, C))
        _stats_rows(x2, r[0], r[1], s, out)
        return out
    parts = _pieces.run(piece, _pieces.split(M, work=x2.size))
    tot = parts[0]
    for p in parts[1:]:
        tot += p
    d = tot[0] / M
    return s + d, np.maximum(tot[1] / M - d * d, 0.0)


def normalize_ref(x2, mean, inv_std, gamma, beta):
    dt = x2.dtype
    return (x2 - mean.astype(dt)) * inv_std.astype(dt) * gamma.astype(dt) + beta.astype(dt)


def normalize(x2: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray,
              beta: np.ndarray) -> np.ndarray:
    """y = ((x2 - mean) * inv_std) * gamma + beta per channel, (M, C), in x2's dtype (Numba);
    equal to `normalize_ref` bit for bit."""
    x2 = np.ascontiguousarray(x2)
    y = np.empty_like(x2)
    dt = x2.dtype
    m, s, g, b = (np.ascontiguousarray(a, dtype=dt) for a in (mean, inv_std, gamma, beta))
    _pieces.run(lambda r: _normalize_rows(x2, r[0], r[1], m, s, g, b, y),
                _pieces.split(x2.shape[0], work=x2.size))
    return y


def backward(g2: np.ndarray, x2: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
             gamma: np.ndarray):
    """(dx (M, C), dgamma (C,), dbeta (C,)) as `backward_ref`: one reduction pass and one
    elementwise pass (Numba). mean, inv_std: float64 per channel."""
    g2 = np.ascontiguousarray(g2)
    x2 = np.ascontiguousarray(x2)
    M, C = x2.shape
    mean = mean.astype(np.float64)
    inv_std = inv_std.astype(np.float64)

    def piece(r):
        out = np.zeros((2, C))
        _grad_stats_rows(g2, x2, r[0], r[1], mean, inv_std, out)
        return out
    parts = _pieces.run(piece, _pieces.split(M, work=x2.size))
    tot = parts[0]
    for p in parts[1:]:
        tot += p
    dbeta, dgamma = tot[0], tot[1]
    # dx = k * (g - dbeta/M - (x - mean) * inv_std * dgamma/M),  k = gamma * inv_std
    k = gamma.astype(np.float64) * inv_std
    b = -k * inv_std * dgamma / M
    c0 = -k * dbeta / M - b * mean
    dt = x2.dtype
    a_, b_, c_ = k.astype(dt), b.astype(dt), c0.astype(dt)
    dx = np.empty_like(x2)
    _pieces.run(lambda r: _dx_rows(g2, x2, r[0], r[1], a_, b_, c_, dx), _pieces.split(M, work=x2.size))
    return dx, dgamma.astype(dt), dbeta.astype(dt)
