"""Benchmark: one training step of the binary hpm hourglass, tinybin against PyTorch CPU.

    python benchmarks/bench_train.py [--torch-python PY] [--baseline-src DIR] [--rounds 7]
                                     [--threads 1 2] [--resolution 64] [--depth 3] [--width 64]

The step: batch 16, forward, pixel-wise sigmoid loss (paper eq. 2: sum over pixels, mean over
maps), backward, RMSprop (alpha 0.99, eps 1e-8); data generation excluded. The network is
`HourGlass.downscaled(block="hpm", binary=True)`: R=64, F=64, D=3, 16 landmarks (change R, D and F
with --resolution/--depth/--width; R=128, D=4 and F=128 are the scale checks' configurations).

Every implementation runs in its own worker process (this file with --worker), started once per
thread count and kept alive; rounds are interleaved (one round = `--steps` timed steps of each
worker in turn, after warm-up), and the table reports per-round medians and the median of the
per-round ratios, so a load change on a shared machine hits all columns alike.

* `tinybin`: the tinybin that this Python imports.
* `--baseline-src DIR`: also time the tinybin found in DIR (e.g. a `git worktree` of an older
  commit), the "previous self" column.
* `--torch-python PY`: also time the same architecture and step in PyTorch, run by the Python
  PY of a separate environment. The PyTorch model is defined in this file (`_torch_worker`) and
  imported only inside that subprocess; tinybin never depends on PyTorch.

Threads: tinybin's `threads.set_num_threads(n)`; PyTorch's `torch.set_num_threads(n)` with
OMP_NUM_THREADS=n.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# The figures before the training-speed work (same machine, downscaled net, per-round medians),
# printed for context: tinybin then against PyTorch 2.x CPU.
BEFORE_TABLE = """reference (before the training-speed work): R=64 F=64 D=3 batch 16 | 1 thread: tinybin 0.161 s, PyTorch 0.111 s, 0.71x | 2 threads: 0.55x"""

BATCH, LANDMARKS = 16, 16


def _data(resolution: int):
    import numpy as np
    r = np.random.default_rng(0)
    x = r.random((BATCH, resolution, resolution, 3)).astype(np.float32)
    t = (r.random((BATCH, resolution // 4, resolution // 4, LANDMARKS)) > 0.95).astype(np.float32)
    return x, t


# ---- workers: each answers "run K" on stdin with the K step times on stdout ----------------------

def _serve(step) -> None:
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        ts = []
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        print(json.dumps(ts), flush=True)


def _tinybin_worker(threads: int, resolution: int, depth: int, width: int) -> None:
    import tinybin as tb
    from tinybin import Tensor
    tb.threads.set_num_threads(threads)
    x, t = _data(resolution)
    net = tb.HourGlass.downscaled(block="hpm", binary=True, seed=0, resolution=resolution, depth=depth,
                                  width=width)
    opt = tb.optim.RMSprop(net.parameters(), lr=2.5e-4)

    def step():
        opt.zero_grad()
        tb.losses.sigmoid_bce(net(Tensor(x)), t).backward()
        opt.step()
    _serve(step)


def _torch_worker(threads: int, resolution: int, depth: int, width: int) -> None:
    """The same network and step in PyTorch (NCHW, float32): binary hpm blocks of
    BN -> sign (clipped STE) -> conv with sign(W) * mean|W| (STE to W), as tinybin."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as tF
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class SignSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.abs() <= 1).to(g.dtype)

    class P(nn.Module):  # BN -> Sign -> binary conv, no bias
        def __init__(self, cin, cout, k):
            super().__init__()
            self.bn = nn.BatchNorm2d(cin)
            self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
            nn.init.kaiming_normal_(self.conv.weight)

        def forward(self, x):
            w = self.conv.weight
            alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
            wb = w + (torch.sign(w) * alpha - w).detach()  # straight-through to the latent W
            return tF.conv2d(SignSTE.apply(self.bn(x)), wb, padding=self.conv.padding)

    class HPM(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.c1, self.c2, self.c3 = P(cin, cout // 2, 3), P(cout // 2, cout // 4, 3), P(cout // 4, cout // 4, 3)
            self.short = P(cin, cout, 1) if cin != cout else None

        def forward(self, x):
            x1 = self.c1(x)
            x2 = self.c2(x1)
            y = torch.cat([x1, x2, self.c3(x2)], 1)
            return y + (x if self.short is None else self.short(x))

    class Level(nn.Module):
        def __init__(self, n, f):
            super().__init__()
            self.up1, self.low1, self.low3 = HPM(f, f), HPM(f, f), HPM(f, f)
            self.low2 = Level(n - 1, f) if n > 1 else HPM(f, f)

        def forward(self, x):
            low = self.low3(self.low2(self.low1(tF.max_pool2d(x, 2))))
            return self.up1(x) + tF.interpolate(low, scale_factor=2, mode="nearest")

    class Net(nn.Module):
        def __init__(self, f, d, L):
            super().__init__()
            self.conv1 = nn.Conv2d(3, f // 4, 7, stride=2, padding=3)
            self.bn1 = nn.BatchNorm2d(f // 4)
            self.stem1, self.stem2, self.stem3 = HPM(f // 4, f // 2), HPM(f // 2, f // 2), HPM(f // 2, f)
            self.hg, self.post, self.lin = Level(d, f), HPM(f, f), P(f, f, 1)
            self.lin_bn = nn.BatchNorm2d(f)
            self.out = nn.Conv2d(f, L, 1)

        def forward(self, x):
            h = self.stem1(torch.relu(self.bn1(self.conv1(x))))
            h = self.stem3(self.stem2(tF.max_pool2d(h, 2)))
            return self.out(torch.relu(self.lin_bn(self.lin(self.post(self.hg(h))))))

    xa, ta = _data(resolution)
    x = torch.from_numpy(np.ascontiguousarray(xa.transpose(0, 3, 1, 2)))
    t = torch.from_numpy(np.ascontiguousarray(ta.transpose(0, 3, 1, 2)))
    net = Net(width, depth, LANDMARKS)
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4, alpha=0.99, eps=1e-8)
    n_maps = BATCH * LANDMARKS

    def step():
        opt.zero_grad()
        loss = tF.binary_cross_entropy_with_logits(net(x), t, reduction="sum") / n_maps
        loss.backward()
        opt.step()
    _serve(step)


# ---- driver --------------------------------------------------------------------------------------

class Worker:
    def __init__(self, name: str, python: str, threads: int, resolution: int, depth: int, width: int,
                 src: str | None = None):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1")
        if src is not None:
            env["PYTHONPATH"] = os.path.abspath(src)
        kind = "torch" if name == "pytorch" else "tinybin"
        self.name = name
        self.p = subprocess.Popen(
            [python, os.path.abspath(__file__), "--worker", kind, "--threads", str(threads),
             "--resolution", str(resolution), "--depth", str(depth), "--width", str(width)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
            cwd=os.path.abspath(src) if src is not None else None)

    def run(self, steps: int) -> list[float]:
        self.p.stdin.write(f"run {steps}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died (see its stderr above)")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torch-python", help="Python of a separate environment with torch")
    ap.add_argument("--baseline-src", help="a checkout of an older tinybin to time as well")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per worker per round")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--worker", choices=["tinybin", "torch"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker == "tinybin":
        return _tinybin_worker(a.threads[0], a.resolution, a.depth, a.width)
    if a.worker == "torch":
        return _torch_worker(a.threads[0], a.resolution, a.depth, a.width)

    print(BEFORE_TABLE)
    print(f"this run: R={a.resolution} F={a.width} D={a.depth} batch {BATCH}, {a.rounds} rounds x "
          f"{a.steps} steps, load average {os.getloadavg()[0]:.2f}")
    for nt in a.threads:
        shape = (nt, a.resolution, a.depth, a.width)
        workers = [Worker("tinybin", sys.executable, *shape)]
        if a.baseline_src:
            workers.append(Worker("baseline", sys.executable, *shape, a.baseline_src))
        if a.torch_python:
            workers.append(Worker("pytorch", a.torch_python, *shape))
        try:
            for w in workers:
                w.run(3)                                   # compile / warm up
            per = {w.name: [] for w in workers}
            for _ in range(a.rounds):
                for w in workers:
                    per[w.name].append(statistics.median(w.run(a.steps)))
                    time.sleep(0.2)                        # let spinning pool threads go idle
        finally:
            for w in workers:
                w.close()
        cells = [f"{k} {statistics.median(v):.4f} s" for k, v in per.items()]
        ratios = [f"tinybin/{k} throughput {statistics.median(b / t for t, b in zip(per['tinybin'], v)):.2f}x"
                  for k, v in per.items() if k != "tinybin"]
        print(f"{nt} thread{'s' if nt > 1 else ''}: " + ", ".join(cells + ratios), flush=True)


if __name__ == "__main__":
    main()
