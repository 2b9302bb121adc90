"""Packing signs into uint64 words: the input side of XNOR-popcount convolution.

Paper: Bulat & Tzimiropoulos, "Hierarchical Binary CNNs for Landmark Localization with Limited
Resources", section 3 (binarization following XNOR-Net): a binary activation is ``sign(x)`` and
a binary convolution becomes XNOR + popcount once 64 signs share one machine word.

Layout (README, "Conventions"): signs are packed along the LAST axis (channels of an NHWC array)
into ``ceil(C / 64)`` uint64 words, little-endian: channel ``c`` is bit ``c & 63`` of word
``c >> 6``. Bit 1 means +1 (``x >= 0``; ``sign(0) = +1``, also for ``-0.0``), bit 0 means -1.
Unused tail bits of the last word are always 0, so that ``popcount(a XOR b)`` over whole words
counts only real channels when both operands obey the rule.

``sign`` here is THE sign of the package (``functional`` imports it): ``+1 where x >= 0, else
-1``, never 0. A packed bit is exactly ``sign(x) == +1``.

Two packers:

- ``pack_signs(x)``: bit = ``x >= 0``.
- ``pack_affine_signs(x, scale, shift)``: bit = ``x * scale + shift >= 0`` per channel, evaluated
  in float32 as two separately rounded operations (no FMA), i.e. bit for bit what NumPy computes
  for eval-mode BatchNorm followed by sign. This is the packer deployment uses.

Each has a NumPy reference (``*_ref``) and a Numba kernel; the public function dispatches to the
Numba kernel (or to the reference when ``NUMBA_DISABLE_JIT=1``, where the kernel would run as
slow Python). The Numba kernels handle 64 channels at a time with explicit 64-lane vector IR
(one compare, whose 64 one-bit lanes *are* the word), emitted with ``numba.extending.intrinsic``;
each intrinsic has a plain-Python twin (an ``overload`` pair) so the same kernel source also runs
without JIT.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import config, njit, prange, types
from numba.extending import intrinsic, overload

from ..threads import serial_if_small
from .elementwise import sign  # noqa: F401  (the one sign of the package; bit 1 <=> sign +1)

__all__ = [
    "sign",
    "pack_signs",
    "pack_signs_ref",
    "unpack_signs",
    "pack_affine_signs",
    "pack_affine_signs_ref",
    "pack_affine_signs_unchecked",
    "n_words",
    "tail_mask",
]

WORD_BITS = 64


def n_words(n_channels: int) -> int:
    """Number of uint64 words holding ``n_channels`` signs: ``ceil(n_channels / 64)``."""
    return (int(n_channels) + WORD_BITS - 1) // WORD_BITS


def tail_mask(n_channels: int) -> np.uint64:
    """Mask of the used bits of the LAST word for ``n_channels`` channels (all ones if C % 64 == 0)."""
    r = int(n_channels) % WORD_BITS
    return np.uint64((1 << r) - 1) if r else np.uint64(0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _as_float_array(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32/float64 ndarray with at least one axis; ValueError otherwise."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (channels last), got a 0-d array")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a float array (float16/32/64), got dtype {x.dtype}")
    if x.dtype == np.float16:
        x = x.astype(np.float32)  # exact: every float16 is a float32, signs unchanged
    elif x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float16, float32 or float64, got dtype {x.dtype}")
    return x


def _nonfinite_error(name: str = "x") -> ValueError:
    return ValueError(f"{name} must be finite to be packed into signs, got NaN or inf")


def _check_finite(x: np.ndarray, name: str = "x") -> None:
    if not np.isfinite(x).all():
        raise _nonfinite_error(name)


def _as_channel_vector(v, C: int, name: str) -> np.ndarray:
    """A per-channel float32 vector of length C (a scalar is broadcast)."""
    v = np.asarray(v)
    if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise ValueError(f"{name} must be a real array of shape ({C},), got dtype {v.dtype}")
    v = np.broadcast_to(v, (C,)) if v.ndim == 0 else v
    if v.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},) (one value per channel), got {v.shape}")
    v = np.ascontiguousarray(v, dtype=np.float32)
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return v


# --------------------------------------------------------------------------------------------
# NumPy references
# --------------------------------------------------------------------------------------------


def _packbits_last(bits: np.ndarray) -> np.ndarray:
    """Bool (..., C) -> uint64 (..., ceil(C/64)), little-endian bit order, zero tail."""
    C = bits.shape[-1]
    Cw = n_words(C)
    pad = Cw * WORD_BITS - C
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), dtype=bool)], axis=-1)
    b8 = np.packbits(bits, axis=-1, bitorder="little")  # (..., 8*Cw) bytes, byte k = channels 8k..8k+7
    return np.ascontiguousarray(b8).view("<u8").astype(np.uint64, copy=False).reshape(bits.shape[:-1] + (Cw,))


def pack_signs_ref(x: np.ndarray) -> np.ndarray:
    """Reference packer: sign(x) along the last axis into uint64 words (NumPy ``packbits``).

    x: (..., C) float -> (..., ceil(C/64)) uint64; bit ``c & 63`` of word ``c >> 6`` is
    ``x[..., c] >= 0``; unused tail bits are 0.
    """
    x = _as_float_array(x)
    _check_finite(x)
    return _packbits_last(x >= 0)


def unpack_signs(bits: np.ndarray, n_channels: int) -> np.ndarray:
    """Inverse of ``pack_signs``: uint64 (..., ceil(C/64)) -> float32 ±1 (..., C).

    Tail bits beyond ``n_channels`` are ignored.
    """
    bits = np.asarray(bits)
    C = int(n_channels)
    if bits.dtype != np.uint64:
        raise ValueError(f"bits must be uint64, got dtype {bits.dtype}")
    if bits.ndim == 0:
        raise ValueError("bits must have at least one axis (words last), got a 0-d array")
    if C < 0 or bits.shape[-1] != n_words(C):
        raise ValueError(
            f"bits has {bits.shape[-1]} words on its last axis, expected ceil({C}/64) = {n_words(C)}"
        )
    b8 = np.ascontiguousarray(bits).astype("<u8", copy=False).view(np.uint8)  # (..., 8*Cw)
    on = np.unpackbits(b8, axis=-1, bitorder="little")[..., :C]
    return np.where(on, np.float32(1), np.float32(-1))


def pack_affine_signs_ref(x: np.ndarray, scale, shift) -> np.ndarray:
    """Reference: pack ``sign(x * scale + shift)`` evaluated in float32 by NumPy.

    x: (..., C) float (cast to float32), scale, shift: (C,) -> (..., ceil(C/64)) uint64.
    """
    x = _as_float_array(x).astype(np.float32, copy=False)
    C = x.shape[-1]
    s = _as_channel_vector(scale, C, "scale")
    b = _as_channel_vector(shift, C, "shift")
    _check_finite(x)
    return _packbits_last(x * s + b >= 0)


# --------------------------------------------------------------------------------------------
# 64-lane word builders: intrinsic (JIT) + plain-Python twin (NUMBA_DISABLE_JIT)
# --------------------------------------------------------------------------------------------


def _vec_load64(context, builder, arrty, arr, off):
    """Load 64 consecutive elements ``arr.flat[off : off+64]`` as one LLVM vector (unaligned)."""
    a = context.make_array(arrty)(context, builder, arr)
    ptr = builder.gep(a.data, [off])
    vty = ir.VectorType(context.get_value_type(arrty.dtype), WORD_BITS)
    return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=arrty.dtype.bitwidth // 8)


@intrinsic
def _ge0_word_ir(typingctx, x, off):
    """uint64 whose bit j is ``x.flat[off + j] >= 0`` (one vector compare, the mask is the word)."""
    sig = types.uint64(x, types.intp)

    def codegen(context, builder, sig, args):
        v = _vec_load64(context, builder, sig.args[0], args[0], args[1])
        m = builder.fcmp_ordered(">=", v, ir.Constant(v.type, None))  # <64 x i1>, NaN -> 0
        return builder.bitcast(m, ir.IntType(64))

    return sig, codegen


@intrinsic
def _nonfinite_word_ir(typingctx, x, off):
    """uint64 whose bit j says ``x.flat[off + j]`` is NaN or inf (``v - v`` is NaN exactly then)."""
    sig = types.uint64(x, types.intp)

    def codegen(context, builder, sig, args):
        v = _vec_load64(context, builder, sig.args[0], args[0], args[1])
        z = builder.fsub(v, v)
        m = builder.fcmp_unordered("uno", z, z)
        return builder.bitcast(m, ir.IntType(64))

    return sig, codegen


@intrinsic
def _affine_ge0_word_ir(typingctx, x, off, s, b, coff):
    """uint64 whose bit j is ``x[off+j] * s[coff+j] + b[coff+j] >= 0`` in float32.

    A plain ``fmul`` then ``fadd`` with no fast-math flags: LLVM may not contract them into an
    FMA, so each is rounded to float32 exactly as NumPy rounds ``x * s + b``.
    """
    sig = types.uint64(x, types.intp, s, b, types.intp)

    def codegen(context, builder, sig, args):
        v = _vec_load64(context, builder, sig.args[0], args[0], args[1])
        vs = _vec_load64(context, builder, sig.args[2], args[2], args[4])
        vb = _vec_load64(context, builder, sig.args[3], args[3], args[4])
        y = builder.fadd(builder.fmul(v, vs), vb)
        m = builder.fcmp_ordered(">=", y, ir.Constant(y.type, None))
        return builder.bitcast(m, ir.IntType(64))

    return sig, codegen


def _ge0_word(x, off):
    """Python twin of ``_ge0_word_ir``."""
    w = 0
    for j in range(WORD_BITS):
        if x[off + j] >= 0:
            w |= 1 << j
    return np.uint64(w)


def _nonfinite_word(x, off):
    """Python twin of ``_nonfinite_word_ir``."""
    w = 0
    for j in range(WORD_BITS):
        if not math.isfinite(x[off + j]):
            w |= 1 << j
    return np.uint64(w)


def _affine_ge0_word(x, off, s, b, coff):
    """Python twin of ``_affine_ge0_word_ir`` (NumPy float32 scalars round like the vector ops)."""
    w = 0
    for j in range(WORD_BITS):
        if np.float32(x[off + j]) * np.float32(s[coff + j]) + np.float32(b[coff + j]) >= 0:
            w |= 1 << j
    return np.uint64(w)


@overload(_ge0_word)
def _ol_ge0_word(x, off):
    return lambda x, off: _ge0_word_ir(x, off)


@overload(_nonfinite_word)
def _ol_nonfinite_word(x, off):
    return lambda x, off: _nonfinite_word_ir(x, off)


@overload(_affine_ge0_word)
def _ol_affine_ge0_word(x, off, s, b, coff):
    return lambda x, off, s, b, coff: _affine_ge0_word_ir(x, off, s, b, coff)


# --------------------------------------------------------------------------------------------
# Numba kernels (rows in parallel; 64 channels per step; scalar tail)
# --------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def _pack_signs_kernel(x, out):
    """x: (R, C) float C-contiguous, out: (R, Cw) uint64. Returns False if x holds NaN/inf.

    Optimizations: one 64-lane vector compare per full word (the compare mask is the word);
    non-finite check fused into the same pass; rows in parallel.
    """
    R, C = x.shape
    Cw = out.shape[1]
    nfull = C // 64
    xf = x.reshape(R * C)
    bad = 0
    for r in prange(R):
        base = r * C
        for k in range(nfull):
            out[r, k] = _ge0_word(xf, base + 64 * k)
            if _nonfinite_word(xf, base + 64 * k) != 0:
                bad += 1
        if nfull < Cw:  # tail word: channels nfull*64 .. C-1, upper bits stay 0
            w = np.uint64(0)
            for j in range(C - 64 * nfull):
                v = xf[base + 64 * nfull + j]
                if v >= 0:
                    w |= np.uint64(1) << np.uint64(j)
                if not np.isfinite(v):
                    bad += 1
            out[r, nfull] = w
    return bad == 0


@njit(parallel=True, cache=True)
def _pack_affine_kernel(x, s, b, out):
    """bit = float32(float32(x * s) + b) >= 0; x: (R, C) float32, s, b: (C,) float32.

    Optimizations: 64-lane vector multiply, add, compare per word (no FMA: exactness first);
    non-finite check fused; rows in parallel.
    """
    R, C = x.shape
    Cw = out.shape[1]
    nfull = C // 64
    xf = x.reshape(R * C)
    bad = 0
    for r in prange(R):
        base = r * C
        for k in range(nfull):
            out[r, k] = _affine_ge0_word(xf, base + 64 * k, s, b, 64 * k)
            if _nonfinite_word(xf, base + 64 * k) != 0:
                bad += 1
        if nfull < Cw:
            w = np.uint64(0)
            for j in range(C - 64 * nfull):
                c = 64 * nfull + j
                v = xf[base + c]
                y = v * s[c]  # float32 * float32 -> float32, rounded
                y = y + b[c]  # then float32 add, rounded again
                if y >= 0:
                    w |= np.uint64(1) << np.uint64(j)
                if not np.isfinite(v):
                    bad += 1
            out[r, nfull] = w
    return bad == 0


def _rows(x: np.ndarray) -> np.ndarray:
    """(..., C) -> C-contiguous (R, C) view or copy."""
    C = x.shape[-1]
    return np.ascontiguousarray(x).reshape(-1, C)


# --------------------------------------------------------------------------------------------
# public packers
# --------------------------------------------------------------------------------------------


def pack_signs(x: np.ndarray) -> np.ndarray:
    """Pack sign(x) along the last axis into uint64 words.

    x: (..., C) float16/32/64, finite -> (..., ceil(C/64)) uint64. Bit ``c & 63`` of word
    ``c >> 6`` is 1 where ``x[..., c] >= 0`` (+1, including 0 and -0.0) and 0 where x < 0 (-1);
    unused tail bits are 0. Raises ValueError for NaN/inf, non-float dtypes and 0-d input.
    """
    x = _as_float_array(x)
    if config.DISABLE_JIT:
        return pack_signs_ref(x)
    lead, C = x.shape[:-1], x.shape[-1]
    x2 = _rows(x)
    out = np.empty((x2.shape[0], n_words(C)), dtype=np.uint64)
    if x2.size and not _pack_signs_kernel(x2, out):
        raise _nonfinite_error()
    return out.reshape(lead + (n_words(C),))


def pack_affine_signs(x: np.ndarray, scale, shift) -> np.ndarray:
    """Pack ``sign(x * scale + shift)`` per channel, bit-exact with NumPy's float32 arithmetic.

    x: (..., C) float (cast to float32 first); scale, shift: (C,) (or scalars), cast to float32.
    Returns (..., ceil(C/64)) uint64. The product and the sum are rounded separately (no FMA,
    no fast-math), so the bits equal ``pack_signs(x * scale + shift)`` computed by NumPy in
    float32 -- which is eval-mode BatchNorm followed by sign in the float network, with
    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``.
    """
    x = _as_float_array(x).astype(np.float32, copy=False)
    C = x.shape[-1]
    s = _as_channel_vector(scale, C, "scale")
    b = _as_channel_vector(shift, C, "shift")
    if config.DISABLE_JIT:
        return pack_affine_signs_ref(x, s, b)
    lead = x.shape[:-1]
    x2 = _rows(x)
    out = np.empty((x2.shape[0], n_words(C)), dtype=np.uint64)
    if x2.size and not _pack_affine_kernel(x2, s, b, out):
        raise _nonfinite_error()
    return out.reshape(lead + (n_words(C),))


def pack_affine_signs_unchecked(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``pack_affine_signs`` for callers that validated ``scale``/``shift`` once (deployment
    units call it per forward): x float32 (..., C); scale, shift C-contiguous float32 (C,),
    finite. x is still checked for NaN/inf (inside the kernel's single pass)."""
    if config.DISABLE_JIT:
        return pack_affine_signs_ref(x, scale, shift)
    lead, C = x.shape[:-1], x.shape[-1]
    x2 = _rows(x)
    out = np.empty((x2.shape[0], n_words(C)), dtype=np.uint64)
    with serial_if_small(x2.size):
        ok = not x2.size or _pack_affine_kernel(x2, scale, shift, out)
    if not ok:
        raise _nonfinite_error()
    return out.reshape(lead + (n_words(C),))
