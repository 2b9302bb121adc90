"""Benchmark: the forward convolution of every binary unit of a training step, on the float GEMM
and on the XNOR-popcount kernel (`functional.binary_conv2d(..., signed=True)`).

    python benchmarks/bench_packed_forward.py [--width 64] [--resolution 64] [--depth 3]
                                              [--batch 16] [--rounds 7] [--threads 1]

Runs one training-mode forward of `HourGlass.downscaled(block="hpm", binary=True)` to collect the
shapes its XNOR units convolve (input N x H x W x Cin, Cout, kernel, stride), then, per distinct
shape, times in interleaved rounds (`tinybin.timing.compare`) the float path (`conv.conv_forward`
of ±1 inputs and sign(W), times alpha) and the packed path (`bitpack.pack_signs` of input and
weights, `xnor.prepare_weights`, `xnor.conv2d_prepared` with alpha), checks that both give the same
float32 numbers, and prints the per-shape times and ratios, the path the size cut-offs choose
(`functional.PACKED_MIN_K`, `PACKED_MIN_WORK`), and the totals over the step's units (each shape
weighted by how often the network uses it): all float, all packed, and as chosen.
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

import tinybin as tb
from tinybin import functional as F
from tinybin.kernels import conv as _conv
from tinybin.kernels import xnor
from tinybin.timing import compare


def unit_shapes(width: int, resolution: int, depth: int, batch: int) -> Counter:
    """Counter of (x shape, w shape, stride, padding) over the XNOR units of one forward pass."""
    seen: Counter = Counter()
    packed = F._packed_sign_conv

    def record(x, sw, alpha, stride, padding):
        seen[(x.shape, sw.shape, stride, padding)] += 1
        return packed(x, sw, alpha, stride, padding)
    cutoffs = F.PACKED_MIN_K, F.PACKED_MIN_WORK
    F._packed_sign_conv, F.PACKED_MIN_K, F.PACKED_MIN_WORK = record, 0, 0   # every unit, whatever its size
    try:
        net = tb.HourGlass.downscaled(block="hpm", binary=True, seed=0, width=width, resolution=resolution,
                                      depth=depth)
        x = np.random.default_rng(0).random((batch, resolution, resolution, 3)).astype(np.float32)
        net(tb.Tensor(x))
    finally:
        F._packed_sign_conv = packed
        F.PACKED_MIN_K, F.PACKED_MIN_WORK = cutoffs
    return seen


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    tb.threads.set_num_threads(a.threads)
    if not xnor.HAVE_FAST_KERNEL:
        raise SystemExit(f"no fast XNOR kernel here ({xnor.CHOICE.reason}): training uses the float path")
    shapes = unit_shapes(a.width, a.resolution, a.depth, a.batch)
    rng = np.random.default_rng(1)
    print(f"R={a.resolution} F={a.width} D={a.depth} batch {a.batch}, {a.threads} thread(s), "
          f"{sum(shapes.values())} XNOR units, {len(shapes)} distinct shapes; median of {a.rounds} rounds")
    print(f"{'input':>20} {'Cout':>5} {'k':>2} {'uses':>4} {'float ms':>9} {'packed ms':>10} {'ratio':>6}  chosen")
    tot_f = tot_p = tot_c = 0.0
    for (xs, ws, stride, padding), uses in sorted(shapes.items()):
        Cout, KH, KW, C = ws
        x = np.where(rng.random(xs) < 0.5, -1.0, 1.0).astype(np.float32)
        sw = np.where(rng.random(ws) < 0.5, -1.0, 1.0).astype(np.float32)
        alpha = rng.random(Cout).astype(np.float32) + 0.5
        w2 = sw.reshape(Cout, -1)

        def flt():
            return _conv.conv_forward(x, w2, KH, KW, stride, padding, scale=alpha)

        def pk():
            return F._packed_sign_conv(x, sw, alpha, stride, padding)
        if not np.array_equal(flt().reshape(pk().shape), pk()):
            raise SystemExit(f"packed != float for {xs} -> {Cout}")
        t = compare({"float": flt, "packed": pk}, rounds=a.rounds)
        f_ms, p_ms = 1e3 * t.median("float"), 1e3 * t.median("packed")
        out = pk()
        chosen = F._packed_forward_ok(x, out.shape[0] * out.shape[1] * out.shape[2], KH * KW * C, Cout)
        tot_f += uses * f_ms
        tot_p += uses * p_ms
        tot_c += uses * (p_ms if chosen else f_ms)
        print(f"{'x'.join(map(str, xs)):>20} {Cout:>5} {KH:>2} {uses:>4} {f_ms:>9.3f} {p_ms:>10.3f} "
              f"{t.ratio('float', 'packed'):>5.1f}x  {'packed' if chosen else 'float'}")
    print(f"all units of one forward: float {tot_f:.1f} ms, packed {tot_p:.1f} ms, as chosen {tot_c:.1f} ms "
          f"({tot_f / tot_c:.1f}x less than float)")


if __name__ == "__main__":
    main()
