"""Benchmark: the experiment runner with --jobs 2 against --jobs 1 on a 2-row x 2-seed quick table.

    python benchmarks/bench_runner.py [--steps 4] [--rounds 3] [--experiment table1]

Each round runs `python -m tinybin.experiments run <experiment> --seeds 2 --quick --results TMP
--jobs J` for J = 1 and J = 2 (alternating which goes first), as fresh processes, so the wall time
includes interpreter start, imports and, for J = 2, spawning the two single-threaded workers.
Prints each round's wall times, the median ratio jobs2 / jobs1, and checks that both runs wrote
identical result files (every field but the timing fields). `--steps` lengthens the quick runs
(default: the quick mode's 4 steps) to show how the ratio approaches 0.5 as jobs get longer.

Why 4-step runs cannot show the speed-up: a fresh Python process pays about 3 s before its first
quick job ends (imports ~0.8 s, loading the cached Numba kernels ~1.2 s, first-call set-up), while
a 4-step quick job then takes ~0.75 s. Four such jobs are ~3 s of parallel work against ~3 s of
per-process start-up, so by Amdahl's law no split of them over two processes gets under ~0.75x.
With `--steps 100` the work dominates and the ratio shows what --jobs buys on real runs.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from tinybin.experiments import result_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def once(experiment, jobs, steps, tmp):
    cmd = [sys.executable, "-m", "tinybin.experiments", "run", experiment, "--seeds", "2", "--quick",
           "--results", tmp, "--jobs", str(jobs)]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="table1", help="an experiment with 2 rows (default table1)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per quick run (default 4)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    ratios = []
    for k in range(a.rounds):
        t = {}
        with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
            order = (1, 2) if k % 2 == 0 else (2, 1)
            for j in order:
                t[j] = once(a.experiment, j, a.steps, d1 if j == 1 else d2)
            same = result_files(d1) == result_files(d2)
            n = len(result_files(d1))
        ratios.append(t[2] / t[1])
        print(f"round {k}: jobs1 {t[1]:.2f} s, jobs2 {t[2]:.2f} s, ratio {ratios[-1]:.2f}, "
              f"{n} files, identical: {same}", flush=True)
        if not same:
            raise SystemExit("result files differ between --jobs 1 and --jobs 2")
    print(f"median wall-time ratio jobs2 / jobs1 over {a.rounds} rounds: {np.median(ratios):.2f} "
          f"(steps per run: {a.steps or 4})")


if __name__ == "__main__":
    main()
