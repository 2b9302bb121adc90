"""`python -m tinybin.experiments`: list, run, calibrate, report."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from .definitions import EXPERIMENTS, RESULTS, get
from .runner import default_jobs, load_recipe, plan, run
from .reports import budget_report, calibration_report, curves_report, report


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (`kill`, a batch system's time limit) takes the path of Ctrl-C: runs in progress
    stop after their current step and checkpoint, so nothing is lost."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def _overrides(a) -> dict:
    """CLI training overrides (only the flags that were given)."""
    o = {}
    for flag, key in (("steps", "steps"), ("lr", "lr"), ("lr_end", "lr_end"), ("warmup", "warmup_steps"),
                      ("eval_every", "eval_every"), ("eval_samples", "eval_samples"), ("batch_size", "batch_size")):
        v = getattr(a, flag, None)
        if v is not None:
            o[key] = v
    if getattr(a, "clip_latent", None) is not None:
        o["clip_latent"] = None if a.clip_latent <= 0 else a.clip_latent
    return o


def _add_run_args(r, seeds: int) -> None:
    r.add_argument("--seeds", type=int, default=seeds)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--rows", nargs="*", default=None, help="only these rows")
    r.add_argument("--results", default=None, help="results folder (default: results/; quick runs write "
                                                    "only when it is given)")
    r.add_argument("--quick", action="store_true", help="tiny smoke runs")
    r.add_argument("--dry-run", action="store_true", help="list the runs still to train and estimate their time")
    r.add_argument("--jobs", type=int, default=None, help="worker processes (default: number of cores)")
    r.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    r.add_argument("--recipe", default=None, help="recipe JSON: {\"steps\": .., \"binary\": {..}, \"real\": {..}}")
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--lr", type=float, default=None, help="learning rate (lr_end = lr / 5 unless given)")
    r.add_argument("--lr-end", type=float, default=None)
    r.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    r.add_argument("--clip-latent", type=float, default=None, help="clamp latent weights to [-c, c]; 0: off")
    r.add_argument("--eval-every", type=int, default=None, help="validation interval (val experiments)")
    r.add_argument("--eval-samples", type=int, default=None)
    r.add_argument("--batch-size", type=int, default=None)


def format_plan(runs: list[dict], jobs: int) -> str:
    """`run --dry-run`'s text: one line per run of `plan`, then the totals."""
    if not runs:
        return "nothing to train: every run has its result file"
    lines = [f"{'experiment':<16} {'row':<24} {'seed':>4} {'steps done/total':>17} {'est. min':>9}  basis"]
    for p in runs:
        est = "?" if p["est_s"] is None else f"{p['est_s'] / 60:.1f}"
        lines.append(f"{p['experiment']:<16} {p['row']:<24} {p['seed']:>4} {p['done']:>8}/{p['total']:<8} "
                     f"{est:>9}  {p['basis'] or '-'}" + ("  (training now, in another process)" if p.get("training") else ""))
    known = [p["est_s"] for p in runs if p["est_s"] is not None]
    hours = sum(known) / 3600
    lines.append(f"{len(runs)} runs to train; {len(known)} with an estimate (measured step times of finished runs): "
                 f"{hours:.1f} h of single-core training, at least {hours / jobs:.1f} h wall with --jobs {jobs}"
                 + (f"; {len(runs) - len(known)} runs without an estimate" if len(known) < len(runs) else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinybin.experiments",
                                 description="Run the paper's ablations on downscaled synthetic data.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments and their rows")
    r = sub.add_parser("run", help="train every (row, seed) not done yet (resumable)")
    r.add_argument("experiment", nargs="+", help=f"one or more of {sorted(EXPERIMENTS)}, trained in one pool; "
                                                 "exp:row1,row2 picks rows")
    _add_run_args(r, 3)
    c = sub.add_parser("calibrate", help="the calibration sweep on the validation split (results/calibration)")
    _add_run_args(c, 1)
    p = sub.add_parser("report", help="print tables from the result files")
    p.add_argument("experiment", nargs="*", help="default: all")
    p.add_argument("--results", default=RESULTS, help="results folder (default: ./results)")
    p.add_argument("--threshold", type=float, default=None, help="also PCKh at this threshold, from distances")
    p.add_argument("--curves", action="store_true", help="validation curves (calibration, pilot)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            w_name = max(len(e.name) for e in EXPERIMENTS.values())
            w_src = max(len(e.source) for e in EXPERIMENTS.values())
            for e in EXPERIMENTS.values():
                print(f"{e.name:<{w_name}} {e.source:<{w_src}} {e.title}")
                for row in e.rows:
                    print(f"    {row.name:<34} {row.label}" + (f" (= {row.same_as})" if row.same_as else ""))
        elif a.cmd in ("run", "calibrate"):
            names = ["calibration"] if a.cmd == "calibrate" else a.experiment
            recipe = load_recipe(a.recipe) if a.recipe else None
            jobs = default_jobs() if a.jobs is None else a.jobs
            if jobs < 1:
                raise ValueError(f"--jobs must be >= 1, got {jobs}")
            over = _overrides(a)
            exps = [get(n.partition(":")[0]) for n in names]
            if any(e.name == "calibration" for e in exps) and set(over) & {"lr", "lr_end", "warmup_steps",
                                                                           "clip_latent"}:
                raise ValueError("calibration rows set lr, warm-up and clipping themselves; "
                                 "only --steps, --eval-every, --eval-samples, --batch-size apply")
            if a.dry_run:
                if a.quick:
                    raise ValueError("--dry-run describes full runs; drop --quick")
                print(format_plan(plan(names, a.seeds, a.results, a.rows, a.first_seed, over, recipe), jobs))
                return 0
            with _sigterm_as_ctrl_c():
                run(names, a.seeds, a.results, a.rows, a.quick, first_seed=a.first_seed, jobs=jobs,
                    scheduler=a.scheduler, overrides=over, recipe=recipe)
            if not a.quick or a.results:
                root = a.results or RESULTS
                for exp in {e.name: e for e in exps}.values():
                    print(report(exp.name, root))
                    if exp.split == "val":
                        print(curves_report(exp.name, root))
        else:
            for name in a.experiment or list(EXPERIMENTS):
                print(curves_report(name, a.results) if a.curves else report(name, a.results, a.threshold))
                if name == "calibration":
                    print()
                    print(calibration_report(a.results))
                if name == "pilot":
                    print()
                    print(budget_report(a.results))
                print()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = os.path.join(getattr(a, "results", None) or RESULTS, ".partial")
        print(f"\ninterrupted: finished runs are written; runs in progress stopped after their current step "
              f"and were checkpointed under {where}/ (unless interrupted twice). Run the same command again "
              f"to resume them.", file=sys.stderr)
        return 130
    return 0

