"""What the ablation notebooks share: showing markdown, finding an experiment's results (or making
smoke-sized ones in QUICK mode), the paired-difference figure and the verdict table.

Each notebook reads the committed `results/` through `tinybin.experiments` (`summarize`,
`paired_difference`, `claim_verdict`); these helpers only lay that out. The protocol behind the
numbers (DESIGN.md section 7): rows share seeds, so a row is compared with the experiment's
reference row seed by seed, as the mean and 95% confidence interval of the paired difference, at
PCKh@0.5 (`pckh`) and at the matched tolerance (`pckh_matched`).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile

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


__all__ = ["KEYS", "show_md", "results_root", "plot_paired", "verdict_table"]
