"""Convolution forward and backward as blocked im2col + GEMM, NHWC: a NumPy reference and the
fast path `functional.conv2d` uses.

    forward   out  = im2col(x) @ w2.T                 (N*OH*OW, Cout), w2 = w.reshape(Cout, KH*KW*C)
    backward  dw2  = g2.T @ im2col(x)                 (Cout, KH*KW*C), g2 = dL/dout as (N*OH*OW, Cout)
              dx   = col2im(g2 @ w2)                  (N, H, W, C)

Optimizations (fast path):
* the im2col matrix is never built whole: one block of `im2col.BLOCK_ROWS` rows at a time is
  written and multiplied while in cache;
* dx of a stride-1 convolution is itself a convolution, of dout (padded by k - 1 - padding) with
  the kernel flipped in space and transposed in channels: the forward path computes it, with a
  GEMM of inner dimension KH*KW*Cout (the col2im route's GEMM has inner dimension Cout, 16-64 in
  the hourglass, and writes a KH*KW*C-wide column gradient). Other strides take the col2im route,
  each block of dx columns scattered back into dx while in cache (`_col2im_add_rows`);
* the per-channel `scale` (alpha of a binary conv) and the bias are applied to each output block
  while it is in cache;
* the output rows (n, oy) are cut into fixed pieces (`_row_pieces`): groups of whole images when
  the batch has at least `pieces.NPIECES` images, otherwise ranges of output rows, so a batch of
  one image uses every thread too. The forward and the weight gradient run all pieces of an op in
  one Numba parallel region (`_forward_pieces`, `_dw_pieces`); the col2im route of dx and the
  1x1 dx run them on the tinybin thread pool (`pieces.run`). Every output element is
  one GEMM row, whatever piece holds it; the weight gradient is the sum of the per-piece partial
  sums in piece order, and the piece boundaries depend on the shapes only: the results never
  depend on the number of threads. The col2im route of dx scatters into input rows that
  neighbouring output rows share, so it always splits by whole images (one writer per pixel).
* 1x1 convolutions with stride 1 and no padding skip im2col (the GEMM reads x directly).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import im2col as _im
from . import pieces as _pieces


def _geometry(xshape, kh, kw, stride, padding):
    N, H, W, C = xshape
    return _im.out_size(H, kh, stride, padding), _im.out_size(W, kw, stride, padding)


def _pointwise(kh, kw, stride, padding) -> bool:
    return kh == 1 and kw == 1 and stride == 1 and padding == 0


def _transposable(kh, kw, stride, padding) -> bool:
    """Stride 1, square kernel, padding <= k - 1: dx is a plain convolution of dout."""
    return stride == 1 and kh == kw and padding <= kh - 1


def _row_pieces(N: int, OH: int, work: int, whole_images: bool = False) -> list[tuple[int, int]]:
    """Fixed pieces [a, b) of the N*OH output rows (n, oy): whole images when N >= NPIECES (or
    `whole_images`), else row ranges. A function of the shapes only."""
    if whole_images or N >= _pieces.NPIECES:
        return [(n0 * OH, n1 * OH) for n0, n1 in _pieces.split(N, work=work)]
    return _pieces.split(N * OH, work=work)


# ---- NumPy reference --------------------------------------------------------------------------

def conv_forward_ref(x, w2, kh, kw, stride=1, padding=0, scale=None, bias=None):
    """im2col_ref(x) @ w2.T (* scale) (+ bias) -> (N*OH*OW, Cout), the whole matrix at once."""
    out = _im.im2col_ref(x, kh, kw, stride, padding) @ w2.T
    if scale is not None:
        out = out * scale
    if bias is not None:
        out = out + bias
    return out


def conv_backward_ref(x, g2, w2, kh, kw, stride=1, padding=0):
    """(dx (N, H, W, C), dw2 (Cout, KH*KW*C)) from the whole im2col matrix."""
    cols = _im.im2col_ref(x, kh, kw, stride, padding)
    dw2 = g2.T @ cols
    dx = _im.col2im_ref(g2 @ w2, x.shape, kh, kw, stride, padding)
    return dx, dw2


# ---- fast path -------------------------------------------------------------------------------

# ---- whole-op Numba kernels: every piece of an op in one parallel region ------------------------
# The same pieces, blocks and GEMM calls as the Python-piece path below (`np.dot` in Numba calls
# the same BLAS sgemm/dgemm, one thread per piece); the pieces run on Numba's threads in one
# parallel region instead of being handed one by one to the tinybin pool, which at two threads
# cost more than the small pieces of the downscaled hourglass take. Results are bit for bit those
# of the Python-piece path (tested) and never depend on the thread count. `pieces.NUMBA_REGIONS`
# (False: the Python-piece path) and fork safety: `pieces.numba_region_ok`.

def _use_numba(*arrays) -> bool:
    return (all(a.dtype == arrays[0].dtype for a in arrays) and arrays[0].dtype in _NONE
            and _pieces.numba_region_ok())


@njit(parallel=True, cache=True, nogil=True)
def _forward_pieces(xc, w2t, kh, kw, stride, padding, OH, OW, bounds, per, scale, bias, pw, out):
    N, H, W, C = xc.shape
    K, Cout = w2t.shape
    x2 = xc.reshape(N * H * W, C)
    for p in prange(bounds.shape[0]):
        r0, r1 = bounds[p, 0], bounds[p, 1]
        buf = np.empty((0 if pw else min(per, r1 - r0) * OW, K), dtype=xc.dtype)
        for a in range(r0, r1, per):
            b = min(a + per, r1)
            blk = out[a * OW:b * OW]
            if pw:
                np.dot(x2[a * OW:b * OW], w2t, blk)
            else:
                cols = buf[:(b - a) * OW]
                _im._im2col_rows(xc, kh, kw, stride, padding, OH, OW, a, b, cols)
                np.dot(cols, w2t, blk)
            if scale.shape[0]:
                for i in range(blk.shape[0]):
                    for j in range(Cout):
                        blk[i, j] *= scale[j]
            if bias.shape[0]:
                for i in range(blk.shape[0]):
                    for j in range(Cout):
                        blk[i, j] += bias[j]


@njit(parallel=True, cache=True, nogil=True)
def _dw_pieces(xc, g2, kh, kw, stride, padding, OH, OW, bounds, per, K, pw, parts):
    """parts[p] = the weight gradient of piece p (its blocks summed in order)."""
    N, H, W, C = xc.shape
    x2 = xc.reshape(N * H * W, C)
    for p in prange(bounds.shape[0]):
        r0, r1 = bounds[p, 0], bounds[p, 1]
        dw = parts[p]
        if r1 <= r0:
            dw[:] = 0
            continue
        if pw:
            np.dot(g2[r0 * OW:r1 * OW].T, x2[r0 * OW:r1 * OW], dw)
            continue
        buf = np.empty((min(per, r1 - r0) * OW, K), dtype=xc.dtype)
        tmp = np.empty_like(dw)
        for a in range(r0, r1, per):
            b = min(a + per, r1)
            cols = buf[:(b - a) * OW]
            _im._im2col_rows(xc, kh, kw, stride, padding, OH, OW, a, b, cols)
            if a == r0:
                np.dot(g2[a * OW:b * OW].T, cols, dw)
            else:
                np.dot(g2[a * OW:b * OW].T, cols, tmp)
                dw += tmp


def _bounds(pieces) -> np.ndarray:
    return np.array(pieces, dtype=np.int64).reshape(-1, 2)


_NONE = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


def _vec(v, dt):
    return _NONE[np.dtype(dt)] if v is None else np.ascontiguousarray(v, dtype=dt).reshape(-1)


def conv_forward(x: np.ndarray, w2: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0,
                 scale: np.ndarray | None = None, bias: np.ndarray | None = None) -> np.ndarray:
    """x (N, H, W, C), w2 (Cout, KH*KW*C) -> (im2col(x) @ w2.T) * scale + bias, (N*OH*OW, Cout).

    `scale` multiplies after the whole dot product (so a ±1 conv times alpha is one rounding,
    as in the packed kernel); both may be None.
    """
    N, H, W, C = x.shape
    OH, OW = _geometry(x.shape, kh, kw, stride, padding)
    Cout, K = w2.shape
    out = np.empty((N * OH * OW, Cout), dtype=np.result_type(x, w2))
    xc = np.ascontiguousarray(x)
    w2t = np.ascontiguousarray(w2.T)                            # (K, Cout): measured ~20% faster GEMMs
    pw = _pointwise(kh, kw, stride, padding)
    x2 = xc.reshape(-1, C) if pw else None
    per = max(1, _im.BLOCK_ROWS // OW)                          # output rows (n, oy) per block

    if _use_numba(out, x, w2):
        _forward_pieces(xc, w2t, kh, kw, stride, padding, OH, OW, _bounds(_row_pieces(N, OH, N * OH * OW * K)),
                        per, _vec(scale, out.dtype), _vec(bias, out.dtype), pw, out)
        return out

    def piece(rows):
        r0, r1 = rows
        buf = None if pw else np.empty((min(per, r1 - r0) * OW, K), dtype=x.dtype)
        for a in range(r0, r1, per):
            b = min(a + per, r1)
            blk = out[a * OW:b * OW]
            if pw:
                np.matmul(x2[a * OW:b * OW], w2t, out=blk)
            else:
                cols = buf[:(b - a) * OW]
                _im._im2col_rows(xc, kh, kw, stride, padding, OH, OW, a, b, cols)
                np.matmul(cols, w2t, out=blk)
            if scale is not None:
                blk *= scale
            if bias is not None:
                blk += bias
    _pieces.run(piece, _row_pieces(N, OH, N * OH * OW * K))
    return out


def conv_backward(x: np.ndarray, g2: np.ndarray, w2: np.ndarray, kh: int, kw: int, stride: int = 1,
                  padding: int = 0, need_dx: bool = True, need_dw: bool = True):
    """(dx (N, H, W, C) or None, dw2 (Cout, KH*KW*C) or None) for out = im2col(x) @ w2.T.

    g2 = dL/dout (N*OH*OW, Cout); dx = col2im(g2 @ w2); dw2 = g2.T @ im2col(x).
    """
    N, H, W, C = x.shape
    OH, OW = _geometry(x.shape, kh, kw, stride, padding)
    Cout, K = w2.shape
    dt = np.result_type(x, g2, w2)
    xc = np.ascontiguousarray(x)
    g2 = np.ascontiguousarray(g2)
    pw = _pointwise(kh, kw, stride, padding)
    if need_dx and not pw and _transposable(kh, kw, stride, padding):
        # dx as a forward convolution of g with the flipped, transposed kernel: a GEMM with inner
        # dimension KH*KW*Cout instead of Cout, and no column gradient to scatter
        wt = w2.reshape(Cout, kh, kw, C)[:, ::-1, ::-1, :].transpose(3, 1, 2, 0).reshape(C, -1)
        dx = conv_forward(g2.reshape(N, OH, OW, Cout), wt, kh, kw, 1, kh - 1 - padding).reshape(x.shape)
        return dx, (conv_backward(x, g2, w2, kh, kw, stride, padding, need_dx=False)[1] if need_dw else None)
    if need_dw and not need_dx and _use_numba(x, g2, w2):
        bounds = _bounds(_row_pieces(N, OH, N * OH * OW * K))
        parts = np.empty((len(bounds), Cout, K), dtype=dt)
        _dw_pieces(xc, g2, kh, kw, stride, padding, OH, OW, bounds, max(1, _im.BLOCK_ROWS // OW), K, pw, parts)
        dw2 = parts[0].copy()
        for p in parts[1:]:
            dw2 += p
        return None, dw2
    x2 = xc.reshape(-1, C) if pw else None
    dx = np.empty(x.shape, dtype=dt) if need_dx else None
    dx2 = dx.reshape(-1, C) if (need_dx and pw) else None
    per = max(1, _im.BLOCK_ROWS // OW)

    def piece(rows):
        r0, r1 = rows
        dw = (np.empty if r1 > r0 else np.zeros)((Cout, K), dtype=dt) if need_dw else None
        if pw:
            a, b = r0 * OW, r1 * OW
            if need_dw:
                np.matmul(g2[a:b].T, x2[a:b], out=dw)
            if need_dx:
                np.matmul(g2[a:b], w2, out=dx2[a:b])
            return dw
        if need_dx:
            dx[r0 // OH:r1 // OH] = 0                           # whole images (col2im route)
        rows = min(per, r1 - r0) * OW
        buf = np.empty((rows, K), dtype=x.dtype) if need_dw else None
        dbuf = np.empty((rows, K), dtype=dt) if need_dx else None
        tmp = None
        for a in range(r0, r1, per):
            b = min(a + per, r1)
            g = g2[a * OW:b * OW]
            if need_dw:
                cols = buf[:(b - a) * OW]
                _im._im2col_rows(xc, kh, kw, stride, padding, OH, OW, a, b, cols)
                if a == r0:
                    np.matmul(g.T, cols, out=dw)
                else:
                    tmp = np.empty_like(dw) if tmp is None else tmp
                    np.matmul(g.T, cols, out=tmp)
                    dw += tmp
            if need_dx:
                dcols = dbuf[:(b - a) * OW]
                np.matmul(g, w2, out=dcols)
                _im._col2im_add_rows(dcols, kh, kw, stride, padding, OH, OW, a, b, dx)
        return dw
    parts = _pieces.run(piece, _row_pieces(N, OH, N * OH * OW * K, whole_images=need_dx and not pw))
    dw2 = None
    if need_dw:
        dw2 = parts[0]
        for p in parts[1:]:
            dw2 += p
    return dx, dw2
