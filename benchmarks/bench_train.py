"""Benchmark: one training step of the downscaled binary hpm hourglass, with the binary units'
forward computed in float (im2col + GEMM of ±1 values) or with the packed XNOR-popcount kernel.

    python benchmarks/bench_train.py

Both give identical outputs and gradients (tests/test_packed.py); the backward is float either
way, so the packed forward moves the im2col of the signed input from the forward to the backward
and replaces the forward GEMM by XNOR-popcount. Batch 16, 64x64 input, forward + sigmoid loss +
backward + RMSprop update, data excluded. Median of repeats, both variants in one run.
"""
import os
import time

import numba
import numpy as np

import tinybin as tb
import tinybin.functional as F
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
    print("| threads (Numba = BLAS) | float forward s/step | packed forward s/step | speed-up |")
    print("|---|---|---|---|")
    for nt in (1, 2):
        tb.threads.set_num_threads(nt)
        res = {}
        for flag in (False, True):
            F.set_packed_training(flag)
            net = tb.HourGlass.downscaled(block="hpm", binary=True, seed=0)
            opt = tb.optim.RMSprop(net.parameters(), lr=1e-3)
            res[flag] = step_time(net, opt, x, target, repeats)
        F.set_packed_training(False)
        print(f"| {nt} | {res[False]:.3f} | {res[True]:.3f} | {res[False] / res[True]:.2f}x |", flush=True)
    tb.threads.apply_defaults()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
