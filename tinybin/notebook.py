"""What the ablation notebooks share: showing markdown, finding an experiment's results (or making
smoke-sized ones in QUICK mode), the paired-difference figure, the verdict table and the seeds a
verdict would need.

Each notebook reads the committed `results/` through `tinybin.experiments` (`summarize`,
`paired_difference`, `claim_verdict`); these helpers only lay that out. The protocol behind the
numbers (README, "The experimental protocol"): rows share seeds, so a row is compared with the experiment's
reference row seed by seed, as the mean and 95% confidence interval of the paired difference, at
PCKh@0.5 (`pckh`) and at the matched tolerance (`pckh_matched`).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile

import numpy as np

from . import experiments as E

KEYS = ("pckh", "pckh_matched")


def show_md(text: str) -> None:
    """Render markdown in Jupyter, print it elsewhere (scripts, CI)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


def results_root(name: str, seeds: int, results: str, quick: bool = False):
    """(folder, description) of experiment `name`'s results.

    The committed `results` folder when it holds any; in QUICK mode without them, 2-seed smoke runs
    in a temporary folder removed at exit (every code path of the notebook runs, on numbers that
    mean nothing); otherwise (None, None), after saying how to run the experiment."""
    if any(E.load_results(name, results).values()):
        return results, f"results/{name}"
    if quick:
        tmp = tempfile.mkdtemp(prefix="tinybin-nb-")
        atexit.register(shutil.rmtree, tmp, True)
        E.run(name, seeds=2, root=tmp, quick=True, progress=False, jobs=1)
        return tmp, "QUICK smoke runs (a few steps at 32x32: the numbers mean nothing)"
    show_md(f"**{name}: not run yet.** Run `python -m tinybin.experiments run {name} --seeds {seeds} --jobs 2`, "
            "then re-run this notebook.")
    return None, None


def fmt_ci(d: dict | None, unit: str = "", digits: int = 2) -> str:
    """A `paired_difference` as text: "+1.23 % [+0.45, +2.01] (5 seeds)", "(1 seed)" without an
    interval, "not run" without pairs."""
    if not d or not d["n"]:
        return "not run"
    if d["half"] is None:
        return f"{d['mean']:+.{digits}f}{unit} (1 seed)"
    return f"{d['mean']:+.{digits}f}{unit} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}] ({d['n']} seeds)"


def plot_paired(name: str, root: str, title: str, keys=KEYS) -> list[dict]:
    """Figure: per row, the paired difference row - reference (mean and 95% CI over seeds) at each
    of `keys`, with the paper's difference (x) beside it. Returns `experiments.summarize`."""
    import matplotlib.pyplot as plt
    summ = E.summarize(name, root)
    exp = E.get(name)
    ref_paper = exp.row(exp.reference).paper
    rows = [s for s in summ if s["row"] != exp.reference]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 0.5 * len(rows) + 2), sharey=True,
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        for y, s in enumerate(rows):
            d = s["diff"].get(key) or {}
            if d.get("n"):
                ax.errorbar(d["mean"], y, xerr=d["half"], fmt="o", color="tab:blue", capsize=3,
                            label="ours: mean, 95% CI" if y == 0 else None)
            if s["paper"] is not None and ref_paper is not None:
                ax.plot(s["paper"] - ref_paper, y, "x", color="tab:red", label="paper (MPII)" if y == 0 else None)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([s["label"] for s in rows], fontsize=8)
        ax.set_xlabel(f"{key}: row - reference (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title} (reference: {exp.row(exp.reference).label})", fontsize=10)
    plt.tight_layout()
    plt.show()
    return summ


