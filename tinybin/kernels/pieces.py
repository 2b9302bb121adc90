"""Deterministic work splitting for the training kernels: fixed pieces, any number of threads.

A training op cuts its work into `NPIECES` pieces whose boundaries depend only on the array
shapes (never on the thread count), computes each piece with single-threaded code (a Numba
kernel compiled with `nogil=True`, or a NumPy/BLAS call, both of which release the GIL), and
combines per-piece partial sums in piece order. The pieces then run on however many threads are
allowed, and every result is bit for bit the same at 1, 2 or 8 threads.

One pool: the pieces run on a small persistent Python thread pool plus the calling thread; the
number of threads is Numba's (`numba.get_num_threads()`, set by `tinybin.threads`). The pool
threads block on a queue between ops (no spin-waiting), so on a busy machine an idle core is
never held, and BLAS is kept single-threaded so the two never fight over the cores.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numba

# Pieces per op. Fixed so that results never depend on the thread count; 4 lets 1, 2 or 4 threads
# share the work evenly (a 2-core machine gets 2 pieces per thread).
NPIECES = 4
# Fewer pieces for small work (counted in array elements, e.g. im2col entries): at the bottom of
# the hourglass (2x2 and 4x4 maps) a piece would cost less than handing it to a thread.
MIN_WORK = 1 << 15

# Numba parallel regions. The convolution and the fused batch-norm kernels can also run all pieces
# of an op in one Numba parallel region (the same pieces, in the same order: the same numbers),
# which costs less than handing the pieces one by one to the pool. `NUMBA_REGIONS = False` turns
# that off. A process forked after this one ran a region cannot run one itself (the GNU OpenMP
# runtime is not fork-safe: the child would wait forever on the parent's threads), so a forked
# child takes the pool path.
NUMBA_REGIONS = True
_region_ran = False
_forked_child = False


def numba_region_ok() -> bool:
    """Whether an op may run its pieces in a Numba parallel region now (see above)."""
    global _region_ran
    ok = NUMBA_REGIONS and not _forked_child
    _region_ran = _region_ran or ok
    return ok


_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_inside = threading.local()  # set while a thread runs pieces: nested `run` calls stay serial


def _forget_pool_after_fork() -> None:
    # a forked child inherits the executor object but not its threads: start a new one on demand;
    # and it must not enter a Numba parallel region if the parent has run one
    global _executor, _executor_size, _forked_child
    _executor, _executor_size = None, 0
    _forked_child = _forked_child or _region_ran


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def split(n: int, parts: int = NPIECES, work: int | None = None) -> list[tuple[int, int]]:
    """[0, n) cut into contiguous, nearly equal, non-empty ranges (at least one): min(parts, n)
    of them, and no more than work // MIN_WORK when the total `work` is given. A function of the
    shapes only, never of the thread count."""
    p = min(parts, n)
    if work is not None:
        p = min(p, work // MIN_WORK)
    p = max(1, p)
    return [(n * i // p, n * (i + 1) // p) for i in range(p)]


def threads() -> int:
    return max(1, numba.get_num_threads())


def _pool(n: int) -> ThreadPoolExecutor:
    global _executor, _executor_size
    if _executor is None or _executor_size < n:
        if _executor is not None:
            _executor.shutdown(wait=True)
        _executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinybin-piece")
        _executor_size = n
    return _executor


# Below this many elements of work an op's pieces run one after the other in the calling thread:
# handing a piece to the pool costs tens of microseconds, more than an elementwise pass or a batch
# norm pass over a few hundred thousand values takes (measured on the downscaled hourglass: those
# ops were slower at two threads than at one). The pieces, and so the results, stay the same.
PARALLEL_WORK = 1 << 19


def run(fn: Callable, pieces: Sequence, work: int | None = None) -> list:
    """[fn(p) for p in pieces], the pieces shared among `threads()` threads; results in order.

    work: the op's size in elements; below `PARALLEL_WORK` the pieces run serially here.

    Threads take the next undone piece until none is left (the calling thread too), and the call
    returns as soon as every piece is done: on a busy machine, a pool thread that does not get a
    core in time simply takes no piece, instead of holding the step up. Which thread ran a piece
    never changes its result.
    """
    n = len(pieces)
    t = min(threads(), n)
    if t <= 1 or getattr(_inside, "flag", False) or (work is not None and work < PARALLEL_WORK):
        return [fn(p) for p in pieces]
    results = [None] * n
    errors = []
    state = {"next": 0, "done": 0}
    lock = threading.Lock()
    finished = threading.Event()

    def work():
        _inside.flag = True
        try:
            while True:
                with lock:
                    i = state["next"]
                    if i >= n:
                        return
                    state["next"] = i + 1
                try:
                    results[i] = fn(pieces[i])
                except BaseException as e:  # re-raised in the calling thread
                    errors.append(e)
                with lock:
                    state["done"] += 1
                    if state["done"] == n:
                        finished.set()
        finally:
            _inside.flag = False
    pool = _pool(t - 1)
    for _ in range(t - 1):
        pool.submit(work)
    work()
    finished.wait()
    if errors:
        raise errors[0]
    return results
