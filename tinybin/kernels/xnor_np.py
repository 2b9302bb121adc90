"""XNOR-popcount ladder, rung 1: NumPy on packed words (``np.bitwise_count``).

Paper section 3 / XNOR-Net: with ``a, b`` the packed signs of two length-n vectors (bit 1 = +1,
tail bits 0 in both), ``sum_c sign(a_c) * sign(b_c) = n - 2 * popcount(a XOR b)``: every channel
where the signs differ contributes -1 instead of +1. Readable and exact, but it materialises one
XOR array per kernel tap; the Numba rungs compute the same numbers without temporaries.
"""

from __future__ import annotations

import numpy as np

from .xnor_ref import _check_bits, _check_conv_args, _check_int, output_size

__all__ = ["xnor_gemm_np", "conv2d_np"]


def xnor_gemm_np(a_bits: np.ndarray, b_bits: np.ndarray, n: int) -> np.ndarray:
    """Packed GEMM in NumPy: ``n - 2 * popcount(a XOR b)`` summed over words.

    a_bits: (M, Kw), b_bits: (N, Kw) uint64 with Kw = ceil(n/64) -> (M, N) int32.
    """
    n = _check_int(n, "n", 1)
    _check_bits(a_bits, "a_bits", 2, n)
    _check_bits(b_bits, "b_bits", 2, n)
    pop = np.bitwise_count(a_bits[:, None, :] ^ b_bits[None, :, :]).sum(axis=-1, dtype=np.int64)
    return (n - 2 * pop).astype(np.int32)


def conv2d_np(x_bits: np.ndarray, w_bits: np.ndarray, n_channels: int, stride: int = 1,
              padding: int = 0) -> np.ndarray:
    """Packed convolution in NumPy, one kernel tap at a time.

    x_bits: (N, H, W, Cw), w_bits: (Cout, KH, KW, Cw) uint64, Cw = ceil(n_channels/64)
    -> (N, OH, OW, Cout) int32. A tap contributes ``C - 2 * popcount(x XOR w)`` where it falls
    inside the image and 0 where it falls in the padding.
    """
    C, s, p = _check_conv_args(x_bits, w_bits, n_channels, stride, padding)
    N, H, W, Cw = x_bits.shape
    Cout, KH, KW, _ = w_bits.shape
    OH, OW = output_size(H, KH, s, p), output_size(W, KW, s, p)
    out = np.zeros((N, OH, OW, Cout), dtype=np.int64)
    for kh in range(KH):
        iy = np.arange(OH) * s - p + kh
        vy = (iy >= 0) & (iy < H)
        for kw in range(KW):
            ix = np.arange(OW) * s - p + kw
            vx = (ix >= 0) & (ix < W)
            xt = x_bits[:, np.clip(iy, 0, H - 1)][:, :, np.clip(ix, 0, W - 1)]  # (N, OH, OW, Cw)
            pop = np.bitwise_count(xt[..., None, :] ^ w_bits[:, kh, kw, :]).sum(-1, dtype=np.int64)
            valid = (vy[:, None] & vx[None, :])[None, :, :, None]  # padded taps contribute 0
            out += np.where(valid, C - 2 * pop, 0)
    return out.astype(np.int32)
