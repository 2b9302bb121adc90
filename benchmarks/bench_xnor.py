"""Benchmark: packed XNOR-popcount 3x3 convolution against float convolution, and the whole
packed network against the float network.

    python benchmarks/bench_xnor.py [--rounds R] [--threads 1,2] [--torch-python PATH] [--no-avx2]

For the four hourglass layer shapes of the kernel notes (3x3, stride 1, padding 1): 256->128 @
64x64 batch 1, 128->64 @ 64x64 batch 1, 256->256 @ 32x32 batch 1, 64->64 @ 16x16 batch 8, at each
thread count, in ONE run, it times

- ``packed kernel``: ``xnor.conv2d_fast`` on already packed activations and pre-blocked weights,
- ``packed + pack``: ``bitpack.pack_signs(x)`` + ``xnor.conv2d_prepared`` (what a deployed layer
  pays, input checks included),
- ``tinybin float``: ``tinybin.functional.conv2d`` forward under ``no_grad``,
- ``im2col + matmul``: NumPy ``sliding_window_view`` im2col copy + one float32 BLAS GEMM,
- with ``--torch-python PATH`` (a Python with PyTorch, e.g. a separate venv; tinybin never imports
  torch): ``torch.nn.functional.conv2d`` fp32, channels-last, ``torch.set_num_threads`` = the
  row's thread count, in a worker process of that Python,
- AVX2 columns (1 thread; skip with ``--no-avx2``): ``packed + pack`` in a worker process whose
  Numba targets AVX2 only (``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=``: the name alone would
  keep this host's AVX-512 features), against PyTorch limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``).

Timing (``tinybin.timing.compare``): every round times every implementation in turn -- the
worker processes included, which time their own calls and answer over a pipe -- so all ratios are
medians of per-round ratios measured under the same load. Threads: ``tinybin.threads``.
The last section times the whole paper-scale binary network, float vs packed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numba
import numpy as np

import tinybin.functional as F
from tinybin import Tensor, no_grad, threads
from tinybin.kernels import bitpack, cpu, xnor
from tinybin.timing import SelfTimed, compare

SHAPES = [  # (N, H, W, Cin, Cout), all 3x3, stride 1, padding 1
    (1, 64, 64, 256, 128),
    (1, 64, 64, 128, 64),
    (1, 32, 32, 256, 256),
    (8, 16, 16, 64, 64),
]
K, STRIDE, PAD = 3, 1, 1
AVX2_ENV = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}


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


def make_impls(shape, which=("kernel", "packed", "float", "im2col")) -> dict:
    """Callables for one shape (same data in every process: seed from the shape)."""
    N, H, W, C, Cout = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((Cout, K, K, C)).astype(np.float32)
    prepared = xnor.prepare_weights(bitpack.pack_signs(w), C)
    x_bits = bitpack.pack_signs(x)
    out = np.empty((N, H, W, Cout), dtype=np.int32)
    wmat = np.ascontiguousarray(w.transpose(0, 3, 1, 2).reshape(Cout, C * K * K).T)
    xt, wt = Tensor(x), Tensor(w)

    def float_conv():
        with no_grad():
            return F.conv2d(xt, wt, None, stride=STRIDE, padding=PAD)

    impls = {
        "kernel": lambda: xnor.conv2d_fast(x_bits, prepared, STRIDE, PAD, None, out),
        "packed": lambda: xnor.conv2d_prepared(bitpack.pack_signs(x), prepared, STRIDE, PAD),
        "float": float_conv,
        "im2col": lambda: im2col_matmul(x, wmat),
    }
    # Sanity: the packed layer is the float conv of the signs.
    ref = im2col_matmul(bitpack.sign(x), bitpack.sign(wmat))
    assert np.array_equal(impls["packed"]().astype(np.float32), ref), "packed conv disagrees with float"
    return {k: impls[k] for k in which}


# --------------------------------------------------------------------------------------------
# worker processes: time calls on request, answer on stdout (one JSON line per request)
# --------------------------------------------------------------------------------------------

TORCH_WORKER = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
cur = None
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "setup":
        N, H, W, C, Co = map(int, cmd[1:])
        g = torch.Generator().manual_seed(0)
        x = torch.randn(N, C, H, W, generator=g).contiguous(memory_format=torch.channels_last)
        w = torch.randn(Co, C, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
        def cur(x=x, w=w):
            with torch.no_grad():
                return torch.nn.functional.conv2d(x, w, padding=1)
        cur(); cur()
        print(json.dumps({"ok": torch.__version__}), flush=True)
    elif cmd[0] == "time":
        best = float("inf")
        for _ in range(int(cmd[2])):
            t0 = time.perf_counter(); cur(); best = min(best, time.perf_counter() - t0)
        print(json.dumps({"t": best}), flush=True)
    else:
        break
"""


def _tinybin_worker(nthreads: int) -> None:
    """Worker loop for --worker: the same protocol as TORCH_WORKER, timing tinybin impls."""
    import time

    threads.set_num_threads(nthreads)
    impls = {}
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "setup":
            impls = make_impls(tuple(map(int, cmd[1:])), which=("packed",))
            for f in impls.values():
                f()
                f()
            print(json.dumps({"ok": cpu.CHOICE.name}), flush=True)
        elif cmd[0] == "time":
            f, best = impls[cmd[1]], float("inf")
            for _ in range(int(cmd[2])):
                t0 = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t0)
            print(json.dumps({"t": best}), flush=True)
        else:
            break


