"""im2col / col2im for NHWC convolution, each as a NumPy reference and a Numba kernel.

A k x k convolution is a matrix product once every receptive field is laid out as one row:

    cols[(n, oy, ox), (i, j, c)] = x_pad[n, oy*s + i, ox*s + j, c]        # (N*OH*OW, KH*KW*C)
    out = cols @ w.reshape(Cout, KH*KW*C).T                                 # (N*OH*OW, Cout)

In NHWC each (i, j) tap of a row is a contiguous run of C floats, so the copy is a loop of
`memcpy`s and the GEMM writes the NHWC output directly (README, "Conventions"). Zero padding is applied
inside the kernels (taps outside the image read 0), so no padded copy of x is made.

col2im is the adjoint (the backward of im2col): every input pixel gathers the column entries that
read it. Gathering (rather than scattering from each column) lets us parallelise over input rows
without write races.

`im2col_chunks` produces the matrix one block of rows at a time, so a convolution can multiply
each block while it is still in cache (functional.conv2d does). The block size is a fixed number
of rows (`BLOCK_ROWS`), never derived from the machine's cache or the dtype: the weight gradient
sums block by block, so its summation order, and with it every binary training run, is the same
on every machine.

Optimizations (Numba rungs): inner loops over contiguous channels (LLVM vectorizes them), no
temporaries inside the kernels. Deliberately serial: these copies are memory-bound, and on a
2-core machine a parallel region measured 12 ms against 0.2 ms serial for the same im2col as soon
as another process (or BLAS's own threads) held a core.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def out_size(h: int, k: int, stride: int, padding: int) -> int:
    return (h + 2 * padding - k) // stride + 1


# ---- NumPy references -----------------------------------------------------------------------

def im2col_ref(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C), zero padding. Pure NumPy."""
    N, H, W, C = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    OH, OW = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    win = win[:, ::stride, ::stride][:, :OH, :OW]
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(N * OH * OW, kh * kw * C)


def col2im_ref(cols: np.ndarray, shape: tuple, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """Adjoint of im2col_ref: cols (N*OH*OW, KH*KW*C) -> x-shaped sums (N, H, W, C)."""
    N, H, W, C = shape
    OH, OW = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    c6 = cols.reshape(N, OH, OW, kh, kw, C)
    xp = np.zeros((N, H + 2 * padding, W + 2 * padding, C), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, i:i + stride * OH:stride, j:j + stride * OW:stride, :] += c6[:, :, :, i, j, :]
    return xp[:, padding:padding + H, padding:padding + W, :]


# ---- Numba kernels --------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _im2col_rows(x, kh, kw, stride, padding, OH, OW, row0, row1, cols):
    """Rows of cols for output rows (n, oy) in [row0, row1) of the flattened N*OH index."""
    N, H, W, C = x.shape
    for row in range(row0, row1):
        n = row // OH
        oy = row - n * OH
        for ox in range(OW):
            r = (row - row0) * OW + ox
            for i in range(kh):
                y = oy * stride + i - padding
                for j in range(kw):
                    xx = ox * stride + j - padding
                    base = (i * kw + j) * C
                    if 0 <= y < H and 0 <= xx < W:
                        for c in range(C):
                            cols[r, base + c] = x[n, y, xx, c]
                    else:
                        for c in range(C):
                            cols[r, base + c] = 0.0


@njit(cache=True, nogil=True)
def _col2im(cols, N, H, W, C, kh, kw, stride, padding, OH, OW, dx):
    for row in range(N * H):
        n = row // H
        y = row - n * H
        for xx in range(W):
            for c in range(C):
                dx[n, y, xx, c] = 0.0
            for i in range(kh):
                t = y + padding - i  # = oy * stride
                if t < 0 or t % stride != 0:
                    continue
                oy = t // stride
                if oy >= OH:
                    continue
                for j in range(kw):
                    u = xx + padding - j
                    if u < 0 or u % stride != 0:
                        continue
                    ox = u // stride
                    if ox >= OW:
                        continue
                    r = (n * OH + oy) * OW + ox
                    base = (i * kw + j) * C
                    for c in range(C):
                        dx[n, y, xx, c] += cols[r, base + c]


@njit(cache=True, nogil=True)
def _col2im_add_rows(dcols, kh, kw, stride, padding, OH, OW, row0, row1, dx):
    """dx += the adjoint of `_im2col_rows` for output rows (n, oy) in [row0, row1): a scatter of
    one block of columns (dcols row r is output pixel row0 * OW + r). Serial: blocks that share
    input rows (the kernel's halo) must be added one after the other."""
    N, H, W, C = dx.shape
    for row in range(row0, row1):
        n = row // OH
        oy = row - n * OH
        for ox in range(OW):
            r = (row - row0) * OW + ox
            for i in range(kh):
                y = oy * stride + i - padding
                if y < 0 or y >= H:
                    continue
                for j in range(kw):
                    xx = ox * stride + j - padding
                    if xx < 0 or xx >= W:
                        continue
                    base = (i * kw + j) * C
                    for c in range(C):
                        dx[n, y, xx, c] += dcols[r, base + c]


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C) with zero padding (Numba)."""
    N, H, W, C = x.shape
    OH, OW = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    cols = np.empty((N * OH * OW, kh * kw * C), dtype=x.dtype)
    _im2col_rows(np.ascontiguousarray(x), kh, kw, stride, padding, OH, OW, 0, N * OH, cols)
    return cols


# Output pixels (im2col rows) per block, rounded down to whole output rows (n, oy). Writing the
# whole (N*OH*OW, KH*KW*C) matrix to memory and reading it back cost as much as the GEMM itself at
# the hourglass's full-scale shapes; blocks multiplied while in cache avoid that. Training step of
# the binary hpm hourglass, batch 16, one thread, medians of interleaved rounds (AMD EPYC):
#   rows/block          256    512    1024   2048   4096   whole matrix
#   R=64,  F=64, D=3    0.127  0.127  0.126  0.126  0.129  0.133 s
#   R=128, F=64, D=4    0.652  0.617  0.624  0.619  0.637  0.749 s
# A constant, not a function of the cache size: see the module docstring.
BLOCK_ROWS = 1024


def im2col_chunks(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0,
                  block_rows: int = BLOCK_ROWS):
    """Yield (r0, r1, cols_block): rows r0:r1 of im2col(x), computed one block of about
    `block_rows` rows (whole output rows, at least one) at a time into a reused buffer (valid
    until the next iteration)."""
    N, H, W, C = x.shape
    OH, OW = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    K = kh * kw * C
    per = max(1, block_rows // OW)                              # output rows (n, oy) per block
    buf = np.empty((min(per, N * OH) * OW, K), dtype=x.dtype)
    xc = np.ascontiguousarray(x)
    for a in range(0, N * OH, per):
        b = min(a + per, N * OH)
        _im2col_rows(xc, kh, kw, stride, padding, OH, OW, a, b, buf)
        yield a * OW, b * OW, buf[: (b - a) * OW]


def col2im(cols: np.ndarray, shape: tuple, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Adjoint of `im2col`: cols (N*OH*OW, KH*KW*C) -> (N, H, W, C) (Numba)."""
    N, H, W, C = shape
    OH, OW = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    dx = np.empty((N, H, W, C), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), N, H, W, C, kh, kw, stride, padding, OH, OW, dx)
    return dx
