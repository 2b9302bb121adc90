"""XNOR-popcount GEMM and convolution on bit-packed signs: the binary layers' inner product.

Paper: Bulat & Tzimiropoulos, "Hierarchical Binary CNNs for Landmark Localization with Limited
Resources", section 3: with activations and weights binarized to {-1, +1}, a convolution's dot
products become XNOR + popcount. With ``a, b`` the packed signs of two length-n vectors (bit 1 =
+1, tail bits 0 in both),

    sum_c sign(a_c) * sign(b_c) = n - 2 * popcount(a XOR b),

because every channel where the signs differ contributes -1 instead of +1.

The ladder (STYLE.md), one module per rung, each tested against the one below for equality:

    xnor_ref.py    rung 0  float ±1 definitions: ``xnor_gemm_ref``, ``conv2d_ref``
    xnor_np.py     rung 1  NumPy on packed words: ``xnor_gemm_np``, ``conv2d_np``
    xnor_loops.py  rung 2  plain Numba loops, scalar popcount: ``xnor_gemm``, ``conv2d_loops``
    xnor_fast.py   rung 3  implicit-GEMM kernel in target-independent vector IR: ``conv2d_fast``
    cpu.py                 CPU detection and kernel choice (the ONLY place): ``CHOICE``
    xnor.py        this module: weight preparation and the public entry points ``conv2d`` /
                   ``conv2d_prepared``, which run the rung ``CHOICE`` names

Convolutions take NHWC packed activations and weights (Cout, KH, KW, Cw) and use zero padding
of the SIGNED input: a padded tap contributes 0, exactly what the float training graph computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import config

from . import cpu, xnor_fast
from .xnor_loops import conv2d_loops, popcount64, xnor_gemm
from .xnor_np import conv2d_np, xnor_gemm_np
from .xnor_ref import _check_bits, _check_conv_args, _check_int, conv2d_ref, output_size, xnor_gemm_ref

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
    "CHOICE",
]

OB = xnor_fast.OB


CHOICE = cpu.CHOICE  # decided once, in cpu.py, from the code target Numba compiles for
HAVE_FAST_KERNEL = CHOICE.fast
_NO_FAST_REASON = "" if HAVE_FAST_KERNEL else CHOICE.reason


# --------------------------------------------------------------------------------------------
# prepared weights and the public entry points
# --------------------------------------------------------------------------------------------


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
    return PackedWeights(np.ascontiguousarray(w_bits), xnor_fast.block_weights(w_bits, OB), n_channels)


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
    """Run the fast kernel (no checks beyond the kernel's needs; use ``conv2d_prepared``)."""
    if not HAVE_FAST_KERNEL:
        raise RuntimeError(f"fast XNOR kernel unavailable: {_NO_FAST_REASON}")
    KH, KW = prepared.kernel_size
    return xnor_fast.run(x_bits, prepared.blocked, prepared.n_channels, KH, KW, stride, padding,
                         alpha, out)


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
    Runs the kernel ``cpu.CHOICE`` names: the fast vector kernel, plain Numba loops
    (``TINYBIN_XNOR_FAST=0``) or NumPy (``NUMBA_DISABLE_JIT=1``).
    """
    C, s, p = _check_conv_args(x_bits, w_bits, n_channels, stride, padding)
    if not HAVE_FAST_KERNEL:
        if config.DISABLE_JIT:
            return conv2d_np(x_bits, w_bits, C, s, p)
        return conv2d_loops(x_bits, w_bits, C, s, p)
    return conv2d_prepared(x_bits, prepare_weights(w_bits, C), s, p)
