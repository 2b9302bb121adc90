"""XNOR-popcount ladder, rung 3: the fast convolution kernel (target-independent vector IR).

Design (measured in the project's kernel notes), for any CPU Numba targets:

- Implicit GEMM on the NHWC packed activations, no im2col: for an output pixel and one kernel
  row ``kh``, the taps ``kw = 0..KW-1`` are ``KW * Cw`` CONSECUTIVE words of the input row.
- Weights are pre-blocked once (``block_weights``) to ``(ceil(Cout/OB), KH, KW*Cw, OB)``: one
  K-word of OB output channels is ``OB / lanes`` vectors of 64-bit lanes.
- Micro-kernel (one LLVM IR loop, ``numba.extending.intrinsic``): for each K-word broadcast the
  activation word of PIX neighbouring output pixels, XOR with the weight vectors, count bits per
  BYTE with the generic ``llvm.ctpop`` on a byte vector, add into byte accumulators, and every
  <= 31 words fold the bytes into the 64-bit lanes (31 * 8 < 256, so bytes never overflow; the
  fold is a shift-and-mask tree, plain integer vector IR). LLVM lowers the byte popcount to
  ``vpopcntb`` (AVX512-BITALG), a ``vpshufb`` nibble lookup (AVX2, AVX-512BW without BITALG,
  SSSE3) or ``cnt`` (ARM NEON). The weight vectors are read once per word for all PIX pixels.
- Exact zero padding with a border rule instead of a padded copy: the in-image taps of an output
  pixel always form a rectangle ``[kh0, kh1) x [kw0, kw1)``, i.e. ``kh1 - kh0`` runs of
  ``(kw1 - kw0) * Cw`` consecutive words; the kernel sums popcounts over just those runs and uses
  the true count ``K = (kh1-kh0) * (kw1-kw0) * C`` in ``K - 2 * pop``. Pixels whose whole kernel
  row fits in the image go through the PIX-pixel micro-kernel; the left/right border pixels
  through a one-pixel variant.
- Output: int32 ``K - 2*pop`` or float32 ``float32(K - 2*pop) * alpha[o]`` (XNOR-Net's per-output
  scale, one rounding), written with ``llvm.masked.store`` straight into an NHWC array, which may
  be a channel slice of a larger buffer (e.g. a concat). Rows of output pixels run in parallel.

The vector width and register block (OB, PIX) come from ``cpu.CHOICE`` -- the one place that
looks at the CPU; a pure function of the code target, which Numba's cache key also contains.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..threads import serial_if_small
from .cpu import CHOICE

__all__ = ["OB", "PIX", "block_weights", "run"]

VBITS = CHOICE.vector_bits or 128  # the fast kernel is only called when CHOICE.fast
OB = CHOICE.ob or 8                # output channels per weight block (multiple of VBITS/64)
PIX = CHOICE.pix or 1              # output pixels per micro-kernel call
_FOLD = 31  # words between folds: 31 * 8 bits = 248 < 256 per byte


def _make_block_intrinsic(P: int, ob: int, vbits: int, qword: bool = False):
    """Build the micro-kernel intrinsic for P output pixels x ``ob`` output channels.

    Call: ``blk(x, xoff, xrow, xpix, w, woff, wrow, nrows, seglen, K, out, ooff, opix, nvalid,
    alpha, aoff)`` with all offsets and strides in ELEMENTS of the respective arrays:
      pixel p, run r, word i reads ``x.flat[xoff + p*xpix + r*xrow + i]`` (i < seglen, r < nrows)
      and the ob weight words ``w.flat[woff + r*wrow + i*ob : ... + ob]``;
      writes ``K - 2*pop`` (int32 out) or ``float32(K - 2*pop) * alpha.flat[aoff + o]`` (float32
      out) to ``out.flat[ooff + p*opix + o]`` for o < nvalid.

    qword=False: byte popcounts into byte accumulators, folded into the 64-bit lanes every
    <= 31 words. qword=True: ``llvm.ctpop`` on ``<L x i64>`` (one ``vpopcntq`` with
    AVX512-VPOPCNTDQ) straight into the 64-bit accumulators: no byte stage, no folds. Without
    VPOPCNTDQ LLVM would add a byte-sum per vector, so the choice is the target's (``cpu.py``).
    """
    L = vbits // 64  # 64-bit lanes (= output channels) per vector
    assert ob % L == 0
    NV = ob // L
    NB = vbits // 8  # bytes per vector

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
            vq = ir.VectorType(i64, L)
            vb = ir.VectorType(i8, NB)
            mod = builder.module
            if qword:
                ctpop = cgutils.get_or_insert_function(mod, ir.FunctionType(vq, [vq]),
                                                       f"llvm.ctpop.v{L}i64")
            else:
                ctpop = cgutils.get_or_insert_function(mod, ir.FunctionType(vb, [vb]),
                                                       f"llvm.ctpop.v{NB}i8")

            def splat(v, ty=vq):
                u = builder.insert_element(ir.Constant(ty, ir.Undefined), v, i32(0))
                return builder.shuffle_vector(u, ir.Constant(ty, ir.Undefined),
                                              ir.Constant(ir.VectorType(i32, ty.count), None))

            def qconst(c):
                return ir.Constant(vq, [c] * L)

            def hsum_bytes(v):
                """Sum of the 8 bytes of every 64-bit lane (a shift-and-mask tree, no overflow:
                each byte <= 248, so the 16-bit partial sums stay < 2**16)."""
                t = builder.bitcast(v, vq)
                t = builder.add(builder.and_(t, qconst(0x00FF00FF00FF00FF)),
                                builder.and_(builder.lshr(t, qconst(8)), qconst(0x00FF00FF00FF00FF)))
                t = builder.add(builder.and_(t, qconst(0x0000FFFF0000FFFF)),
                                builder.and_(builder.lshr(t, qconst(16)), qconst(0x0000FFFF0000FFFF)))
                return builder.add(builder.and_(t, qconst(0xFFFFFFFF)), builder.lshr(t, qconst(32)))

            def data(i, a):
                return context.make_array(sig.args[i])(context, builder, a).data

            xptr, wptr, optr, aptr = data(0, x_), data(4, w_), data(10, out_), data(14, alpha_)
            zero_b = ir.Constant(vb, None)
            zero_q = ir.Constant(vq, None)
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
            fold_lim = i64(_FOLD if not qword else 1 << 62)  # qword: one chunk per run

            def fold():
                if qword:
                    return
                for p in range(P):
                    for j in range(NV):
                        s = hsum_bytes(builder.load(bacc[p][j]))
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
                        avs.append(splat(a))
                    wbase = builder.add(wrow_base, builder.mul(wi, i64(ob)))
                    for j in range(NV):
                        wp = builder.gep(wptr, [builder.add(wbase, i64(L * j))])
                        wv = builder.load(builder.bitcast(wp, vq.as_pointer()), align=8)
                        for p in range(P):
                            if qword:
                                pc = builder.call(ctpop, [builder.xor(avs[p], wv)])
                                builder.store(builder.add(builder.load(qacc[p][j]), pc), qacc[p][j])
                            else:
                                t = builder.bitcast(builder.xor(avs[p], wv), vb)
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
            Kv = splat(K_)
            nv = splat(nvalid_)
            ety = f32 if float_out else i32
            vout = ir.VectorType(ety, L)
            mstore = cgutils.get_or_insert_function(
                mod,
                ir.FunctionType(ir.VoidType(), [vout, vout.as_pointer(), i32, ir.VectorType(i1, L)]),
                f"llvm.masked.store.v{L}{'f32' if float_out else 'i32'}.p0",
            )
            for j in range(NV):
                lanes = ir.Constant(vq, [L * j + q for q in range(L)])
                mask = builder.icmp_signed("<", lanes, nv)  # <L x i1>
                if float_out:
                    ap = builder.gep(aptr, [builder.add(aoff_, i64(L * j))])
                    alv = builder.load(builder.bitcast(ap, ir.VectorType(f32, L).as_pointer()), align=4)
                for p in range(P):
                    pop = builder.load(qacc[p][j])
                    d = builder.trunc(builder.sub(Kv, builder.shl(pop, qconst(1))),
                                      ir.VectorType(i32, L))
                    if float_out:
                        d = builder.fmul(builder.sitofp(d, vout), alv)
                    off = builder.add(builder.add(ooff_, builder.mul(i64(p), opix_)), i64(L * j))
                    op = builder.bitcast(builder.gep(optr, [off]), vout.as_pointer())
                    builder.call(mstore, [d, op, i32(4), mask])
            return context.get_dummy_value()

        return sig, codegen

    return blk


_blk_wide = _make_block_intrinsic(PIX, OB, VBITS, CHOICE.qword)
_blk_one = _make_block_intrinsic(1, OB, VBITS, CHOICE.qword)


@njit(parallel=True, cache=True)
def _conv_fast_kernel(x, wb, C, KH, KW, stride, pad, out, alpha):
    """Drive the micro-kernels over all output pixels. See the module docstring.

    x: (N, H, W, Cw) uint64 C-contiguous; wb: (NOB, KH, KW*Cw, OB) uint64; out: (N, OH, OW, Cout)
    int32 or float32 with unit channel stride; alpha: (NOB*OB,) float32 (ignored for int32).

    Optimizations: implicit GEMM (contiguous K runs, no im2col); OB outputs x PIX pixels per
    micro-kernel with byte popcounts and periodic folds; border pixels skip padded taps instead
    of reading a padded copy; output rows in parallel.
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
    """Run the kernel into ``out`` (int32 dot products, or float32 times alpha); no checks.

    alpha: None, (Cout,) float32, or already padded to (ceil(Cout/OB)*OB,) float32."""
    if out.size == 0:
        return out
    nob, ob = blocked.shape[0], blocked.shape[3]
    if ob != OB:
        raise ValueError(f"weights blocked by {ob} output channels, this kernel needs {OB}")
    if alpha is not None and alpha.shape == (nob * ob,) and alpha.dtype == np.float32:
        a = alpha  # already padded to whole blocks (deployment units keep it that way)
    else:
        a = np.zeros(nob * ob, dtype=np.float32)
        if alpha is not None:
            a[: out.shape[3]] = alpha
    N, OH, OW, Cout = out.shape
    with serial_if_small(N * OH * OW * Cout * kh * kw * x_bits.shape[3] * 8):  # ~popcount ops
        _conv_fast_kernel(np.ascontiguousarray(x_bits), blocked, n_channels, kh, kw, stride,
                          padding, out, a)
    return out
