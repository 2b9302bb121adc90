"""Numba kernels, each beside its pure-NumPy reference (the kernel ladder of STYLE.md).

im2col      im2col / col2im for NHWC convolution (and the cache-blocked variant)
pool        max / average pooling, nearest and bilinear upsampling
bitpack     the package's one ``sign``; packing signs into uint64 words along channels, with
            BatchNorm+sign folded into the packer
xnor        XNOR-popcount GEMM and convolution on packed words: the public entry points; the
            rungs live in xnor_ref (float definitions), xnor_np (NumPy on words), xnor_loops
            (plain Numba loops) and xnor_fast (target-independent vector IR kernel)
cpu         CPU detection and the choice of the XNOR kernel (the one place that looks at the CPU)
packed_ops  exact inference twins of float ops a packed network keeps (max pooling, eval BN)
"""
from . import bitpack, cpu, im2col, packed_ops, pool, xnor

__all__ = ["bitpack", "cpu", "im2col", "packed_ops", "pool", "xnor"]
