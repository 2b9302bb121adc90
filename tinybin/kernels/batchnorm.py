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
from numba import njit, prange

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


# ---- Numba parallel regions: all pieces of an op at once (see pieces.NUMBA_REGIONS) ------------
# The same row kernels over the same pieces; per-piece partial sums go to parts[p] and are added
# in piece order by the caller, as on the pool path: the numbers do not change.

def _region(work: int, bounds) -> bool:
    """Run this op's pieces in a Numba parallel region: several pieces, several threads, work
    large enough to pay for it (`pieces.PARALLEL_WORK`), and allowed (`pieces.numba_region_ok`)."""
    return (len(bounds) > 1 and _pieces.threads() > 1 and work >= _pieces.PARALLEL_WORK
            and _pieces.numba_region_ok())


def _as_array(bounds) -> np.ndarray:
    return np.array(bounds, dtype=np.int64).reshape(-1, 2)


@njit(parallel=True, cache=True, nogil=True)
def _stats_region(x2, bounds, s, parts):
    for p in prange(bounds.shape[0]):
        _stats_rows(x2, bounds[p, 0], bounds[p, 1], s, parts[p])


def stats(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, biased var) per channel of x2 (M, C), float64 (Numba, one read of x2)."""
    x2 = np.ascontiguousarray(x2)
    M, C = x2.shape
    s = x2[0].astype(np.float64)

    bounds = _pieces.split(M, work=x2.size)
    if _region(x2.size, bounds):
        parts = np.zeros((len(bounds), 2, C))
        _stats_region(x2, _as_array(bounds), s, parts)
    else:
        def piece(r):
            out = np.zeros((2, C))
            _stats_rows(x2, r[0], r[1], s, out)
            return out
        parts = _pieces.run(piece, bounds, work=x2.size)
    tot = parts[0].copy()
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
                _pieces.split(x2.shape[0], work=x2.size), work=x2.size)
    return y


def _summed_pieces(piece, M: int, size: int):
    """(dbeta, dgamma): the per-piece (2, C) float64 sums of `piece` over the rows, added in piece
    order (so the result does not depend on the thread count)."""
    parts = _pieces.run(piece, _pieces.split(M, work=size), work=size)
    tot = parts[0]
    for p in parts[1:]:
        tot += p
    return tot[0], tot[1]


def _dx_coefficients(gamma, mean, inv_std, dgamma, dbeta, M: int, dt):
    """Per-channel (a, b, c) of dx = a * g + b * x + c, in dtype `dt`, from
    dx = k * (g - dbeta/M - (x - mean) * inv_std * dgamma/M),  k = gamma * inv_std (float64)."""
    k = gamma.astype(np.float64) * inv_std
    b = -k * inv_std * dgamma / M
    c0 = -k * dbeta / M - b * mean
    return k.astype(dt), b.astype(dt), c0.astype(dt)


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
    dbeta, dgamma = _summed_pieces(piece, M, x2.size)
    dt = x2.dtype
    a_, b_, c_ = _dx_coefficients(gamma, mean, inv_std, dgamma, dbeta, M, dt)
    dx = np.empty_like(x2)
    _pieces.run(lambda r: _dx_rows(g2, x2, r[0], r[1], a_, b_, c_, dx), _pieces.split(M, work=x2.size),
                work=x2.size)
    return dx, dgamma.astype(dt), dbeta.astype(dt)


# ---- batch norm fused with the activation behind it (sign or ReLU) --------------------------------
# Every pre-activation unit runs BN then sign (binary) or ReLU (real). Fused: the forward is the
# statistics pass plus ONE pass writing act(h), h = ((x - mean) * inv_std) * gamma + beta; h itself is
# never stored: the backward recomputes it from x with the same float operations (so the same bits)
# for the activation's mask, inside the BN backward's two passes. Per unit and step that is 4 passes
# and 4 hand-offs to the pieces' threads instead of 6, and two fewer (M, C) temporaries. Every
# element takes the same operations, in the same order, as the unfused ops, so the results are
# identical bit for bit (the tests compare a whole network's outputs and gradients).
#
#   sign:  a = +1 if h >= 0 else -1,   da/dh = 1{-1 <= h <= 1}   (clipped straight-through)
#   relu:  a = 0 if h <= 0 else h,     da/dh = 1{h > 0}

ACTS = ("sign", "relu")


def normalize_act_ref(x2, mean, inv_std, gamma, beta, act):
    """act(h), h = normalize_ref(x2, ...): the unfused composition, NumPy."""
    h = normalize_ref(x2, mean, inv_std, gamma, beta)
    one, zero = x2.dtype.type(1), x2.dtype.type(0)
    if act == "sign":
        return np.where(h >= 0, one, -one).astype(x2.dtype)
    return np.where(h <= 0, zero, h)


def act_backward_ref(g2, x2, mean, inv_std, gamma, beta, act):
    """(dx, dgamma, dbeta) of act(BN(x)): the activation's mask on g, then `backward_ref`."""
    h = normalize_ref(x2, mean, inv_std, gamma, beta)
    mask = (np.abs(h) <= 1) if act == "sign" else (h > 0)
    gm = np.where(mask, g2, g2.dtype.type(0))
    return backward_ref(gm, x2, mean, inv_std, gamma)


