"""Numba kernels, each beside its pure-NumPy reference (the kernel ladder of STYLE.md).

im2col   im2col / col2im for NHWC convolution (and the cache-blocked variant)
pool     max / average pooling, nearest and bilinear upsampling
bitpack  packing signs into uint64 words along channels; BatchNorm+sign folded into the packer
xnor     XNOR-popcount GEMM and convolution on packed words, up to the AVX-512 kernel
"""
from . import bitpack, im2col, pool, xnor

__all__ = ["bitpack", "im2col", "pool", "xnor"]