class Worker:
    """A timing worker process (tinybin under another Numba target, or PyTorch)."""

    def __init__(self, argv: list[str], env_extra: dict, drop=()):
        env = dict(os.environ, **env_extra)
        for k in drop:
            env.pop(k, None)
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env, bufsize=1)

    def ask(self, line: str) -> dict:
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError(f"worker {self.p.args[:2]} died (exit {self.p.wait()})")
        return json.loads(out)

    def setup(self, shape) -> str:
        return self.ask("setup " + " ".join(map(str, shape)))["ok"]

    def timed(self, name: str) -> SelfTimed:
        return SelfTimed(lambda: self.ask(f"time {name} 1")["t"])

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(timeout=30)


def torch_worker(python: str, nthreads: int, isa: str | None) -> Worker:
    env = {"OMP_NUM_THREADS": str(nthreads)}
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    # PyTorch runs with its own OpenMP defaults, not the GOMP_SPINCOUNT tinybin's import sets
    return Worker([python, "-c", TORCH_WORKER, str(nthreads)], env, drop=threads.SET_ENV)


def tinybin_worker(nthreads: int, env: dict) -> Worker:
    return Worker([sys.executable, os.path.abspath(__file__), "--worker", str(nthreads)],
                  dict(env, TINYBIN_THREADS=str(nthreads)))


# --------------------------------------------------------------------------------------------
# the layer table
# --------------------------------------------------------------------------------------------


def bench_shape(shape, nt: int, rounds: int, remotes: dict) -> dict:
    impls = make_impls(shape)
    for name, w in remotes.items():
        w.setup(shape)
        impls[name] = w.timed("packed" if name.startswith("avx2") else "conv")
    t = compare(impls, rounds=rounds, calls=5)
    N, H, W, C, Cout = shape
    macs = N * H * W * Cout * K * K * C
    res = {k: t.median(k) for k in impls}
    res["gmacs_core"] = macs / res["kernel"] / 1e9 / nt
    res["r_float"] = t.ratio("float", "packed")
    res["r_im2col"] = t.ratio("im2col", "packed")
    if "torch" in impls:
        res["r_torch"] = t.ratio("torch", "packed")
    if "avx2" in impls and "torch_avx2" in impls:
        res["r_avx2"] = t.ratio("torch_avx2", "avx2")
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
    ap.add_argument("--torch-python", default=None, help="a Python with PyTorch for reference rows")
    ap.add_argument("--no-avx2", action="store_true", help="skip the AVX2 worker")
    ap.add_argument("--no-network", action="store_true", help="skip the whole-network section")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        _tinybin_worker(args.worker)
        return 0
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    thread_counts = [int(v) for v in args.threads.split(",")]

    print(f"# packed XNOR conv benchmark (3x3, stride {STRIDE}, padding {PAD})")
    print(f"numpy {np.__version__}, numba {numba.__version__}; host kernel: {cpu.CHOICE.name} "
          f"({cpu.CHOICE.reason}); rounds: {args.rounds}; load average at start: "
          f"{os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    if not cpu.CHOICE.fast:
        print("fast kernel off: nothing to benchmark")
        return 1
    have_torch = args.torch_python is not None
    head = ("| threads | N,H,W,Cin->Cout | packed kernel ms | packed + pack ms | tinybin float ms "
            "| im2col+matmul ms |" + (" PyTorch fp32 ms |" if have_torch else "")
            + " float / packed+pack | im2col / packed+pack |"
            + (" PyTorch / packed+pack |" if have_torch else "") + " G binary-MAC/s/core |")
    avx2_head = ("| N,H,W,Cin->Cout | AVX2 packed + pack ms | PyTorch fp32 AVX2 ms "
                 "| PyTorch-AVX2 / AVX2 packed+pack |")
    avx2_rows = []
    print()
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for nt in thread_counts:
        if nt > numba.config.NUMBA_NUM_THREADS:
            print(f"| {nt} | skipped: only {numba.config.NUMBA_NUM_THREADS} threads available |")
            continue
        threads.set_num_threads(nt)
        remotes = {}
        try:
            if have_torch:
                remotes["torch"] = torch_worker(args.torch_python, nt, None)
            if nt == 1 and not args.no_avx2:
                remotes["avx2"] = tinybin_worker(1, AVX2_ENV)
                if have_torch:
                    remotes["torch_avx2"] = torch_worker(args.torch_python, 1, "AVX2")
            for shape in SHAPES:
                r = bench_shape(shape, nt, args.rounds, remotes)
                N, H, W, C, Co = shape
                row = (f"| {nt} | {N},{H},{W},{C}->{Co} | {_ms(r['kernel'])} | {_ms(r['packed'])} | "
                       f"{_ms(r['float'])} | {_ms(r['im2col'])} |")
                if have_torch:
                    row += f" {_ms(r['torch'])} |"
                row += f" {_x(r['r_float'])} | {_x(r['r_im2col'])} |"
                if have_torch:
                    row += f" {_x(r['r_torch'])} |"
                print(row + f" {r['gmacs_core']:.0f} |", flush=True)
                if "avx2" in r:
                    avx2_rows.append(f"| {N},{H},{W},{C}->{Co} | {_ms(r['avx2'])} | "
                                     f"{_ms(r.get('torch_avx2'))} | {_x(r.get('r_avx2'))} |")
        finally:
            for w in remotes.values():
                w.close()
    if avx2_rows:
        print("\n## AVX2 (1 thread): tinybin with NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES= against "
              "PyTorch with ONEDNN_MAX_CPU_ISA=AVX2\n")
        print(avx2_head)
        print("|---|---|---|---|")
        print("\n".join(avx2_rows))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    if not args.no_network:
        print()
        print("## whole network")
        print(bench_network(rounds=max(3, args.rounds // 2), threads=thread_counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
