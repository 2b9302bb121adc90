"""XNOR-popcount ladder, rung 3: the fast convolution kernel (explicit vector IR).

Design (measured in the project's kernel notes):

- Implicit GEMM on the NHWC packed activations, no im2col: for an output pixel and one kernel
  row ``kh``, the taps ``kw = 0..KW-1`` are ``KW * Cw`` CONSECUTIVE words of the input row.
- Weights are pre-blocked once (``block_weights``) to ``(ceil(Cout/OB), KH, KW*Cw, OB)``: one
  K-word of OB = 32 output channels is four 512-bit vectors.
- Micro-kernel (one LLVM IR loop, ``numba.extending.intrinsic``): for each K-word broadcast the
  activation word of P = 4 neighbouring output pixels, XOR with the 4 weight vectors, count bits
  per BYTE (``llvm.ctpop`` on ``<64 x i8>``: ``vpopcntb`` with AVX512-BITALG, a ``vpshufb``
  nibble lookup without), add into byte accumulators, and every <= 31 words fold the bytes into
  64-bit lanes with ``psadbw`` (``llvm.x86.avx512.psad.bw.512``; 31 * 8 < 256 so bytes never
  overflow). The weight vectors are loaded once per word and used for all P pixels.
- Exact zero padding with a border rule instead of a padded copy: the in-image taps of an output
  pixel always form a rectangle ``[kh0, kh1) x [kw0, kw1)``, i.e. ``kh1 - kh0`` runs of
  ``(kw1 - kw0) * Cw`` consecutive words; the kernel sums popcounts over just those runs and uses
  the true count ``K = (kh1-kh0) * (kw1-kw0) * C`` in ``K - 2 * pop``. Pixels whose whole kernel
  row fits in the image go through the P-pixel micro-kernel; the left/right border pixels through
  a one-pixel variant.
- Output: int32 ``K - 2*pop`` or float32 ``float32(K - 2*pop) * alpha[o]`` (XNOR-Net's per-output
  scale, one rounding), written with masked stores straight into an NHWC array, which may be a
  channel slice of a larger buffer (e.g. a concat). Rows of output pixels run in parallel (prange).

Whether this rung may run on the current code target is decided in ``xnor.py`` (the one place
for CPU detection and kernel choice); nothing here checks.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["OB", "PIX", "block_weights", "run"]

# Output channels per weight block (a multiple of 8: 8 int64 lanes per 512-bit vector) and
# output pixels per micro-kernel call. 32 x 4 keeps 16 byte accumulators + 4 weight vectors in
# the 32 zmm registers; the 64-bit accumulators are only touched at folds.
OB = 32
PIX = 4
_FOLD = 31  # words between psadbw folds: 31 * 8 bits = 248 < 256 per byte


def _make_block_intrinsic(P: int, ob: int):
    """Build the micro-kernel intrinsic for P output pixels x ``ob`` output channels.

    Call: ``blk(x, xoff, xrow, xpix, w, woff, wrow, nrows, seglen, K, out, ooff, opix, nvalid,
    alpha, aoff)`` with all offsets and strides in ELEMENTS of the respective arrays:
      pixel p, run r, word i reads ``x.flat[xoff + p*xpix + r*xrow + i]`` (i < seglen, r < nrows)
      and the OB weight words ``w.flat[woff + r*wrow + i*ob : ... + ob]``;
      writes ``K - 2*pop`` (int32 out) or ``float32(K - 2*pop) * alpha.flat[aoff + o]`` (float32
      out) to ``out.flat[ooff + p*opix + o]`` for o < nvalid.
    """
    assert ob % 8 == 0
    NV = ob // 8

    @intrinsic
    def blk(typingctx, x, xoff, xrow, xpix, w, woff, wrow, nrows, seglen, K, out, ooff, opix,
            nvalid, alpha, aoff):
        if not (isinstance(x, types.Array) and x.dtype == types.uint64
                and isinstance(w, types.Array) and w.dtype == types.uint64
                and isinstance(out, types.Array) and out.dtype in (types.int32, types.float32)
                and isinstance(alpha, types.Array) and alpha.dtype == types.float32):
            return None
        ip = types.intp
        sig = types.void(x, ip, ip, ip, w, ip, ip, ip, ip, ip, out, ip, ip, ip, alpha, ip)

        def codegen(context, builder, sig, args):
            (x_, xoff_, xrow_, xpix_, w_, woff_, wrow_, nrows_, seglen_, K_, out_, ooff_,
             opix_, nvalid_, alpha_, aoff_) = args
            float_out = sig.args[10].dtype == types.float32
            i1, i8, i32, i64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
            f32 = ir.FloatType()
            v8i64 = ir.VectorType(i64, 8)
            v64i8 = ir.VectorType(i8, 64)
            mod = builder.module
            ctpop = cgutils.get_or_insert_function(mod, ir.FunctionType(v64i8, [v64i8]),
                                                   "llvm.ctpop.v64i8")
            psad = cgutils.get_or_insert_function(
                mod, ir.FunctionType(v8i64, [v64i8, v64i8]), "llvm.x86.avx512.psad.bw.512"
            )

            def data(i, a):
                return context.make_array(sig.args[i])(context, builder, a).data

            xptr, wptr, optr, aptr = data(0, x_), data(4, w_), data(10, out_), data(14, alpha_)
            zero_b = ir.Constant(v64i8, None)
            zero_q = ir.Constant(v8i64, None)
            # Accumulators live in allocas in the entry block; mem2reg/SROA turn them into
            # registers (phis), so the loop body is pure register arithmetic.
            bacc = [[cgutils.alloca_once_value(builder, zero_b) for _ in range(NV)] for _ in range(P)]
            qacc = [[cgutils.alloca_once_value(builder, zero_q) for _ in range(NV)] for _ in range(P)]
            for p in range(P):
                for j in range(NV):
                    builder.store(zero_b, bacc[p][j])
                    builder.store(zero_q, qacc[p][j])
            cnt = cgutils.alloca_once_value(builder, i64(0))  # words since the last fold
            builder.store(i64(0), cnt)
            kpos = cgutils.alloca_once_value(builder, i64(0))
            fold_lim = i64(_FOLD)

            def fold():
                for p in range(P):
                    for j in range(NV):
                        s = builder.call(psad, [builder.load(bacc[p][j]), zero_b])
                        builder.store(builder.add(builder.load(qacc[p][j]), s), qacc[p][j])
                        builder.store(zero_b, bacc[p][j])
                builder.store(i64(0), cnt)

            with cgutils.for_range(builder, nrows_) as rl:
                r = rl.index
                xrow_base = [builder.add(builder.add(xoff_, builder.mul(r, xrow_)),
                                         builder.mul(i64(p), xpix_)) for p in range(P)]
                wrow_base = builder.add(woff_, builder.mul(r, wrow_))
                builder.store(i64(0), kpos)
                bb_cond = builder.append_basic_block("xnor.chunk.cond")
                bb_body = builder.append_basic_block("xnor.chunk.body")
                bb_end = builder.append_basic_block("xnor.chunk.end")
                builder.branch(bb_cond)
                builder.position_at_end(bb_cond)
                k = builder.load(kpos)
                builder.cbranch(builder.icmp_signed("<", k, seglen_), bb_body, bb_end)
                builder.position_at_end(bb_body)
                k = builder.load(kpos)
                c = builder.load(cnt)
                left_row = builder.sub(seglen_, k)
                left_fold = builder.sub(fold_lim, c)
                m = builder.select(builder.icmp_signed("<", left_row, left_fold), left_row, left_fold)
                with cgutils.for_range(builder, m) as il:
                    wi = builder.add(k, il.index)
                    avs = []
                    for p in range(P):
                        a = builder.load(builder.gep(xptr, [builder.add(xrow_base[p], wi)]), align=8)
                        av = builder.insert_element(ir.Constant(v8i64, ir.Undefined), a, i32(0))
                        avs.append(builder.shuffle_vector(av, ir.Constant(v8i64, ir.Undefined),
                                                          ir.Constant(ir.VectorType(i32, 8), None)))
                    wbase = builder.add(wrow_base, builder.mul(wi, i64(ob)))
                    for j in range(NV):
                        wp = builder.gep(wptr, [builder.add(wbase, i64(8 * j))])
                        wv = builder.load(builder.bitcast(wp, v8i64.as_pointer()), align=8)
                        for p in range(P):
                            t = builder.bitcast(builder.xor(avs[p], wv), v64i8)
                            pc = builder.call(ctpop, [t])
                            builder.store(builder.add(builder.load(bacc[p][j]), pc), bacc[p][j])
                builder.store(builder.add(k, m), kpos)
                c2 = builder.add(c, m)
                builder.store(c2, cnt)
                with builder.if_then(builder.icmp_signed(">=", c2, fold_lim)):
                    fold()
                builder.branch(bb_cond)
                builder.position_at_end(bb_end)
            fold()

            # Epilogue: K - 2*pop, optional alpha, masked stores of nvalid lanes.
            Kv = builder.insert_element(ir.Constant(v8i64, ir.Undefined), K_, i32(0))
            Kv = builder.shuffle_vector(Kv, ir.Constant(v8i64, ir.Undefined),
                                        ir.Constant(ir.VectorType(i32, 8), None))
            nv = builder.insert_element(ir.Constant(v8i64, ir.Undefined), nvalid_, i32(0))
            nv = builder.shuffle_vector(nv, ir.Constant(v8i64, ir.Undefined),
                                        ir.Constant(ir.VectorType(i32, 8), None))
            ety = f32 if float_out else i32
            vout = ir.VectorType(ety, 8)
            mstore = cgutils.get_or_insert_function(
                mod,
                ir.FunctionType(ir.VoidType(), [vout, vout.as_pointer(), i32, ir.VectorType(i1, 8)]),
                f"llvm.masked.store.v8{'f32' if float_out else 'i32'}.p0",
            )
            for j in range(NV):
                lanes = ir.Constant(v8i64, [8 * j + q for q in range(8)])
                mask = builder.icmp_signed("<", lanes, nv)  # <8 x i1>
                if float_out:
                    ap = builder.gep(aptr, [builder.add(aoff_, i64(8 * j))])
                    alv = builder.load(builder.bitcast(ap, ir.VectorType(f32, 8).as_pointer()), align=4)
                for p in range(P):
                    pop = builder.load(qacc[p][j])
                    d = builder.trunc(builder.sub(Kv, builder.shl(pop, ir.Constant(v8i64, [1] * 8))),
                                      ir.VectorType(i32, 8))
                    if float_out:
                        d = builder.fmul(builder.sitofp(d, vout), alv)
                    off = builder.add(builder.add(ooff_, builder.mul(i64(p), opix_)), i64(8 * j))
                    op = builder.bitcast(builder.gep(optr, [off]), vout.as_pointer())
                    builder.call(mstore, [d, op, i32(4), mask])
            return context.get_dummy_value()

        return sig, codegen

    return blk


_blk_wide = _make_block_intrinsic(PIX, OB)
_blk_one = _make_block_intrinsic(1, OB)


@njit(parallel=True, cache=True)
def _conv_fast_kernel(x, wb, C, KH, KW, stride, pad, out, alpha):
    """Drive the micro-kernels over all output pixels. See the module docstring.

    x: (N, H, W, Cw) uint64 C-contiguous; wb: (NOB, KH, KW*Cw, OB) uint64; out: (N, OH, OW, Cout)
    int32 or float32 with unit channel stride; alpha: (NOB*OB,) float32 (ignored for int32).

    Optimizations: implicit GEMM (contiguous K runs, no im2col); OB=32 outputs x PIX pixels per
    micro-kernel with 512-bit byte popcounts and psadbw folds; border pixels skip padded taps
    instead of reading a padded copy; output rows in parallel.
    """
    N, H, W, Cw = x.shape
    NOB = wb.shape[0]
    ob = wb.shape[3]
    OH = out.shape[1]
    OW = out.shape[2]
    Cout = out.shape[3]
    isz = out.itemsize
    so_n = out.strides[0] // isz
    so_h = out.strides[1] // isz
    so_w = out.strides[2] // isz
    xrow = W * Cw
    xpix = stride * Cw
    wrow = KW * Cw * ob
    # Interior columns: the whole kernel row lies inside the image (kw0 = 0, kw1 = KW).
    ox_lo = min(OW, (pad + stride - 1) // stride)
    ox_hi = ox_lo
    if W + pad - KW >= 0:
        ox_hi = max(ox_lo, min(OW, (W + pad - KW) // stride + 1))
    for t in prange(N * OH):
        n = t // OH
        oy = t - n * OH
        iy0 = oy * stride - pad
        kh0 = max(0, -iy0)
        nrows = max(0, min(KH, H - iy0) - kh0)
        for b in range(NOB):
            nvalid = min(ob, Cout - b * ob)
            obase = n * so_n + oy * so_h + b * ob
            ox = 0
            while ox < OW:
                if ox >= ox_lo and ox + PIX <= ox_hi:
                    ix0 = ox * stride - pad
                    xoff = ((n * H + iy0 + kh0) * W + ix0) * Cw if nrows > 0 else 0
                    woff = (b * KH + kh0) * wrow
                    _blk_wide(x, xoff, xrow, xpix, wb, woff, wrow, nrows, KW * Cw,
                              nrows * KW * C, out, obase + ox * so_w, so_w, nvalid, alpha, b * ob)
                    ox += PIX
                else:
                    ix0 = ox * stride - pad
                    kw0 = max(0, -ix0)
                    ncols = max(0, min(KW, W - ix0) - kw0)
                    nr = nrows if ncols > 0 else 0
                    xoff = ((n * H + iy0 + kh0) * W + ix0 + kw0) * Cw if nr > 0 else 0
                    woff = (b * KH + kh0) * wrow + kw0 * Cw * ob
                    _blk_one(x, xoff, xrow, xpix, wb, woff, wrow, nr, ncols * Cw,
                             nr * ncols * C, out, obase + ox * so_w, so_w, nvalid, alpha, b * ob)
                    ox += 1


def block_weights(w_bits: np.ndarray, ob: int = OB) -> np.ndarray:
    """(Cout, KH, KW, Cw) uint64 -> (ceil(Cout/ob), KH, KW*Cw, ob) with
    ``blocked[b, kh, kw*Cw + c, o] = w_bits[b*ob + o, kh, kw, c]`` (0 beyond Cout)."""
    Cout, KH, KW, Cw = w_bits.shape
    nob = -(-Cout // ob)
    wpad = np.zeros((nob * ob, KH, KW * Cw), dtype=np.uint64)
    wpad[:Cout] = w_bits.reshape(Cout, KH, KW * Cw)
    return np.ascontiguousarray(wpad.reshape(nob, ob, KH, KW * Cw).transpose(0, 2, 3, 1))


def run(x_bits: np.ndarray, blocked: np.ndarray, n_channels: int, kh: int, kw: int, stride: int,
        padding: int, alpha: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """Run the kernel into ``out`` (int32 dot products, or float32 times alpha); no checks."""
    if out.size == 0:
        return out
    nob, ob = blocked.shape[0], blocked.shape[3]
    a = np.zeros(nob * ob, dtype=np.float32)
    if alpha is not None:
        a[: out.shape[3]] = alpha
    _conv_fast_kernel(np.ascontiguousarray(x_bits), blocked, n_channels, kh, kw, stride, padding,
                      out, a)
    return out
