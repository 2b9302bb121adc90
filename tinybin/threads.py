"""The thread policy of tinybin: one number for both thread pools it uses.

tinybin runs work on two pools: OpenBLAS (the float GEMMs: NumPy's copy, and SciPy's copy that
Numba's ``np.dot`` calls) and Numba's (the ``parallel`` kernels: the training ops' pieces of a
convolution or batch norm, pooling, packing, XNOR-popcount). On a small shared machine they fight: both
spin or wait for all their threads at the end of every parallel region, so one busy core stalls
every region until the scheduler gives the thread its core back. Measured on this project's
2-core machine under load: a downscaled training step took 4.8 s with both pools at their default
two threads and 0.23 s with one thread each (``benchmarks/bench_models.py``), and ``tinybin bench``
reported packed inference 100x slower than float (708 ms vs 7 ms) with Numba's default pool,
stable with one Numba thread.

The policy, applied when ``tinybin`` is imported (``apply_defaults``):

- Numba's pool runs ``TINYBIN_THREADS`` threads, default 1, and BLAS one thread
  (``TINYBIN_BLAS_THREADS`` sets the BLAS count alone). One thread per process is also what the parallel
  experiment runner wants: it uses the cores with processes.
- Code that knows the machine is idle asks for more explicitly: ``set_num_threads(n)`` gives
  Numba's pool, and with it tinybin's training ops (``kernels/pieces.py``, which split every
  convolution's GEMMs into fixed pieces), ``n`` threads and keeps BLAS at one thread unless asked
  (a multi-threaded BLAS under the pieces would fight for the same cores); ``limit(n)`` does it
  for a ``with`` block and restores the previous counts. Results do not depend on the count.
- Numba's pool can never exceed the size it was started with (``NUMBA_NUM_THREADS``, default:
  the number of cores); requests are clamped to it.
- A parallel kernel whose work is too small to pay for waking the pool (``SMALL_WORK``
  operations) runs on the calling thread (``serial_if_small``): under load every parallel region
  waits for all its threads to be scheduled, which costs milliseconds, not microseconds. The
  training ops have the same rule in their own unit (``kernels/pieces.PARALLEL_WORK`` elements).
- Packed inference (``tinybin.packed``) gives the cores to Numba's pool alone: BLAS runs one
  thread inside it (``numba_only``). Its only GEMMs are the small float stem and head, and an
  idle BLAS thread that spins after them stalls every parallel XNOR kernel that follows.
- Numba's OpenMP workers stop spinning soon after a parallel region (``GOMP_SPINCOUNT``, default
  here 1000 instead of libgomp's 300000; set it in the environment to override; read once, when
  Numba first loads its OpenMP pool). A spinning OpenMP worker holds the core that the pieces'
  threads (``kernels/pieces.py``) need for the next op: measured on the 2-core machine, whole
  paper-scale packed network at batch 1, 2 threads, interleaved rounds: 50.5 ms with libgomp's
  default against 22.4 ms with 1000 (27 ms with the float ops on one thread).
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os

# before Numba loads libgomp (see the docstring); SET_ENV lists what tinybin added to the
# environment, so a benchmark can start a reference framework's process without it
SET_ENV = () if "GOMP_SPINCOUNT" in os.environ else ("GOMP_SPINCOUNT",)
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import numpy as np  # noqa: E402

__all__ = ["set_num_threads", "get_num_threads", "set_blas_threads", "limit", "numba_only",
           "serial_if_small", "SMALL_WORK", "apply_defaults"]

# Below this many elementary operations (~0.1 ms of work) a parallel region costs more than it
# saves (waking and joining the pool: tens of microseconds idle, milliseconds under load).
SMALL_WORK = 1 << 20

_blas = None
_blas_threads = None  # last count we set (OpenBLAS has no portable getter)


def _setter(lib_dir: str, patterns) -> object | None:
    for pattern in patterns:
        for path in glob.glob(os.path.join(lib_dir, pattern)):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                         "openblas_set_num_threads64_", "openblas_set_num_threads"):
                if hasattr(lib, name):
                    fn = getattr(lib, name)
                    fn.argtypes = [ctypes.c_int]
                    return fn
    return None


def _openblas():
    """The thread-count setters of NumPy's OpenBLAS and of SciPy's (a separate copy in the SciPy
    wheels: Numba's `np.dot` calls it, through scipy.linalg.cython_blas), or False."""
    global _blas
    if _blas is None:
        found = [_setter(os.path.dirname(np.__file__),
                         ("../numpy.libs/*openblas*", ".libs/*openblas*", "../numpy/.dylibs/*openblas*"))]
        try:
            import scipy
            found.append(_setter(os.path.dirname(scipy.__file__),
                                 ("../scipy.libs/*openblas*", ".libs/*openblas*", "../scipy/.dylibs/*openblas*")))
        except ImportError:  # pragma: no cover - scipy is a dependency
            pass
        fns = [f for f in found if f is not None]
        _blas = (lambda n: [f(n) for f in fns]) if fns else False
    return _blas


def _check(n, name="n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    return int(n)


def set_blas_threads(n: int) -> bool:
    """Set the number of OpenBLAS threads NumPy (and SciPy's copy) use; False if neither is OpenBLAS."""
    global _blas_threads
    n = _check(n)
    fn = _openblas()
    if not fn:
        return False
    fn(n)
    _blas_threads = n
    return True


def set_num_threads(n: int, blas: int = 1) -> None:
    """Numba kernels and tinybin's training ops (kernels/pieces.py) use ``n`` threads (clamped to
    Numba's pool size); BLAS uses ``blas`` (default 1: the convolutions already split their GEMMs
    over the ``n`` threads, and a multi-threaded BLAS under them would fight for the same cores)."""
    import numba
    n = _check(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    set_blas_threads(_check(blas, "blas"))


def get_num_threads() -> tuple[int, int | None]:
    """(Numba threads, BLAS threads as last set by tinybin or None if never set)."""
    import numba
    return numba.get_num_threads(), _blas_threads


@contextlib.contextmanager
def limit(n: int, blas: int | None = None):
    """``with threads.limit(2): ...`` runs the block with Numba's pool at n threads (BLAS at ``blas``,
    default 1), then restores both."""
    numba_prev, blas_prev = get_num_threads()
    set_num_threads(n, 1 if blas is None else blas)
    try:
        yield
    finally:
        import numba
        numba.set_num_threads(numba_prev)
        set_blas_threads(blas_prev if blas_prev is not None else 1)


@contextlib.contextmanager
def numba_only():
    """Run a block with BLAS at one thread and Numba's pool unchanged (packed inference)."""
    prev = _blas_threads
    if prev is None or prev == 1:
        yield
        return
    set_blas_threads(1)
    try:
        yield
    finally:
        set_blas_threads(prev)


@contextlib.contextmanager
def serial_if_small(work: int):
    """Run a block with Numba's pool at one thread if ``work`` < SMALL_WORK (thread-local, cheap)."""
    import numba
    n = numba.get_num_threads()
    if work >= SMALL_WORK or n == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)


def apply_defaults() -> None:
    """The policy above: Numba's pool at ``TINYBIN_THREADS`` threads (default 1), BLAS at one
    (``TINYBIN_BLAS_THREADS`` overrides)."""
    raw = os.environ.get("TINYBIN_THREADS", "1")
    try:
        n = _check(int(raw), "TINYBIN_THREADS")
    except ValueError:
        raise ValueError(f"TINYBIN_THREADS must be an integer >= 1, got {raw!r}") from None
    blas = os.environ.get("TINYBIN_BLAS_THREADS")
    set_num_threads(n, int(blas) if blas else 1)
