"""Numba kernels, each beside its pure-NumPy reference (the kernel ladder of STYLE.md).

im2col      im2col / col2im for NHWC convolution (and the fixed-size blocked variant)
conv        convolution forward/backward as blocked im2col + GEMM (the training path)
batchnorm   training-mode batch-norm statistics, normalisation and backward
elementwise the package's one ``sign`` and the straight-through mask
pieces      fixed work pieces on one thread pool: results independent of the thread count
pool        max / average pooling, nearest and bilinear upsampling
bitpack     packing signs into uint64 words along channels, with BatchNorm+sign folded into the
            packer
xnor        XNOR-popcount GEMM and convolution on packed words: the public entry points; the
            rungs live in xnor_ref (float definitions), xnor_np (NumPy on words), xnor_loops
            (plain Numba loops) and xnor_fast (target-independent vector IR kernel)
cpu         CPU detection and the choice of the XNOR kernel (the one place that looks at the CPU)
packed_ops  exact inference twins of float ops a packed network keeps (max pooling, eval BN)
"""
from . import batchnorm, bitpack, conv, cpu, elementwise, im2col, packed_ops, pieces, pool, xnor

__all__ = ["batchnorm", "bitpack", "conv", "cpu", "elementwise", "im2col", "packed_ops", "pieces", "pool", "xnor"]
