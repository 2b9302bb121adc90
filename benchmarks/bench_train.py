"""Benchmark: one training step of the downscaled binary hpm hourglass.

    python benchmarks/bench_train.py

Batch 16, 64x64 input, forward + sigmoid loss + backward + RMSprop update, data excluded.
Median of repeats at 1 and 2 threads.
"""
import os
import time

import numba
import numpy as np

import tinybin as tb
from tinybin import Tensor


def step_time(net, opt, x, target, repeats):
    def step():
        opt.zero_grad()
        loss = tb.losses.sigmoid_bce(net(Tensor(x)), target)
        loss.backward()
        opt.step()
    step()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(repeats=10):
    r = np.random.default_rng(0)
    x = r.random((16, 64, 64, 3)).astype(np.float32)
    target = (r.random((16, 16, 16, 16)) > 0.95).astype(np.float32)
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| threads (Numba = BLAS) | s/step |")
    print("|---|---|")
    for nt in (1, 2):
        tb.threads.set_num_threads(nt)
        net = tb.HourGlass.downscaled(block="hpm", binary=True, seed=0)
        opt = tb.optim.RMSprop(net.parameters(), lr=1e-3)
        print(f"| {nt} | {step_time(net, opt, x, target, repeats):.3f} |", flush=True)
    tb.threads.apply_defaults()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