@njit(cache=True, nogil=True)
def _normalize_sign_rows(x2, r0, r1, mean, inv_std, gamma, beta, one, minus_one, y):
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            h = ((x2[m, c] - mean[c]) * inv_std[c]) * gamma[c] + beta[c]
            y[m, c] = one if h >= 0 else minus_one


@njit(cache=True, nogil=True)
def _normalize_relu_rows(x2, r0, r1, mean, inv_std, gamma, beta, zero, y):
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            h = ((x2[m, c] - mean[c]) * inv_std[c]) * gamma[c] + beta[c]
            y[m, c] = zero if h <= zero else h


@njit(cache=True, nogil=True, inline="always")
def _masked_g(g2, x2, m, c, mean_t, inv_std_t, gamma_t, beta_t, relu, one, zero):
    """g where the activation passes it: h = BN(x) recomputed in x's dtype exactly as the forward
    computed it; ReLU passes h > 0, the sign's STE passes |h| <= 1."""
    g = g2[m, c]  # loaded unconditionally: a load under the mask's branch keeps LLVM from turning
    # the branch into a vector select, and a random mask then costs a mispredicted branch per element
    # (measured 20-40x slower than this form on (16384, 32) .. (1024, 128), same results bit for bit)
    h = ((x2[m, c] - mean_t[c]) * inv_std_t[c]) * gamma_t[c] + beta_t[c]
    ok = (h > zero) if relu else ((h >= -one) & (h <= one))
    return g if ok else zero


@njit(cache=True, nogil=True)
def _act_grad_stats_rows(g2, x2, r0, r1, mean_t, inv_std_t, gamma_t, beta_t, relu, one, zero,
                         mean, inv_std, out):
    """As `_grad_stats_rows` on the masked g: mask from h recomputed in x's dtype (*_t arrays).
    Sums go to local arrays (which cannot alias the inputs, so the loop over c vectorizes) and are
    added to `out` at the end; each channel's sum is still taken in row order."""
    C = x2.shape[1]
    s0 = np.zeros(C)
    s1 = np.zeros(C)
    for m in range(r0, r1):
        for c in range(C):
            g = np.float64(_masked_g(g2, x2, m, c, mean_t, inv_std_t, gamma_t, beta_t, relu, one, zero))
            s0[c] += g
            s1[c] += g * ((np.float64(x2[m, c]) - mean[c]) * inv_std[c])
    for c in range(C):
        out[0, c] += s0[c]
        out[1, c] += s1[c]


@njit(cache=True, nogil=True)
def _act_dx_rows(g2, x2, r0, r1, mean_t, inv_std_t, gamma_t, beta_t, relu, one, zero, a, b, c0, dx):
    C = x2.shape[1]
    for m in range(r0, r1):
        for c in range(C):
            gv = _masked_g(g2, x2, m, c, mean_t, inv_std_t, gamma_t, beta_t, relu, one, zero)
            dx[m, c] = a[c] * gv + b[c] * x2[m, c] + c0[c]


def _typed(dt, *arrays):
    return tuple(np.ascontiguousarray(a, dtype=dt) for a in arrays)


