"""Benchmark: packed XNOR-popcount 3x3 convolution against float convolution.

    python benchmarks/bench_xnor.py [--rounds R] [--threads 1,2]

For the four hourglass layer shapes of notes/packed-kernels.md (3x3, stride 1, padding 1):
256->128 @ 64x64 batch 1, 128->64 @ 64x64 batch 1, 256->256 @ 32x32 batch 1, 64->64 @ 16x16
batch 8, and at 1 and 2 threads in ONE run, it times

- ``packed kernel``: ``xnor.conv2d_fast`` on already packed activations and pre-blocked weights,
- ``packed + pack``: ``bitpack.pack_signs(x)`` + ``xnor.conv2d_prepared`` (what a deployed layer
  pays, input checks included),
- ``tinybin float``: ``tinybin.functional.conv2d`` forward under ``no_grad`` (n/a if missing),
- ``im2col + matmul``: NumPy ``sliding_window_view`` im2col copy + one float32 BLAS GEMM,

and prints a markdown table with median times, speed-ups of the packed layer and the kernel's
binary multiply-accumulates per second per core (``N*OH*OW*Cout*KH*KW*Cin / time / threads``).

Timing: ``tinybin.timing.compare`` -- every round times each implementation in turn (best of a
few calls, after a warm-up), the table reports the median over rounds, and ratios are medians of
per-round ratios (timings drift +-30-50% between runs on a shared machine, ratios within a round
much less). Threads: ``tinybin.threads.set_num_threads`` (Numba's pool and BLAS together).
"""

from __future__ import annotations

import argparse
import os
import sys

import numba
import numpy as np

from tinybin import threads  # noqa: E402
from tinybin.kernels import bitpack, xnor  # noqa: E402
from tinybin.timing import compare  # noqa: E402

try:  # the float layer may not exist yet while the package is being written
    import tinybin.functional as F  # noqa: E402
    from tinybin import Tensor, no_grad  # noqa: E402

    HAVE_FLOAT = hasattr(F, "conv2d")
except Exception:  # pragma: no cover
    HAVE_FLOAT = False

SHAPES = [  # (N, H, W, Cin, Cout), all 3x3, stride 1, padding 1
    (1, 64, 64, 256, 128),
    (1, 64, 64, 128, 64),
    (1, 32, 32, 256, 256),
    (8, 16, 16, 64, 64),
]
K, STRIDE, PAD = 3, 1, 1


# --------------------------------------------------------------------------------------------
# implementations
# --------------------------------------------------------------------------------------------


def im2col_matmul(x: np.ndarray, wmat: np.ndarray) -> np.ndarray:
    """NumPy baseline: zero-pad, sliding_window_view im2col (copy), one float32 GEMM."""
    N, H, W, C = x.shape
    xp = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (K, K), axis=(1, 2))  # (N, OH, OW, C, K, K)
    cols = win.reshape(N * H * W, C * K * K)  # the im2col copy
    return (cols @ wmat).reshape(N, H, W, -1)


def bench_shape(shape, threads: int, rounds: int, rng) -> dict:
    N, H, W, C, Cout = shape
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((Cout, K, K, C)).astype(np.float32)
    w_bits = bitpack.pack_signs(w)
    prepared = xnor.prepare_weights(w_bits, C)
    x_bits = bitpack.pack_signs(x)
    out = np.empty((N, H, W, Cout), dtype=np.int32)
    # (C, K, K)-ordered weight matrix for the im2col baseline
    wmat = np.ascontiguousarray(w.transpose(0, 3, 1, 2).reshape(Cout, C * K * K).T)

    impls = {
        "kernel": lambda: xnor.conv2d_fast(x_bits, prepared, STRIDE, PAD, None, out),
        "packed": lambda: xnor.conv2d_prepared(bitpack.pack_signs(x), prepared, STRIDE, PAD),
        "im2col": lambda: im2col_matmul(x, wmat),
    }
    if HAVE_FLOAT:
        xt, wt = Tensor(x), Tensor(w)

        def float_conv():
            with no_grad():
                return F.conv2d(xt, wt, None, stride=STRIDE, padding=PAD)

        impls["float"] = float_conv

    # Sanity: the packed layer is the float conv of the signs.
    sx = np.where(x >= 0, 1, -1).astype(np.float32)
    ref = im2col_matmul(sx, np.where(wmat >= 0, 1, -1).astype(np.float32))
    assert np.array_equal(impls["packed"]().astype(np.float32), ref), "packed conv disagrees with float"

    macs = N * H * W * Cout * K * K * C
    # Calls per timing: enough that one measurement is >= ~20 ms of work for fast kernels.
    t = compare(impls, rounds=rounds, calls=5)
    res = {k: t.median(k) for k in impls}
    res["gmacs_core"] = macs / res["kernel"] / 1e9 / threads
    res["r_float"] = t.ratio("float", "packed") if "float" in t.rounds else None
    res["r_float_kernel"] = t.ratio("float", "kernel") if "float" in t.rounds else None
    res["r_im2col"] = t.ratio("im2col", "packed")
    return res


