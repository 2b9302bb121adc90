"""Benchmark: tinybin's float conv2d (Numba im2col + BLAS GEMM) against a plain NumPy baseline.

    python benchmarks/bench_conv.py

For two shapes -- downscaled (batch 16, 32x32, 64->64, 3x3) and full scale (batch 1, 64x64,
256->128, 3x3) -- it times, in one run (median of repeats):
  * tinybin conv2d forward, and forward + backward;
  * a NumPy baseline: np.pad + sliding_window_view + copy + matmul (forward only);
  * the GEMM alone on a precomputed im2col matrix, to report the forward's overhead over the
    GEMM: (forward - GEMM) / GEMM. Target: <= 30% at full scale. tinybin builds the im2col matrix
    one fixed-size block (`im2col.BLOCK_ROWS` rows) at a time and multiplies each block while it
    is in cache, so its forward can be *faster* than one GEMM over the whole matrix read back
    from memory (a negative overhead).
Timings drift +-30-50% between runs on shared machines: read the ratios, not the absolutes.
One thread (tinybin's pieces and BLAS alike).
"""
from __future__ import annotations

import time

import numpy as np

import tinybin as tb
import tinybin.functional as F
from tinybin import Tensor, no_grad
from tinybin.kernels.im2col import im2col

SHAPES = [("downscaled", 16, 32, 64, 64), ("full scale", 1, 64, 256, 128)]


def timeit(fn, repeats=15, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def numpy_baseline(x, w, padding=1):
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # (N, OH, OW, C, 3, 3)
    N, OH, OW = win.shape[:3]
    cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(N * OH * OW, -1)
    return (cols @ w.reshape(w.shape[0], -1).T).reshape(N, OH, OW, -1)


def main():
    tb.threads.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for name, n, hw, cin, cout in SHAPES:
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        w = (rng.standard_normal((cout, 3, 3, cin)) * 0.05).astype(np.float32)
        xt, wt = Tensor(x), Tensor(w)

        def fwd():
            with no_grad():
                F.conv2d(xt, wt, None, 1, 1)

        xg, wg = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        g = np.ones((n, hw, hw, cout), np.float32)

        def fwd_bwd():
            xg.grad = wg.grad = None
            F.conv2d(xg, wg, None, 1, 1).backward(g)

        cols = im2col(x, 3, 3, 1, 1)
        w2t = w.reshape(cout, -1).T
        t_fwd = timeit(fwd)
        t_fb = timeit(fwd_bwd, repeats=7)
        t_np = timeit(lambda: numpy_baseline(x, w))
        t_gemm = timeit(lambda: cols @ w2t)
        t_im2col = timeit(lambda: im2col(x, 3, 3, 1, 1))
        np.testing.assert_allclose(F.conv2d(xt, wt, None, 1, 1).data, numpy_baseline(x, w), rtol=1e-3, atol=1e-3)
        gmacs = n * hw * hw * cout * 9 * cin / t_fwd / 1e9
        rows.append((name, f"{n}x{hw}x{hw}, {cin}->{cout}", t_fwd, t_fb, t_np, t_gemm, t_im2col, gmacs))

    print("| shape | N x H x W, Cin->Cout | tinybin fwd ms | tinybin fwd+bwd ms | NumPy baseline fwd ms "
          "| baseline / tinybin | GEMM alone ms | whole im2col ms | fwd overhead over GEMM | GMAC/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, desc, t_fwd, t_fb, t_np, t_gemm, t_im, gm in rows:
        overhead = (t_fwd - t_gemm) / t_gemm
        print(f"| {name} | {desc} | {t_fwd*1e3:.2f} | {t_fb*1e3:.2f} | {t_np*1e3:.2f} | {t_np/t_fwd:.2f}x "
              f"| {t_gemm*1e3:.2f} | {t_im*1e3:.2f} | {overhead*100:+.0f}% | {gm:.1f} |")


if __name__ == "__main__":
    main()
