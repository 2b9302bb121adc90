"""Thread control for the two pools tinybin uses: OpenBLAS (float GEMMs) and Numba (packed kernels).

On a 2-core machine the two pools fight: both spin-wait for work, and a parallel region that
cannot get its second core stalls. Measured on this project's machine kind under load, one
downscaled training step took 4.8 s with both pools at their default two threads and 0.23 s with
one thread each (benchmarks/bench_models.py). tinybin therefore runs BLAS single-threaded by
default; set TINYBIN_BLAS_THREADS (or call `set_num_threads`) to change that. The packed XNOR
kernels keep Numba's threads: they are compute-bound and parallelise well.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_blas = None


def _openblas():
    global _blas
    if _blas is None:
        here = os.path.dirname(np.__file__)
        for pattern in ("../numpy.libs/*openblas*", ".libs/*openblas*", "../numpy/.dylibs/*openblas*"):
            for path in glob.glob(os.path.join(here, pattern)):
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                             "openblas_set_num_threads64_", "openblas_set_num_threads"):
                    if hasattr(lib, name):
                        _blas = getattr(lib, name)
                        return _blas
        _blas = False
    return _blas


def set_blas_threads(n: int) -> bool:
    """Set the number of OpenBLAS threads NumPy uses; False if NumPy's BLAS is not OpenBLAS."""
    fn = _openblas()
    if not fn:
        return False
    fn(int(n))
    return True


def set_num_threads(n: int, blas: int = 1) -> None:
    """Numba kernels and tinybin's training ops (kernels/pieces.py) use `n` threads; BLAS uses
    `blas` (default 1: the convolutions already split their GEMMs over the `n` threads, and a
    multi-threaded BLAS under them would fight for the same cores)."""
    import numba
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    set_blas_threads(blas)


def apply_defaults() -> None:
    set_blas_threads(int(os.environ.get("TINYBIN_BLAS_THREADS", "1")))