def verdict_table(name: str, root: str, claims, keys=KEYS) -> list[tuple[str, str, str]]:
    """Markdown table of the paper's claims about experiment `name`, shown with `show_md`.

    claims: (row, direction, text): the paper says row - reference has sign `direction` (+1 / -1).
    Per claim: the paper's difference, ours at each of `keys` (mean [95% CI] (pairs)) and the
    verdict from the CI (`experiments.claim_verdict`). Returns [(row, key, verdict)]."""
    summ = {s["row"]: s for s in E.summarize(name, root)}
    exp = E.get(name)
    ref_paper = exp.row(exp.reference).paper
    head = ["claim (paper)", "paper Δ"] + [c for k in keys for c in (f"ours Δ {k}", "verdict")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out = []
    for row, direction, text in claims:
        s = summ[row]
        pd = "–" if s["paper"] is None or ref_paper is None else f"{s['paper'] - ref_paper:+.1f}"
        cells = [text, pd]
        for key in keys:
            d = s["diff"].get(key)
            v = E.claim_verdict(d, direction)
            cells += [E._fmt_diff(d), v]
            out.append((row, key, v))
        lines.append("| " + " | ".join(cells) + " |")
    show_md("\n".join(lines))
    return out


def power_table(name: str, root: str, claims, keys=KEYS, power: float = 0.8, yardstick: float = 1.0) -> list[dict]:
    """Markdown table, shown with `show_md`: how many seeds would resolve each claim's difference?

    claims: (row, delta, text), delta the paper's row - reference in points, or None where the paper
    gives only a trend (then the `yardstick`, 1 point, is used and marked). Per row and key: the
    standard deviation of the paired differences measured so far and
    `experiments.seeds_for_power(sd, delta, power)`, the number of paired seeds that would give a
    95% interval excluding 0 with probability `power` if the true difference were delta. It tells
    whether "unresolved" means "not enough seeds yet" or "beyond any budget we have".

    A row's sd from fewer than `experiments.MIN_PAIRS` pairs is shown but not used for a seed
    count. With two rows or more, a last line pools their variances (weighted by their degrees of
    freedom): an estimate with more degrees of freedom when the rows' spreads are alike, as rows
    compared with one reference under shared seeds usually are.

    Returns [dict(row, key, delta, sd, pairs, seeds)]; the pooled line's dicts have row None and
    pairs = its degrees of freedom + 1.
    """
    summ = {s["row"]: s for s in E.summarize(name, root)}
    head = ["row", "Δ to resolve"] + [c for k in keys for c in (f"sd of paired Δ {k} (pairs)",
                                                                f"seeds for {power:.0%} power")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out, sizes = [], []

    def seeds_cell(sd, size, pairs):
        if sd is None:
            return "–", None
        if pairs < E.MIN_PAIRS:
            return f"– (< {E.MIN_PAIRS} pairs)", None
        n = E.seeds_for_power(sd, size, power)
        return ("> 1000" if n is None else str(n)), n

    for row, delta, text in claims:
        size = yardstick if delta is None else abs(delta)
        sizes.append(size)
        cells = [text, f"{size:.1f}" + (" (yardstick)" if delta is None else " (paper)")]
        for key in keys:
            d = summ[row]["diff"].get(key) or {}
            sd, pairs = d.get("sd"), d.get("n", 0)
            cell, seeds = seeds_cell(sd, size, pairs)
            cells += ["–" if sd is None else f"{sd:.2f} ({pairs})", cell]
            out.append(dict(row=row, key=key, delta=size, sd=sd, pairs=pairs, seeds=seeds))
        lines.append("| " + " | ".join(cells) + " |")
    sizes = sorted(set(sizes))
    cells = ["pooled over these rows", ", ".join(f"{x:.1f}" for x in sizes)]
    for key in keys:
        got = [r for r in out if r["key"] == key and r["sd"] is not None]
        df = sum(r["pairs"] - 1 for r in got)
        if len(got) < 2:      # nothing to pool
            cells += ["–", "–"]
            continue
        sd = float(np.sqrt(sum((r["pairs"] - 1) * r["sd"] ** 2 for r in got) / df))
        parts = [seeds_cell(sd, x, df + 1) for x in sizes]
        cells += [f"{sd:.2f} ({df} df)", ", ".join(f"{x:.1f}: {c}" if len(sizes) > 1 else c
                                                    for x, (c, _) in zip(sizes, parts))]
        out += [dict(row=None, key=key, delta=x, sd=sd, pairs=df + 1, seeds=n) for x, (_, n) in zip(sizes, parts)]
    if any(r["row"] is None for r in out):
        lines.append("| " + " | ".join(cells) + " |")
    show_md("\n".join(lines))
    return out


SCALES = {"base": "F=64, R=64 (Tables 1-2)", "scale_width": "F=128", "scale_resolution": "R=128, D=4"}


SCALE_EXPERIMENTS = ("scale_width", "scale_resolution")


def scale_root(results: str, quick: bool, rows: dict[str, list[str]], smoke: str | None = None):
    """(folder, description) of the scale checks' results: `results` when either scale experiment
    has any there; in QUICK mode without them, 2-seed smoke runs of `rows` ({experiment: rows}) in
    `smoke` (a new temporary folder, removed at exit, when None); otherwise (None, None), after
    saying how to run them."""
    if any(any(E.load_results(n, results).values()) for n in SCALE_EXPERIMENTS):
        return results, "results/scale_width, results/scale_resolution"
    if quick:
        if smoke is None:
            smoke = tempfile.mkdtemp(prefix="tinybin-nb-")
            atexit.register(shutil.rmtree, smoke, True)
        for name, names in rows.items():
            E.run(name, seeds=2, root=smoke, rows=names, quick=True, progress=False, jobs=1)
        return smoke, "QUICK smoke runs (a few steps at 32x32: the numbers mean nothing)"
    show_md("**Scale checks: not run yet.** `python -m tinybin.experiments run scale_width scale_resolution "
            "--seeds 3 --jobs 2`.")
    return None, None


def scale_check(root: str, labels, paper: dict[str, float], title: str, keys=KEYS) -> list[dict]:
    """Figure and verdicts of the scale checks for the comparisons `labels` (see
    `experiments.SCALE_COMPARISONS`): per comparison, the paired difference (mean, 95% CI) at the
    base scale and at each larger scale, with the paper's difference `paper[label]` as a line.

    The verdict is `experiments.scale_verdict`: a difference "moves towards the paper's" when its
    paired change with scale has a 95% interval that excludes 0 on the side of the paper's value
    (seen from the base-scale mean), "overshoots the paper's" when it does so but its scaled mean
    lies past the paper's value, "moves away" when the interval excludes 0 on the other side, "no
    change resolved" otherwise. Shows the verdicts as a markdown list and returns them as
    [dict(label, scale, key, base, scaled, shift, verdict, line)]."""
    import matplotlib.pyplot as plt
    entries = [e for e in E.scale_check(root, keys) if e["label"] in labels]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 0.9 * len(labels) + 1.8), sharey=True,
                             squeeze=False)
    colours = {"base": "0.3", "scale_width": "tab:blue", "scale_resolution": "tab:green"}
    for ax, key in zip(axes[0], keys):
        for y, label in enumerate(labels):
            mine = [e for e in entries if e["label"] == label]
            rows = ([("base", mine[0]["base"][key])] if mine else []) + [(e["scale"], e["scaled"][key]) for e in mine]
            for j, (scale, d) in enumerate(rows):
                if d.get("n"):
                    ax.errorbar(d["mean"], y + 0.2 * (j - 1), xerr=d["half"] or 0, fmt="o", capsize=3,
                                color=colours[scale], label=SCALES[scale] if y == 0 else None)
            if label in paper:
                ax.plot([paper[label]] * 2, [y - 0.35, y + 0.35], color="tab:red", lw=2,
                        label="paper (MPII)" if y == 0 else None)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"{key}: paired difference (points), mean and 95% CI")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()
    out, lines = [], []
    for e in entries:
        for key in keys:
            b, sh = e["base"][key], e["shift"][key]
            verdict = E.scale_verdict(b, e["scaled"][key], sh, paper.get(e["label"]))
            line = (f"- Scale check, {e['label']} at {SCALES[e['scale']]}, {key}: {E._fmt_diff(b)} at F=64, R=64 -> "
                    f"{E._fmt_diff(e['scaled'][key])}; change {E._fmt_diff(sh)}"
                    + (f" (paper {paper[e['label']]:+.1f})" if e["label"] in paper else "") + f": **{verdict}**")
            out.append(dict(label=e["label"], scale=e["scale"], key=key, base=b, scaled=e["scaled"][key],
                            shift=sh, verdict=verdict, line=line))
            lines.append(line)
    show_md("\n".join(lines))
    return out


