"""Speed and memory of the paper's networks (float training graph, not the packed deployment path).

(a) Paper scale (R = 256, F = 256, D = 4, L = 16): one 256x256 image through each network variant,
    eval mode under no_grad: median wall time, peak NumPy memory during the forward (tracemalloc)
    and the process's peak resident memory (ru_maxrss), each variant in its own subprocess.
(b) One training step (forward, sigmoid BCE, backward, RMSprop update) on a batch of 16 for the
    binary hpm hourglass at the downscaled preset and two other sizes (R=64 F=32 D=3; R=128 F=64
    D=4). The comparison with PyTorch at the same step is `bench_train.py`'s.

Threads (tinybin/threads.py): both pools run TINYBIN_THREADS threads, default 1; on a busy 2-core
machine two pools of two threads spin against each other and a step gets up to 10-20x slower.
Every row is therefore run twice, with TINYBIN_THREADS=1 and with one thread per core.
Timing: tinybin.timing (warm-up, median over rounds).

    python benchmarks/bench_models.py            # full run, prints markdown tables (~5-10 min)
    python benchmarks/bench_models.py --quick    # fewer variants and repeats
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

FORWARD_VARIANTS = [
    ("bottleneck (7a), binary", dict(block="bottleneck")),
    ("wide (7b), binary", dict(block="wide")),
    ("multiscale (7c), binary", dict(block="multiscale")),
    ("multiscale_no1x1 (7d), binary", dict(block="multiscale_no1x1")),
    ("wide_no1x1 (4.6.1), binary", dict(block="wide_no1x1")),
    ("hpm F=192 (1b), binary", dict(block="hpm", width=192)),
    ("hpm (7e), binary", dict(block="hpm")),
    ("hpm (7e), real", dict(block="hpm", binary=False)),
    ("hpm +ReLU, binary", dict(block="hpm", relu_after_conv=True)),
    ("hpm depth 6 (Fig. 9), binary", dict(block="hpm", block_opts={"depth": 6})),
    ("hpm cardinality 4 (Fig. 10), binary", dict(block="hpm", block_opts={"cardinality": 4})),
    ("improved HG (Fig. 11), binary hpm", dict(block="hpm", improved=True)),
    ("2 stacks (Fig. 12), binary hpm", dict(block="hpm", stacks=2)),
    ("3 stacks, binary hpm", dict(block="hpm", stacks=3)),
    ("Newell 8 stacks, real bottleneck", dict(stacks=8, block="bottleneck", binary=False, feature_proj=True)),
]
QUICK_FORWARD = {"bottleneck (7a), binary", "hpm (7e), binary", "hpm (7e), real", "improved HG (Fig. 11), binary hpm"}

STEP_SIZES = [  # (label, R, F, D)
    ("downscaled preset R=64 F=64 D=3", 64, 64, 3),
    ("R=64 F=32 D=3", 64, 32, 3),
    ("R=128 F=64 D=4", 128, 64, 4),
]

SINGLE = {"TINYBIN_THREADS": "1"}
ALL_CORES = {"TINYBIN_THREADS": str(os.cpu_count() or 1)}


# ---- workers (run in a subprocess) -------------------------------------------------------------

def _worker_forward(kw: dict, repeats: int) -> dict:
    import resource
    import tracemalloc

    import numpy as np

    import tinybin as tb
    from tinybin import HourGlass, Tensor, no_grad
    from tinybin.timing import median_time

    net = HourGlass.paper(**kw).eval()
    x = Tensor(np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32))
    with no_grad():
        seconds = median_time(lambda: net(x), rounds=repeats)   # warm-up: kernels load from cache
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        net(x)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return {"params": tb.count_parameters(net), "seconds": seconds,
            "forward_peak_mb": peak / 2**20,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _worker_step(R: int, Fw: int, D: int, steps: int) -> dict:
    import numpy as np

    import tinybin as tb
    from tinybin import HourGlass, Tensor
    from tinybin.timing import compare

    net = HourGlass(block="hpm", binary=True, width=Fw, depth=D, resolution=R, num_landmarks=16)
    opt = tb.optim.RMSprop(net.parameters(), lr=2.5e-4)
    rng = np.random.default_rng(0)
    x = rng.random((16, R, R, 3), dtype=np.float32)
    target = (rng.random((16, R // 4, R // 4, 16)) > 0.97).astype(np.float32)

    def step():
        loss = tb.losses.sigmoid_bce(net(Tensor(x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = compare({"step": step}, rounds=steps, warmup=1, pause=0.0)  # warm-up step compiles
    return {"seconds": t.median("step"), "min": float(t.rounds["step"].min()),
            "params": tb.count_parameters(net)}


def _run(args: list[str], env_extra: dict | None) -> dict:
    env = dict(os.environ)
    if env_extra:
        env.update(env_extra)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", *args], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- tables ----------------------------------------------------------------------------------

def bench_forward(quick: bool) -> str:
    lines = ["| network (paper scale, 1 image 256x256, eval, no_grad) | params | time 1 thread (s) "
             "| time all cores (s) | forward peak (MB, tracemalloc) | process peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, kw in FORWARD_VARIANTS:
        if quick and label not in QUICK_FORWARD:
            continue
        heavy = kw.get("stacks", 1) > 3
        reps = "1" if (quick or heavy) else "3"
        one = _run(["forward", json.dumps(kw), reps], SINGLE)
        dflt = _run(["forward", json.dumps(kw), reps], ALL_CORES)
        if "error" in one:
            lines.append(f"| {label} | error: {one['error']} | | | | |")
            continue
        lines.append(f"| {label} | {one['params']:,} | {one['seconds']:.2f} | "
                     f"{dflt.get('seconds', float('nan')):.2f} | {one['forward_peak_mb']:.0f} | "
                     f"{one['maxrss_mb']:.0f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def bench_steps(quick: bool) -> str:
    steps = "3" if quick else "6"
    lines = ["| binary hpm, batch 16, forward + BCE + backward + RMSprop | params "
             "| tinybin 1 thread (s) | tinybin all cores (s) |",
             "|---|---:|---:|---:|"]
    for label, R, Fw, D in STEP_SIZES:
        one = _run(["step", str(R), str(Fw), str(D), steps], SINGLE)
        dflt = _run(["step", str(R), str(Fw), str(D), steps], ALL_CORES)
        if "error" in one:
            lines.append(f"| {label} | error: {one['error']} | | |")
            continue
        lines.append(f"| {label} | {one['params']:,} | {one['seconds']:.3f} | "
                     f"{dflt.get('seconds', float('nan')):.3f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer variants and repeats")
    ap.add_argument("--only", choices=["forward", "step"], help="run one of the two tables")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, *rest = a.worker
        if kind == "forward":
            res = _worker_forward(json.loads(rest[0]), int(rest[1]))
        else:
            res = _worker_step(*map(int, rest))
        print(json.dumps(res))
        return
    print(f"# tinybin network benchmarks ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')})\n")
    if a.only in (None, "step"):
        print("## Training step, batch 16\n")
        print(bench_steps(a.quick) + "\n", flush=True)
    if a.only in (None, "forward"):
        print("## Paper-scale forward, one image\n")
        print(bench_forward(a.quick) + "\n", flush=True)


if __name__ == "__main__":
    main()
