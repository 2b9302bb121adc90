"""Timing for benchmarks and ``tinybin bench``: interleaved rounds, medians, ratios within a round.

On a shared machine absolute times drift +-30-50% between runs, while two implementations timed
in the same round see the same load. So every comparison here

1. warms every implementation up (Numba compilation or cache load, thread pools, page faults),
2. runs ``rounds`` rounds; in each round every implementation is timed in turn (the best of
   ``calls`` back-to-back calls, after a short pause that lets spinning BLAS/OpenMP threads of the
   previous implementation go idle),
3. reports each implementation's median over rounds and, for ratios, the median of the per-round
   ratios (``Timings.ratio``), which cancels load that changes between rounds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Timings", "SelfTimed", "compare", "median_time"]


class SelfTimed:
    """An implementation that measures itself: ``fn()`` returns its own time in seconds (e.g. a
    worker process timing a call on its side, without the pipe round trip). ``compare`` uses
    that time instead of the wall time of the call."""

    def __init__(self, fn: Callable[[], float]):
        self.fn = fn

    def __call__(self) -> float:
        return float(self.fn())


@dataclass
class Timings:
    """Per-round times in seconds of named implementations, timed in the same rounds."""

    rounds: dict[str, np.ndarray] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """Median time of one implementation over the rounds (seconds)."""
        return float(np.median(self.rounds[name]))

    def ratio(self, num: str, den: str) -> float:
        """Median over rounds of ``time(num) / time(den)``: the speed-up of ``den`` over ``num``."""
        return float(np.median(self.rounds[num] / self.rounds[den]))


def _check_count(v, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def compare(impls: dict[str, Callable[[], object]], rounds: int = 7, calls: int = 1,
            warmup: int = 2, pause: float = 0.02) -> Timings:
    """Time several implementations in interleaved rounds (see the module docstring).

    impls: name -> zero-argument callable (or ``SelfTimed``). Returns ``Timings`` with one time
    per round each.
    """
    rounds = _check_count(rounds, "rounds", 1)
    calls = _check_count(calls, "calls", 1)
    warmup = _check_count(warmup, "warmup", 0)
    if not impls:
        raise ValueError("compare needs at least one implementation")
    for f in impls.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(rounds):
        for name, f in impls.items():
            if pause > 0:
                time.sleep(pause)
            best = np.inf
            for _ in range(calls):
                t0 = time.perf_counter()
                r = f()
                dt = r if isinstance(f, SelfTimed) else time.perf_counter() - t0
                best = min(best, dt)
            times[name].append(best)
    return Timings({k: np.asarray(v) for k, v in times.items()})


def median_time(fn: Callable[[], object], rounds: int = 7, calls: int = 1, warmup: int = 1) -> float:
    """Median over ``rounds`` of the best of ``calls`` calls of ``fn`` (seconds), after warm-up."""
    return compare({"f": fn}, rounds=rounds, calls=calls, warmup=warmup, pause=0.0).median("f")