def normalize_act(x2: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray,
                  beta: np.ndarray, act: str) -> np.ndarray:
    """act(((x2 - mean) * inv_std) * gamma + beta), (M, C) in x2's dtype, act "sign" or "relu",
    in one pass (Numba); equal to `normalize_act_ref` (and to `normalize` then the activation)
    bit for bit."""
    if act not in ACTS:
        raise ValueError(f"normalize_act: act must be one of {ACTS}, got {act!r}")
    x2 = np.ascontiguousarray(x2)
    y = np.empty_like(x2)
    dt = x2.dtype
    m, s, g, b = _typed(dt, mean, inv_std, gamma, beta)
    one, zero = dt.type(1), dt.type(0)
    bounds = _pieces.split(x2.shape[0], work=x2.size)
    if _region(x2.size, bounds):
        _normalize_act_region(x2, _as_array(bounds), m, s, g, b, act == "relu", one, zero, y)
        return y
    if act == "sign":
        fn = lambda r: _normalize_sign_rows(x2, r[0], r[1], m, s, g, b, one, -one, y)  # noqa: E731
    else:
        fn = lambda r: _normalize_relu_rows(x2, r[0], r[1], m, s, g, b, zero, y)  # noqa: E731
    _pieces.run(fn, bounds, work=x2.size)
    return y


def act_backward(g2: np.ndarray, x2: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                 gamma: np.ndarray, beta: np.ndarray, act: str):
    """(dx (M, C), dgamma (C,), dbeta (C,)) of act(BN(x)) as `act_backward_ref`: the activation's
    mask (from h recomputed exactly as the forward computed it) applied inside `backward`'s
    reduction pass and elementwise pass (Numba). mean, inv_std: float64 per channel."""
    if act not in ACTS:
        raise ValueError(f"act_backward: act must be one of {ACTS}, got {act!r}")
    g2 = np.ascontiguousarray(g2)
    x2 = np.ascontiguousarray(x2)
    M, C = x2.shape
    dt = x2.dtype
    mt, st, gt, bt = _typed(dt, mean, inv_std, gamma, beta)
    mean = mean.astype(np.float64)
    inv_std = inv_std.astype(np.float64)
    relu, one, zero = act == "relu", dt.type(1), dt.type(0)

    bounds = _pieces.split(M, work=x2.size)
    region = _region(x2.size, bounds)
    if region:
        parts = np.zeros((len(bounds), 2, C))
        _act_grad_stats_region(g2, x2, _as_array(bounds), mt, st, gt, bt, relu, one, zero, mean, inv_std, parts)
        tot = parts[0].copy()
        for q in parts[1:]:
            tot += q
        dbeta, dgamma = tot[0], tot[1]
    else:
        def piece(r):
            out = np.zeros((2, C))
            _act_grad_stats_rows(g2, x2, r[0], r[1], mt, st, gt, bt, relu, one, zero, mean, inv_std, out)
            return out
        dbeta, dgamma = _summed_pieces(piece, M, x2.size)
    a_, b_, c_ = _dx_coefficients(gamma, mean, inv_std, dgamma, dbeta, M, dt)
    dx = np.empty_like(x2)
    if region:
        _act_dx_region(g2, x2, _as_array(bounds), mt, st, gt, bt, relu, one, zero, a_, b_, c_, dx)
    else:
        _pieces.run(lambda r: _act_dx_rows(g2, x2, r[0], r[1], mt, st, gt, bt, relu, one, zero,
                                           a_, b_, c_, dx), bounds, work=x2.size)
    return dx, dgamma.astype(dt), dbeta.astype(dt)


@njit(parallel=True, cache=True, nogil=True)
def _normalize_act_region(x2, bounds, m, s, g, b, relu, one, zero, y):
    for p in prange(bounds.shape[0]):
        if relu:
            _normalize_relu_rows(x2, bounds[p, 0], bounds[p, 1], m, s, g, b, zero, y)
        else:
            _normalize_sign_rows(x2, bounds[p, 0], bounds[p, 1], m, s, g, b, one, -one, y)


@njit(parallel=True, cache=True, nogil=True)
def _act_grad_stats_region(g2, x2, bounds, mt, st, gt, bt, relu, one, zero, mean, inv_std, parts):
    for p in prange(bounds.shape[0]):
        _act_grad_stats_rows(g2, x2, bounds[p, 0], bounds[p, 1], mt, st, gt, bt, relu, one, zero, mean, inv_std,
                             parts[p])


@njit(parallel=True, cache=True, nogil=True)
def _act_dx_region(g2, x2, bounds, mt, st, gt, bt, relu, one, zero, a, b, c0, dx):
    for p in prange(bounds.shape[0]):
        _act_dx_rows(g2, x2, bounds[p, 0], bounds[p, 1], mt, st, gt, bt, relu, one, zero, a, b, c0, dx)
