"""Numba kernels, each beside its pure-NumPy reference (the kernel ladder of STYLE.md).

im2col   im2col / col2im for NHWC convolution (and the fixed-size blocked variant)
conv     convolution forward/backward as blocked im2col + GEMM (the training path)
batchnorm  training-mode batch-norm statistics, normalisation and backward
elementwise  sign and the straight-through mask
pieces   fixed work pieces on one thread pool: results independent of the thread count
pool     max / average pooling, nearest and bilinear upsampling
bitpack  packing signs into uint64 words along channels; BatchNorm+sign folded into the packer
xnor     XNOR-popcount GEMM and convolution on packed words, up to the AVX-512 kernel
"""
from . import bitpack, im2col, pool, xnor

__all__ = ["bitpack", "im2col", "pool", "xnor"]
