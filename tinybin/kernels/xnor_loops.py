"""XNOR-popcount ladder, rung 2: plain Numba loops with a scalar 64-bit popcount.

The loops say exactly what the fast kernel computes, in the order a reader expects (output pixel,
output channel, kernel tap, channel word), with a border test so that a tap in the zero padding
contributes 0. ``popcount64`` is a Python function with a Numba overload on ``llvm.ctpop.i64``
(one ``popcnt`` instruction; Numba 0.68 has no ``np.bitwise_count`` in nopython mode), so the
same loop source runs as Python under ``NUMBA_DISABLE_JIT=1``. This rung is the fallback where
the fast kernel is switched off, and the fast kernel's test oracle at full size.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .xnor_ref import _check_bits, _check_conv_args, _check_int, output_size

__all__ = ["popcount64", "xnor_gemm", "conv2d_loops"]


def popcount64(v) -> int:
    """Number of set bits of a 64-bit unsigned integer."""
    return int(v).bit_count()


@intrinsic
def _ctpop64(typingctx, v):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [args[0]])

    return sig, codegen


@overload(popcount64)
def _ol_popcount64(v):
    return lambda v: _ctpop64(np.uint64(v))


def _xnor_gemm(a_bits, b_bits, n):
    """Plain loops over (i, j, word); the Numba source of ``xnor_gemm``."""
    M, Kw = a_bits.shape
    N = b_bits.shape[0]
    out = np.empty((M, N), dtype=np.int32)
    for i in range(M):
        for j in range(N):
            pop = 0
            for k in range(Kw):
                pop += popcount64(a_bits[i, k] ^ b_bits[j, k])
            out[i, j] = n - 2 * pop
    return out


_xnor_gemm_jit = njit(cache=True)(_xnor_gemm)


def xnor_gemm(a_bits: np.ndarray, b_bits: np.ndarray, n: int) -> np.ndarray:
    """Packed XNOR-popcount GEMM (Numba loops). a_bits (M, Kw), b_bits (N, Kw) -> (M, N) int32."""
    n = _check_int(n, "n", 1)
    _check_bits(a_bits, "a_bits", 2, n)
    _check_bits(b_bits, "b_bits", 2, n)
    return _xnor_gemm_jit(a_bits, b_bits, n)


def _conv2d_loops(x_bits, w_bits, n_channels, stride, padding, out):
    """Plain loops with a border test (skipped taps contribute 0); the Numba source of ``conv2d_loops``.

    Writes int32 into out (N, OH, OW, Cout). Output rows in parallel.
    """
    N, H, W, Cw = x_bits.shape
    Cout, KH, KW, _ = w_bits.shape
    OH, OW = out.shape[1], out.shape[2]
    for t in prange(N * OH):
        n = t // OH
        oy = t - n * OH
        for ox in range(OW):
            for o in range(Cout):
                acc = 0
                for kh in range(KH):
                    iy = oy * stride - padding + kh
                    if iy < 0 or iy >= H:
                        continue
                    for kw in range(KW):
                        ix = ox * stride - padding + kw
                        if ix < 0 or ix >= W:
                            continue
                        pop = 0
                        for c in range(Cw):
                            pop += popcount64(x_bits[n, iy, ix, c] ^ w_bits[o, kh, kw, c])
                        acc += n_channels - 2 * pop
                out[n, oy, ox, o] = acc


_conv2d_loops_jit = njit(parallel=True, cache=True)(_conv2d_loops)


def conv2d_loops(x_bits: np.ndarray, w_bits: np.ndarray, n_channels: int, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """Packed convolution with plain Numba loops (scalar popcnt). Same contract as ``conv2d``."""
    C, s, p = _check_conv_args(x_bits, w_bits, n_channels, stride, padding)
    N, H, W, _ = x_bits.shape
    Cout, KH, KW, _ = w_bits.shape
    out = np.empty((N, output_size(H, KH, s, p), output_size(W, KW, s, p), Cout), dtype=np.int32)
    if out.size:
        _conv2d_loops_jit(np.ascontiguousarray(x_bits), np.ascontiguousarray(w_bits), C, s, p, out)
    return out
