"""Benchmark: how fast the synthetic datasets generate samples (one process, one thread).

    python benchmarks/bench_data.py

Prints samples/s for SyntheticPose and SyntheticFace at R = 64 and 128, plain and with the
paper's augmentation (rotation, scale, flip, colour), so you can check they keep up with training
(a downscaled batch-16 step takes ~0.25 s, i.e. needs ~64 samples/s).
"""
import os
import time

import numpy as np

from tinybin import data as D


def rate(ds, augment, n=96):
    ds.batch(range(4), augment=augment, rng=np.random.default_rng(0))  # compile
    t0 = time.perf_counter()
    for s in range(0, n, 16):
        ds.batch(range(100 + s, 116 + s), augment=augment, rng=np.random.default_rng(s))
    return n / (time.perf_counter() - t0)


def main():
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| dataset | R | samples/s | samples/s with augmentation |")
    print("|---|---|---|---|")
    for cls in (D.SyntheticPose, D.SyntheticFace):
        for R in (64, 128):
            ds = cls(10_000, resolution=R, seed=0)
            print(f"| {cls.__name__} | {R} | {rate(ds, False):.0f} | {rate(ds, True):.0f} |", flush=True)


if __name__ == "__main__":
    main()