def bench_network(rounds: int = 5, threads=(1, 2)):
    """Whole network: the full-scale binary hpm HourGlass (256x256, F=256, D=4, 16 landmarks),
    one image, float forward (eval, no_grad) vs packed forward, plus the file sizes of the float32
    checkpoint and the packed file. BatchNorm statistics are randomised so thresholds are not
    trivial; weights are He-initialised (speed and size do not depend on training)."""
    import tempfile

    import tinybin as tb
    from tinybin import Tensor, no_grad, nn

    r = np.random.default_rng(0)
    net = tb.HourGlass.paper(block="hpm", binary=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = r.standard_normal(m.num_features) * 0.1
            m.running_var[...] = r.random(m.num_features) + 0.5
    net.eval()
    x = r.random((1, 256, 256, 3)).astype(np.float32)
    packed = tb.packed.pack(net)
    with no_grad():
        ref = net(Tensor(x)).data
    diff = float(np.abs(packed(x) - ref).max())
    rows = []
    for nt in threads:
        if nt > numba.config.NUMBA_NUM_THREADS:
            continue
        tb.threads.set_num_threads(nt)

        def fwd():
            with no_grad():
                net(Tensor(x))
        t = compare({"float": fwd, "packed": lambda: packed(x)}, rounds=rounds)
        rows.append((nt, t.median("float"), t.median("packed"), t.ratio("float", "packed")))
    with tempfile.TemporaryDirectory() as d:
        fp, pp = os.path.join(d, "float.npz"), os.path.join(d, "packed.npz")
        tb.save(net, fp)
        packed.save(pp)
        sf, sp = os.path.getsize(fp), os.path.getsize(pp)
    lines = [f"binary hpm HourGlass at paper scale ({tb.count_parameters(net):,} parameters), one 256x256 image, "
             f"max |packed - float| = {diff:.1e}", "",
             "| threads | float forward ms | packed forward ms | speed-up |", "|---|---|---|---|"]
    lines += [f"| {nt} | {tf * 1e3:.1f} | {tp * 1e3:.1f} | {r:.1f}x |" for nt, tf, tp, r in rows]
    lines += ["", f"files: float32 checkpoint {sf / 2**20:.2f} MiB, packed {sp / 2**20:.3f} MiB: "
              f"{sf / sp:.1f}x smaller (paper: 39x against Torch float with biases)"]
    return "\n".join(lines)


def _ms(v):
    return "n/a" if v is None else f"{v * 1e3:.3f}"


def _x(v):
    return "n/a" if v is None else f"{v:.1f}x"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds per shape (median)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = ap.parse_args(argv)
    thread_counts = [int(v) for v in args.threads.split(",")]
    rng = np.random.default_rng(0)

    print(f"# packed XNOR conv benchmark (3x3, stride {STRIDE}, padding {PAD})")
    print(f"numpy {np.__version__}, numba {numba.__version__}, fast kernel: {xnor.HAVE_FAST_KERNEL}"
          f"{'' if xnor.HAVE_FAST_KERNEL else ' (' + xnor._NO_FAST_REASON + ')'}; "
          f"threads: tinybin.threads (Numba and BLAS); tinybin float conv2d: {'yes' if HAVE_FLOAT else 'n/a'}; "
          f"rounds: {args.rounds}")
    # Other processes on the 2 cores stall every parallel region until the second thread is
    # scheduled (milliseconds): 2-thread rows are only meaningful on an idle machine.
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    if not xnor.HAVE_FAST_KERNEL:
        print("fast kernel unavailable: nothing to benchmark")
        return 1
    print()
    print("| threads | N,H,W,Cin->Cout | packed kernel ms | packed + pack ms | tinybin float ms "
          "| im2col+matmul ms | float / packed+pack | float / kernel | im2col / packed+pack "
          "| G binary-MAC/s/core |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for nt in thread_counts:
        if nt > numba.config.NUMBA_NUM_THREADS:
            print(f"| {nt} | skipped: only {numba.config.NUMBA_NUM_THREADS} threads available |")
            continue
        threads.set_num_threads(nt)
        for shape in SHAPES:
            r = bench_shape(shape, nt, args.rounds, rng)
            N, H, W, C, Co = shape
            print(f"| {nt} | {N},{H},{W},{C}->{Co} | {_ms(r['kernel'])} | {_ms(r['packed'])} | "
                  f"{_ms(r.get('float'))} | {_ms(r['im2col'])} | {_x(r['r_float'])} | "
                  f"{_x(r['r_float_kernel'])} | {_x(r['r_im2col'])} | {r['gmacs_core']:.0f} |",
                  flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print()
    print("## whole network")
    print(bench_network(rounds=max(3, args.rounds // 2), threads=thread_counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
