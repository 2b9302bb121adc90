"""Benchmark: how fast the synthetic datasets deliver training batches (one process, one thread).

    python benchmarks/bench_data.py

For SyntheticPose and SyntheticFace at R = 64 and 128, samples/s of batches of 16:
  first pass      each sample rendered (the first epoch of a run)
  cached          the same samples again, read from the render cache (every later epoch)
  cached + aug    cached samples with the paper's augmentation (rotation, scale, flip, colour),
                  the crop warped by the Numba kernel (what training does)
  ... scipy warp  the same with `scipy.ndimage.map_coordinates` (the reference warp)
and the ratio of the last two, all measured in one run. A downscaled batch-16 training step takes
~0.1 s at one thread, i.e. needs ~160 samples/s.
"""
import os
import time

import numpy as np

from tinybin import data as D
from tinybin import transforms

N = 96  # samples per measurement


def rate(ds, augment, start=0):
    t0 = time.perf_counter()
    for s in range(0, N, 16):
        ds.batch(range(start + s, start + s + 16), augment=augment, rng=np.random.default_rng(s))
    return N / (time.perf_counter() - t0)


def main():
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| dataset | R | first pass | cached | cached + aug | cached + aug, scipy warp | warp speed-up |")
    print("|---|---|---|---|---|---|---|")
    for cls in (D.SyntheticPose, D.SyntheticFace):
        for R in (64, 128):
            ds = cls(1_000, resolution=R, seed=0)
            ds.batch(range(500, 504), augment=True, rng=np.random.default_rng(0))  # compile
            first = rate(ds, False)
            cached = rate(ds, False)
            aug = rate(ds, True)
            transforms.WARP_IMPL = "scipy"
            try:
                aug_ref = rate(ds, True)
            finally:
                transforms.WARP_IMPL = "auto"
            print(f"| {cls.__name__} | {R} | {first:.0f} | {cached:.0f} | {aug:.0f} | {aug_ref:.0f} | "
                  f"{aug / aug_ref:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
