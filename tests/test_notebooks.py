"""The notebooks run, and their generated .ipynb files match their .py sources.

Every notebooks/NN_topic.py (jupytext percent format) runs as a plain Python script in QUICK mode
(TINYBIN_QUICK=1: tiny sizes), in a subprocess with the Agg backend, from a temporary directory so
that nothing is written into the repository. No Jupyter is needed: the percent format is ordinary
Python. A committed NN_topic.ipynb must hold the same code cells, in order, as its .py (the .py is
the source of truth; `make notebooks` regenerates the .ipynb). The percent format is parsed here
directly so that jupytext is not a test dependency.
"""
import glob
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB_DIR = os.path.join(ROOT, "notebooks")
SCRIPTS = sorted(glob.glob(os.path.join(NB_DIR, "[0-9][0-9]_*.py")))
NOTEBOOKS = sorted(glob.glob(os.path.join(NB_DIR, "[0-9][0-9]_*.ipynb")))
TIMEOUT = 300  # seconds per notebook; QUICK runs take well under a minute


def _name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def percent_cells(text: str) -> list[tuple[str, str]]:
    """(kind, source) of each cell of a jupytext percent script; kind is "code" or "markdown".

    A line starting with `# %%` opens a cell (`# %% [markdown]` a markdown one); text before the
    first marker, if any, is a code cell. Sources are stripped of surrounding blank lines.
    """
    cells: list[tuple[str, str]] = []
    kind, lines = None, []          # kind None: before the first marker

    def close():
        src = "\n".join(lines).strip()
        if kind is not None or src:
            cells.append((kind or "code", src))

    for line in text.splitlines():
        if line.startswith("# %%"):
            close()
            kind = "markdown" if "[markdown]" in line or "[md]" in line else "code"
            lines = []
        else:
            lines.append(line)
    close()
    return cells


def test_percent_parser_on_a_small_script():
    text = "# %% [markdown]\n# # Title\n\n# %%\nx = 1\n\n\n# %%\ny = 2\nz = 3\n"
    assert percent_cells(text) == [("markdown", "# # Title"), ("code", "x = 1"), ("code", "y = 2\nz = 3")]


def test_there_are_notebooks():
    assert SCRIPTS, "no notebooks/NN_topic.py found"


@pytest.mark.parametrize("script", SCRIPTS, ids=[_name(p) for p in SCRIPTS])
def test_notebook_runs_in_quick_mode(script, tmp_path):
    env = {**os.environ, "TINYBIN_QUICK": "1", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    t0 = time.time()
    proc = subprocess.run([sys.executable, script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    secs = time.time() - t0
    assert proc.returncode == 0, (f"{_name(script)} failed after {secs:.0f} s\n--- stdout (tail)\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-5000:]}")
    assert not os.listdir(tmp_path), f"{_name(script)} left files in its working directory: {os.listdir(tmp_path)}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[_name(p) for p in NOTEBOOKS])
def test_ipynb_matches_its_script(nb_path):
    script = nb_path[:-len(".ipynb")] + ".py"
    assert os.path.exists(script), f"{os.path.basename(nb_path)} has no source script {os.path.basename(script)}"
    with open(script, encoding="utf-8") as fh:
        want = [src for kind, src in percent_cells(fh.read()) if kind == "code"]
    with open(nb_path, encoding="utf-8") as fh:
        nb = json.load(fh)
    got = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"]
            got.append(("".join(src) if isinstance(src, list) else src).strip())
    assert len(got) == len(want), (f"{os.path.basename(nb_path)} has {len(got)} code cells, its .py has "
                                   f"{len(want)}: rebuild with `make notebooks`")
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, (f"{os.path.basename(nb_path)}: code cell {i} differs from the .py; rebuild with "
                        f"`make notebooks`\n--- .py\n{w[:500]}\n--- .ipynb\n{g[:500]}")
