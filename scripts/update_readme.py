"""Regenerate the tables of README.md that come from code and committed files.

    python scripts/update_readme.py

Replaces the text between `<!-- generated:NAME -->` and `<!-- end:NAME -->` markers:
  counts     parameter counts at paper scale (tinybin.models.parameter_table)
  status     which experiments have results under the current protocol, and which do not yet
  results    the report (tinybin.experiments.report) of every experiment of the current protocol
             that has result files in results/<name>/: Tables 1-4, the scale checks, 10-12,
             Figs. 9-10, faces, the beyond-the-paper options, the calibration sweep and the budget
             pilot (validation split), with the rules that chose the recipe and the budget
  protocol1  the first protocol's Tables 1-2 (results/protocol1/), labelled as superseded
  beyond     the "Beyond the paper" summary: the gap-closed figure (written to
             docs/beyond_gap_closed.png from results/beyond/) and where its table is
Benchmark tables are measurements: they are pasted from the benchmark scripts' output, with the
command that makes them, not regenerated here.
"""
import os
import re

from tinybin import experiments
from tinybin.models import parameter_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "results")
PROTOCOL1 = os.path.join(RESULTS, "protocol1")

# The current protocol's experiments, in the order the README shows them.
CURRENT = ("table1", "table2", "table3", "scale_width", "scale_resolution", "table4", "table4_probe", "fig9", "fig10",
           "table10", "table11", "table11_schedule", "fig13", "face", "table12", "beyond", "beyond_face", "calibration",
           "pilot")


def counts_table() -> str:
    lines = ["| source | network | paper | tinybin | tinybin / paper |", "|---|---|---:|---:|---:|"]
    for r in parameter_table():
        if r["paper"] is None:
            continue
        lines.append(f"| {r['source']} | {r['row']} | {r['paper']}M | {r['params']:,} | {r['ratio']:.3f} |")
    return "\n".join(lines)


def runs(name: str, root: str = RESULTS) -> dict[str, int]:
    """{row: number of seeds with a result file} of experiment `name` under `root`."""
    return {row: len(rs) for row, rs in experiments.load_results(name, root).items()}


def has_results(name: str, root: str = RESULTS) -> bool:
    return any(runs(name, root).values())


def status_line() -> str:
    """What is run under the current protocol and what is not, from the result files."""
    done, pending = [], []
    for name in CURRENT:
        r = runs(name)
        rows_done = sum(1 for v in r.values() if v)
        if rows_done:
            seeds = sorted({v for v in r.values() if v})
            s = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
            word = "seed" if seeds == [1] else "seeds"
            done.append(f"`{name}` ({rows_done} of {len(r)} rows, {s} {word} per row)")
        else:
            pending.append(f"`{name}`")
    lines = ["**Status** (computed from `results/`): "
             + (("run under the current protocol: " + ", ".join(done) + ". ") if done else
                "no experiment has results under the current protocol yet. ")
             + ("Not run yet: " + ", ".join(pending) + "." if pending else "")]
    if has_results("table1", PROTOCOL1) or has_results("table2", PROTOCOL1):
        lines.append("The first protocol's Tables 1-2 (`results/protocol1/`) are shown further down, "
                     "labelled as superseded.")
    return " ".join(lines)


def results_section() -> str:
    """The report of every current-protocol experiment that has results (or a line saying none has)."""
    parts = []
    for name in CURRENT:
        if not has_results(name):
            continue
        rel = f"results/{name}"
        parts.append(experiments.report(name, RESULTS).strip()
                     + f"\n\nFrom `{rel}/`; `python -m tinybin.experiments report {name}` prints it.")
        if name == "table1":
            parts.append("Per part, mean over seeds (ours / paper):\n\n" + experiments.parts_report("table1", RESULTS))
        if name == "calibration":
            parts.append(experiments.calibration_report(RESULTS))
        if name == "pilot":
            parts.append(experiments.budget_report(RESULTS))
    if not parts:
        return ("No experiment has test results under the current protocol yet (see the status line above); "
                "no number is shown until one has.")
    return "\n\n".join(parts)


def protocol1_section() -> str:
    """The first protocol's Tables 1-2, labelled as superseded."""
    if not (has_results("table1", PROTOCOL1) or has_results("table2", PROTOCOL1)):
        return "The first protocol's results are not in this checkout."
    out = []
    for name in ("table1", "table2"):
        if has_results(name, PROTOCOL1):
            rep = experiments.report(name, PROTOCOL1).strip()
            rep = rep.replace("### ", "### SUPERSEDED (first protocol) ", 1)
            out.append(rep)
    if has_results("table1", PROTOCOL1):
        out.append("Per part, mean over seeds (ours / paper), first protocol:\n\n"
                   + experiments.parts_report("table1", PROTOCOL1))
    return "\n\n".join(out)


BEYOND_FIGURE = os.path.join("docs", "beyond_gap_closed.png")


def _beyond_rows() -> list[str]:
    """The `beyond` rows other than the reference and the ceiling that have results."""
    exp = experiments.get("beyond")
    res = experiments.load_results("beyond", RESULTS)
    return [r.name for r in exp.rows if r.name not in (exp.reference, "real") and res.get(r.name)]


def beyond_section() -> str:
    """The README's "Beyond the paper" results block (the figure itself: `write_beyond_figure`)."""
    rows = _beyond_rows()
    if not rows:
        return ("Their accuracy results are not run yet: `python -m tinybin.experiments run beyond --seeds 5 "
                "--jobs 2`, then `python scripts/update_readme.py` draws the gap-closed figure here.")
    n = {len(v) for k, v in experiments.load_results("beyond", RESULTS).items() if k in rows}
    seeds = (f"{min(n)}" if len(n) == 1 else f"{min(n)}-{max(n)}") + (" seed" if max(n) == 1 else " seeds")
    return (f"What fraction of the real-binary gap each addition closes ({len(rows)} of "
            f"{len(experiments.get('beyond').rows) - 2} additions run, {seeds} each; 0 = the paper's "
            "recipe, 1 = the real HPM; mean and 95% CI over paired seeds, at PCKh@0.5 and at the matched "
            "tolerance), drawn from `results/beyond/` by `python scripts/update_readme.py`:\n\n"
            f"![fraction of the real-binary gap closed]({BEYOND_FIGURE})\n\n"
            "The paired differences and the verdicts of the claims fixed before the runs are under Results "
            "above (the `beyond` report); notebook 10 walks through them.")


def write_beyond_figure() -> str | None:
    """Draw the gap-closed figure of `beyond_section` into docs/ (None when nothing is run)."""
    rows = _beyond_rows()
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tinybin.notebook import plot_gap_closed
    fig = plot_gap_closed(experiments.summarize("beyond", RESULTS), rows)
    path = os.path.join(ROOT, BEYOND_FIGURE)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def replace(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"README.md has no <!-- generated:{name} --> ... <!-- end:{name} --> block")
    return pat.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(2), text)


def main():
    path = os.path.join(ROOT, "README.md")
    with open(path) as fh:
        text = fh.read()
    text = replace(text, "counts", counts_table())
    text = replace(text, "status", status_line())
    text = replace(text, "results", results_section())
    text = replace(text, "protocol1", protocol1_section())
    text = replace(text, "beyond", beyond_section())
    write_beyond_figure()
    with open(path, "w") as fh:
        fh.write(text)
    print("README.md updated")


if __name__ == "__main__":
    main()
