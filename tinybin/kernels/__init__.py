"""Numba kernels, each beside its pure-NumPy reference."""
