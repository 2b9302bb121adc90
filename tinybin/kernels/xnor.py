"""XNOR-popcount GEMM and convolution on bit-packed signs: the binary layers' inner product.

Paper: Bulat & Tzimiropoulos, "Hierarchical Binary CNNs for Landmark Localization with Limited
Resources", section 3: with activations and weights binarized to {-1, +1}, a convolution's dot
products become XNOR + popcount. With ``a, b`` the packed signs of two length-n vectors (bit 1 =
+1, tail bits 0 in both),

    sum_c sign(a_c) * sign(b_c) = n - 2 * popcount(a XOR b),

because every channel where the signs differ contributes -1 instead of +1.

Kernels as a ladder (STYLE.md), each rung tested against the one below with exact equality:

GEMM (rows of ``a`` against rows of ``b``):
    ``xnor_gemm_ref``  float ±1 definition
    ``xnor_gemm_np``   NumPy on packed words with ``np.bitwise_count``
    ``_xnor_gemm``     plain loops, the Numba source (own popcount: Numba 0.68 has no
                       ``np.bitwise_count`` in nopython mode)
    ``xnor_gemm``      ``njit(_xnor_gemm)``

Convolution (NHWC activations, weights (Cout, KH, KW, Cin), zero padding of the SIGNED input,
i.e. a padded tap contributes 0 -- exactly what the float training graph computes):
    ``conv2d_ref``     float conv of sign(x) and sign(w)
    ``conv2d_np``      NumPy on packed words, one kernel tap at a time
    ``_conv2d_loops``  plain loops with a border test, the Numba source; ``conv2d_loops`` = njit
    ``conv2d_fast``    implicit GEMM with explicit 512-bit vector IR (AVX-512BW), see below
    ``conv2d``         public entry: validates, then dispatches to the fastest available rung

The fast kernel (design from ``notes/packed-kernels.md``):

- Implicit GEMM on the NHWC packed activations, no im2col: for an output pixel and one kernel
  row ``kh``, the taps ``kw = 0..KW-1`` are ``KW * Cw`` CONSECUTIVE words of the input row.
- Weights are pre-blocked once (``prepare_weights``) to ``(ceil(Cout/OB), KH, KW*Cw, OB)``: one
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
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import config, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .bitpack import n_words, tail_mask

__all__ = [
    "popcount64",
    "xnor_gemm_ref",
    "xnor_gemm_np",
    "xnor_gemm",
    "conv2d_ref",
    "conv2d_np",
    "conv2d_loops",
    "conv2d_fast",
    "conv2d",
    "conv2d_prepared",
    "prepare_weights",
    "PackedWeights",
    "output_size",
    "HAVE_FAST_KERNEL",
]

# Output channels per weight block (a multiple of 8: 8 int64 lanes per 512-bit vector) and
# output pixels per micro-kernel call. 32 x 4 keeps 16 byte accumulators + 4 weight vectors in
# the 32 zmm registers; the 64-bit accumulators are only touched at folds.
OB = 32
PIX = 4
_FOLD = 31  # words between psadbw folds: 31 * 8 bits = 248 < 256 per byte


# --------------------------------------------------------------------------------------------
# popcount: Python twin + Numba overload on llvm.ctpop (one `popcnt` instruction)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# shapes and checks
# --------------------------------------------------------------------------------------------


def output_size(size: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution: ``floor((size + 2*padding - k) / stride) + 1`` (0 if negative)."""
    return max(0, (size + 2 * padding - k) // stride + 1)


def _check_int(v, name: str, lo: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return int(v)


def _check_bits(a, name: str, ndim: int, n_channels: int) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a uint64 ndarray, got {type(a).__name__}")
    if a.dtype != np.uint64:
        raise ValueError(f"{name} must have dtype uint64 (packed signs), got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    Cw = n_words(n_channels)
    if a.shape[-1] != Cw:
        raise ValueError(
            f"{name} has {a.shape[-1]} words on its last axis, expected ceil(n_channels/64) = "
            f"{Cw} for n_channels = {n_channels}"
        )
    if n_channels % 64 and a.size and np.any(a[..., -1] & ~tail_mask(n_channels)):
        raise ValueError(
            f"{name} has nonzero tail bits beyond channel {n_channels} (pack with pack_signs)"
        )
    return a


def _check_float(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return a


def _sign(a: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, as float64 (exact integer sums below 2**53)."""
    return np.where(a >= 0, 1.0, -1.0)


# --------------------------------------------------------------------------------------------
# GEMM ladder
# --------------------------------------------------------------------------------------------


def xnor_gemm_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Definition: ``sign(a) @ sign(b).T``. a: (M, K), b: (N, K) float -> (M, N) int32."""
    a = _check_float(a, "a", 2)
    b = _check_float(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same K, got {a.shape[1]} and {b.shape[1]}")
    return (_sign(a) @ _sign(b).T).astype(np.int32)


def xnor_gemm_np(a_bits: np.ndarray, b_bits: np.ndarray, n: int) -> np.ndarray:
    """Packed GEMM in NumPy: ``n - 2 * popcount(a XOR b)`` summed over words.

    a_bits: (M, Kw), b_bits: (N, Kw) uint64 with Kw = ceil(n/64) -> (M, N) int32.
    """
    n = _check_int(n, "n", 1)
    _check_bits(a_bits, "a_bits", 2, n)
    _check_bits(b_bits, "b_bits", 2, n)
    pop = np.bitwise_count(a_bits[:, None, :] ^ b_bits[None, :, :]).sum(axis=-1, dtype=np.int64)
    return (n - 2 * pop).astype(np.int32)


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


# --------------------------------------------------------------------------------------------
# convolution ladder: reference, NumPy, plain loops
# --------------------------------------------------------------------------------------------


def conv2d_ref(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Definition: convolution of sign(x) with sign(w), zero padding -> int32.

    x: (N, H, W, C) float, w: (Cout, KH, KW, C) float -> (N, OH, OW, Cout) int32 with
    ``out[n, i, j, o] = sum_{kh, kw, c} xs[n, s*i + kh - p, s*j + kw - p, c] * sign(w[o, kh, kw, c])``
    where ``xs = sign(x)`` inside the image and 0 outside (padding is applied AFTER the sign).
    """
    x = _check_float(x, "x", 4)
    w = _check_float(w, "w", 4)
    stride = _check_int(stride, "stride", 1)
    p = _check_int(padding, "padding", 0)
    N, H, W, C = x.shape
    Cout, KH, KW, Cin = w.shape
    if Cin != C:
        raise ValueError(f"x has {C} channels but w expects {Cin}")
    OH, OW = output_size(H, KH, stride, p), output_size(W, KW, stride, p)
    xs = np.zeros((N, H + 2 * p, W + 2 * p, C))
    xs[:, p : p + H, p : p + W] = _sign(x)
    ws = _sign(w)
    out = np.zeros((N, OH, OW, Cout))
    for kh in range(KH):
        for kw in range(KW):
            patch = xs[:, kh : kh + stride * (OH - 1) + 1 : stride, kw : kw + stride * (OW - 1) + 1 : stride]
            out += patch @ ws[:, kh, kw, :].T  # (N, OH, OW, C) @ (C, Cout)
    return out.astype(np.int32)


def _check_conv_args(x_bits, w_bits, n_channels, stride, padding):
    n_channels = _check_int(n_channels, "n_channels", 1)
    stride = _check_int(stride, "stride", 1)
    padding = _check_int(padding, "padding", 0)
    for a, name in ((x_bits, "x_bits"), (w_bits, "w_bits")):
        if not isinstance(a, np.ndarray) or a.ndim != 4:
            shape = getattr(a, "shape", type(a).__name__)
            raise ValueError(f"{name} must be a 4-d uint64 array, got {shape}")
    if x_bits.shape[-1] != w_bits.shape[-1]:
        raise ValueError(
            f"channel words differ: x_bits has {x_bits.shape[-1]} words per pixel, "
            f"w_bits has {w_bits.shape[-1]} per tap"
        )
    _check_bits(x_bits, "x_bits", 4, n_channels)
    _check_bits(w_bits, "w_bits", 4, n_channels)
    return n_channels, stride, padding


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


# --------------------------------------------------------------------------------------------
# the fast kernel: 512-bit IR micro-kernel
# --------------------------------------------------------------------------------------------


def _fast_kernel_supported() -> tuple[bool, str]:
    """Can Numba's target emit AVX-512BW here? (psadbw.512 needs it.) Returns (ok, reason)."""
    if os.environ.get("TINYBIN_XNOR_FAST", "1") == "0":
        return False, "disabled by TINYBIN_XNOR_FAST=0"
    if config.DISABLE_JIT:
        return False, "NUMBA_DISABLE_JIT is set"
    name = (config.CPU_NAME or "host").lower()
    feats = (config.CPU_FEATURES or "").lower()
    if "-avx512bw" in feats:
        return False, "NUMBA_CPU_FEATURES disables avx512bw"
    if name != "host":
        known = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
                 "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "graniterapids",
                 "emeraldrapids", "znver4", "znver5")
        if "+avx512bw" in feats or name in known:
            return True, ""
        return False, f"NUMBA_CPU_NAME={name} without +avx512bw"
    try:
        import llvmlite.binding as ll

        host = ll.get_host_cpu_features()
        if host.get("avx512bw", False) and host.get("avx512f", False):
            return True, ""
    except Exception as e:  # pragma: no cover - llvmlite without host feature query
        return False, f"cannot query host CPU features ({e})"
    return False, "the CPU has no AVX-512BW"


HAVE_FAST_KERNEL, _NO_FAST_REASON = _fast_kernel_supported()
if not HAVE_FAST_KERNEL and not config.DISABLE_JIT:
    warnings.warn(
        f"tinybin.kernels.xnor: fast AVX-512 XNOR kernel unavailable ({_NO_FAST_REASON}); "
        "falling back to plain Numba loops (several times slower)",
        RuntimeWarning,
        stacklevel=2,
    )


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


@dataclass(frozen=True)
class PackedWeights:
    """Binary conv weights packed once for deployment.

    w_bits:  (Cout, KH, KW, Cw) uint64, the ``pack_signs`` layout (used by the fallback rungs)
    blocked: (ceil(Cout/OB), KH, KW*Cw, OB) uint64, the fast kernel's layout: one K-word of OB
             output channels is contiguous; missing output channels of the last block are 0 and
             their results are never stored.
    n_channels: true input channel count C (Cw = ceil(C/64)).

    No padding-correction sums are needed: the fast kernel skips out-of-image taps exactly.
    """

    w_bits: np.ndarray
    blocked: np.ndarray
    n_channels: int

    @property
    def cout(self) -> int:
        return self.w_bits.shape[0]

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.w_bits.shape[1], self.w_bits.shape[2]


def prepare_weights(w_bits: np.ndarray, n_channels: int) -> PackedWeights:
    """Block packed weights by output channel for the fast kernel (do it once per layer).

    w_bits: (Cout, KH, KW, Cw) uint64 from ``pack_signs(w)`` -> PackedWeights with
    ``blocked[b, kh, kw*Cw + c, o] = w_bits[b*OB + o, kh, kw, c]`` (0 beyond Cout).
    """
    n_channels = _check_int(n_channels, "n_channels", 1)
    _check_bits(w_bits, "w_bits", 4, n_channels)
    Cout, KH, KW, Cw = w_bits.shape
    if Cout < 1 or KH < 1 or KW < 1:
        raise ValueError(f"w_bits must have Cout, KH, KW >= 1, got shape {w_bits.shape}")
    nob = -(-Cout // OB)
    wpad = np.zeros((nob * OB, KH, KW * Cw), dtype=np.uint64)
    wpad[:Cout] = w_bits.reshape(Cout, KH, KW * Cw)
    blocked = np.ascontiguousarray(wpad.reshape(nob, OB, KH, KW * Cw).transpose(0, 2, 3, 1))
    return PackedWeights(np.ascontiguousarray(w_bits), blocked, n_channels)


def _check_out(out, shape, dtype):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != shape:
        got = (getattr(out, "dtype", type(out).__name__), getattr(out, "shape", None))
        raise ValueError(f"out must be a {np.dtype(dtype).name} array of shape {shape}, got {got}")
    # Strides of length-1 (or empty) axes never matter; NumPy may report anything for them.
    if out.size and (
        (out.shape[-1] > 1 and out.strides[-1] != out.itemsize)
        or any(n > 1 and (s % out.itemsize or s < 0) for n, s in zip(out.shape, out.strides))
    ):
        raise ValueError("out must have unit stride on the channel axis (a channel slice is fine)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


def conv2d_fast(x_bits: np.ndarray, prepared: PackedWeights, stride: int, padding: int,
                alpha: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """Run the AVX-512 kernel (no checks beyond the kernel's needs; use ``conv2d_prepared``)."""
    if not HAVE_FAST_KERNEL:
        raise RuntimeError(f"fast XNOR kernel unavailable: {_NO_FAST_REASON}")
    if out.size == 0:
        return out
    KH, KW = prepared.kernel_size
    nob = prepared.blocked.shape[0]
    a = np.zeros(nob * OB, dtype=np.float32)
    if alpha is not None:
        a[: prepared.cout] = alpha
    _conv_fast_kernel(np.ascontiguousarray(x_bits), prepared.blocked, prepared.n_channels,
                      KH, KW, stride, padding, out, a)
    return out


def conv2d_prepared(x_bits: np.ndarray, prepared: PackedWeights, stride: int = 1,
                    padding: int = 0, alpha: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Binary convolution with pre-packed weights (the deployment entry point).

    x_bits: (N, H, W, Cw) uint64 from ``pack_signs``/``pack_affine_signs``; prepared from
    ``prepare_weights``. Without alpha: int32 (N, OH, OW, Cout) equal to
    ``conv2d_ref(x, w, stride, padding)``. With alpha (Cout,) float32: float32
    ``out[..., o] = float32(dot) * alpha[o]`` (one rounding, as NumPy's
    ``dot.astype(float32) * alpha``). ``out`` may be given (right shape and dtype, unit channel
    stride, e.g. a channel slice of a concat buffer) and is returned.
    """
    if not isinstance(prepared, PackedWeights):
        raise ValueError(
            f"prepared must be a PackedWeights from prepare_weights, got {type(prepared).__name__}"
        )
    C, s, p = _check_conv_args(x_bits, prepared.w_bits, prepared.n_channels, stride, padding)
    N, H, W, _ = x_bits.shape
    Cout = prepared.cout
    KH, KW = prepared.kernel_size
    shape = (N, output_size(H, KH, s, p), output_size(W, KW, s, p), Cout)
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (Cout,) or not np.issubdtype(alpha.dtype, np.floating):
            raise ValueError(
                f"alpha must be a float array of shape ({Cout},), got {alpha.dtype} {alpha.shape}"
            )
        alpha = alpha.astype(np.float32, copy=False)
    out = _check_out(out, shape, np.float32 if alpha is not None else np.int32)
    if HAVE_FAST_KERNEL:
        return conv2d_fast(x_bits, prepared, s, p, alpha, out)
    if config.DISABLE_JIT:
        dot = conv2d_np(x_bits, prepared.w_bits, C, s, p)
    else:
        dot = conv2d_loops(x_bits, prepared.w_bits, C, s, p)
    out[...] = dot if alpha is None else dot.astype(np.float32) * alpha
    return out


def conv2d(x_bits: np.ndarray, w_bits: np.ndarray, n_channels: int, stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """Binary convolution of packed signs: XNOR + popcount, exact zero padding.

    x_bits: (N, H, W, Cw) uint64, w_bits: (Cout, KH, KW, Cw) uint64 (both from ``pack_signs``),
    Cw = ceil(n_channels/64) -> (N, OH, OW, Cout) int32 with OH = (H + 2*padding - KH)//stride + 1.
    Equals ``conv2d_ref(x, w, stride, padding)``, i.e. the float convolution of sign(x) and
    sign(w) with zero padding of the signed input: a padded tap contributes 0, not ±1.
    Uses the AVX-512 kernel when available, else plain Numba loops (NumPy with NUMBA_DISABLE_JIT).
    """
    C, s, p = _check_conv_args(x_bits, w_bits, n_channels, stride, padding)
    if not HAVE_FAST_KERNEL:
        if config.DISABLE_JIT:
            return conv2d_np(x_bits, w_bits, C, s, p)
        return conv2d_loops(x_bits, w_bits, C, s, p)
    return conv2d_prepared(x_bits, prepare_weights(w_bits, C), s, p)
