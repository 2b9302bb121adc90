"""Regenerate the tables of README.md that come from code and committed files.

    python scripts/update_readme.py

Replaces the text between `<!-- generated:NAME -->` and `<!-- end:NAME -->` markers:
  counts      parameter counts at paper scale (tinybin.models.parameter_table)
  table1/2    the experiment reports computed from results/ (tinybin.experiments.report)
  table1_parts  Table 1 per body part (tinybin.experiments.parts_report)
Benchmark tables are measurements: they are pasted from the benchmark scripts' output, with the
command that makes them, not regenerated here.
"""
import os
import re

from tinybin import experiments
from tinybin.models import parameter_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "results")


def counts_table() -> str:
    lines = ["| source | network | paper | tinybin | tinybin / paper |", "|---|---|---:|---:|---:|"]
    for r in parameter_table():
        if r["paper"] is None:
            continue
        lines.append(f"| {r['source']} | {r['row']} | {r['paper']}M | {r['params']:,} | {r['ratio']:.3f} |")
    return "\n".join(lines)


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
    for name in ("table1", "table2"):
        text = replace(text, name, experiments.report(name, RESULTS))
    text = replace(text, "table1_parts", "Per part, mean over seeds (ours / paper):\n\n"
                   + experiments.parts_report("table1", RESULTS))
    with open(path, "w") as fh:
        fh.write(text)
    print("README.md updated")


if __name__ == "__main__":
    main()
