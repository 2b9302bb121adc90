#!/usr/bin/env python
"""Build the executed notebooks: notebooks/NN_topic.py (jupytext percent format) -> NN_topic.ipynb.

The `.py` scripts are the source of truth; the `.ipynb` files are generated from them, executed
(so their plots render on the code host), and committed. `make notebooks` runs this script after
installing the `notebooks` extra (jupytext, nbclient, nbformat, ipykernel).

    python scripts/build_notebooks.py                 # every notebook, full size
    python scripts/build_notebooks.py --quick         # TINYBIN_QUICK=1: tiny sizes (minutes -> seconds)
    python scripts/build_notebooks.py 01 03_block_ablation   # a subset, by number or name

Each notebook runs in a fresh `python3` kernel of this interpreter with cwd = notebooks/ and
MPLBACKEND unset (so matplotlib's inline backend captures the figures). A notebook that fails
is not written; the script reports the failing cell and exits with status 1.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB_DIR = os.path.join(ROOT, "notebooks")


def sources() -> list[str]:
    """notebooks/[0-9][0-9]_*.py, sorted."""
    return sorted(glob.glob(os.path.join(NB_DIR, "[0-9][0-9]_*.py")))


def select(paths: list[str], names: list[str]) -> list[str]:
    """Keep the scripts whose stem equals a name or starts with it ("01" or "01_binarization...")."""
    if not names:
        return paths
    chosen = []
    for name in names:
        stem = os.path.splitext(os.path.basename(name))[0]
        hits = [p for p in paths if os.path.basename(p)[:-3] == stem or os.path.basename(p).startswith(stem + "_")]
        if not hits:
            avail = ", ".join(os.path.basename(p)[:-3] for p in paths)
            raise SystemExit(f"build_notebooks: no notebook matches {name!r}; available: {avail}")
        chosen += [p for p in hits if p not in chosen]
    return chosen


def ensure_kernel(name: str) -> None:
    """Make sure a Jupyter kernel spec `name` exists; install ipykernel's for this venv if not."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(name)
        return
    except NoSuchKernel:
        pass
    if name != "python3":
        raise SystemExit(f"build_notebooks: no Jupyter kernel named {name!r}")
    print("installing the python3 kernel spec into this environment (ipykernel)", flush=True)
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                   check=True)


def build(path: str, kernel: str, timeout: int) -> float:
    """Execute one percent script as a notebook and write NAME.ipynb next to it; return seconds."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(path, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)  # the pairing lives in this script, not in the notebook
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            resources={"metadata": {"path": NB_DIR}})
    t0 = time.time()
    try:
        client.execute()
    except CellExecutionError as e:
        raise RuntimeError(f"{os.path.basename(path)} failed:\n{e}") from None
    out = path[:-3] + ".ipynb"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ipynb", dir=NB_DIR)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, out)  # atomic: a half-written notebook never replaces a good one
    return time.time() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks to build (number or name); default: all")
    ap.add_argument("--quick", action="store_true", help="TINYBIN_QUICK=1: the tiny CI sizes")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    a = ap.parse_args(argv)
    try:
        import jupytext  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as e:
        print(f"build_notebooks: {e.name} is missing; install the extra: pip install -e '.[notebooks]'",
              file=sys.stderr)
        return 2
    paths = select(sources(), a.names)
    # The kernel inherits this environment: no MPLBACKEND (inline figures), QUICK as asked.
    os.environ.pop("MPLBACKEND", None)
    if a.quick:
        os.environ["TINYBIN_QUICK"] = "1"
    else:
        os.environ.pop("TINYBIN_QUICK", None)
    os.environ.setdefault("TQDM_DISABLE", "1")
    ensure_kernel(a.kernel)
    failed = 0
    for p in paths:
        name = os.path.basename(p)[:-3]
        print(f"{name}: running{' (quick)' if a.quick else ''} ...", flush=True)
        try:
            secs = build(p, a.kernel, a.timeout)
        except RuntimeError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: wrote notebooks/{name}.ipynb in {secs:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