def plot_loss_drift(results: dict[str, list[dict]], ref: str, labels: dict[str, str], title: str,
                    window: float = 0.1, digits: int = 3) -> dict[str, dict]:
    """Figure and table: was the training budget long enough for these comparisons? Left: the
    paired training-loss difference row - `ref` over training (mean over seeds); right: how much
    that difference still moved between the last two `window`s of training (mean and 95% CI over
    seeds, `experiments.loss_drift`); then the same as a markdown table with `digits` decimals.
    Returns the `loss_drift` dict."""
    import matplotlib.pyplot as plt
    drift = E.loss_drift(results, ref, window)
    if not drift:
        show_md("No paired loss curves yet.")
        return drift
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.6))
    names = list(drift)
    for n in names:
        d = drift[n]
        k = max(1, len(d["mean"]) // 20)  # a running mean over 5% of training: the curve is per-step noise
        sm = np.convolve(d["mean"], np.ones(k) / k, mode="valid")
        ax0.plot(d["steps"][k - 1:], sm, label=f"{labels.get(n, n)} ({d['drift']['n']} seeds)")
    ax0.axhline(0, color="k", lw=0.8)
    ax0.set_xlabel("step")
    ax0.set_ylabel(f"training loss: row - {labels.get(ref, ref)}")
    ax0.legend(fontsize=7)
    ax0.grid(alpha=0.3)
    for y, n in enumerate(names):
        dd = drift[n]["drift"]
        ax1.errorbar(dd["mean"], y, xerr=dd["half"] or 0.0, fmt="o", capsize=3, color="tab:blue")
    ax1.axvline(0, color="k", lw=0.8)
    ax1.set_yticks(range(len(names)), [labels.get(n, n) for n in names], fontsize=8)
    ax1.set_xlabel(f"change of the difference: last {window:.0%} - previous {window:.0%} of steps")
    ax1.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()
    w = f"{window:.0%}"
    show_md("\n".join([f"| row | loss Δ, last {w} | change over the last {w} [95% CI] (seeds) |", "|---|---|---|"]
                       + [f"| {labels.get(n, n)} | {d['last']['mean']:+.{digits}f} | {E._fmt_diff(d['drift'], digits)} |"
                          for n, d in drift.items()]))
    return drift


def budget_check(name: str, root: str, skip=()) -> dict[str, dict]:
    """`plot_loss_drift` for experiment `name` against its reference row. Rows in `skip` are left
    out: their training loss is not the reference's (another loss function, a distillation term,
    a sum over more stacks), so a difference of losses would not compare fits."""
    exp = E.get(name)
    res = {k: v for k, v in E.load_results(name, root).items() if k not in skip}
    return plot_loss_drift(res, exp.reference, {r.name: r.label for r in exp.rows},
                           f"{exp.title}: training loss against {exp.row(exp.reference).label}")


def plot_gap_closed(summ: list[dict], rows: list[str], keys=KEYS, ceiling: str = "real"):
    """Figure (returned, not shown): per row of `rows`, the fraction of the real-binary gap it
    closes, (row - reference) / (ceiling - reference), mean and 95% CI over paired seeds, at each
    of `keys` (`experiments.gap_closed`). 0 = the reference recipe, 1 = the ceiling (dashed)."""
    import matplotlib.pyplot as plt
    label = {s["row"]: s["label"] for s in summ}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 0.45 * len(rows) + 2), sharey=True,
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        closed = E.gap_closed(summ, key, ceiling)
        gap = None
        for y, name in enumerate(rows):
            c = closed.get(name)
            if c is None:
                continue
            gap = c["gap"]
            err = None if c["lo"] is None else [[c["mean"] - c["lo"]], [c["hi"] - c["mean"]]]
            ax.errorbar(c["mean"], y, xerr=err, fmt="o", capsize=3, color="tab:blue")
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(1, color="tab:green", lw=1, ls="--", label=f"{label.get(ceiling, ceiling)}")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label.get(n, n) for n in rows], fontsize=8)
        ax.set_title(f"{key}: " + ("no gap measured" if gap is None else f"gap ceiling - reference = {gap:.1f} points"),
                     fontsize=9)
        ax.set_xlabel("fraction of the real-binary gap closed")
        if key == keys[0]:
            ax.invert_yaxis()                    # shared y axis: the experiment's order, top down
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Each row against the reference: mean and 95% CI over paired seeds", fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["KEYS", "SCALES", "SCALE_EXPERIMENTS", "show_md", "results_root", "fmt_ci", "plot_paired",
           "verdict_table", "scale_root", "scale_check", "plot_loss_drift", "budget_check", "plot_gap_closed"]
