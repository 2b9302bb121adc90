"""An installed tinybin works from any directory and writes nothing inside its installation.

Builds a wheel from a copy of the sources, installs it (without its dependencies) into a fresh
virtual environment, makes the dependencies of the environment running the tests visible to it
(a ``.pth`` line naming the directories numpy, numba, scipy, Pillow, matplotlib and tqdm live in,
so nothing is downloaded again and the repository's own ``tinybin`` is never on the path), and runs
from an empty temporary directory: ``tinybin demo --quick``, a tiny ``tinybin train``,
``tinybin eval`` on its checkpoint and ``python -m tinybin.experiments run table1 --quick``.
Then it checks that the runs landed under the working directory and that nothing was written
inside site-packages except ``__pycache__`` contents (Python's bytecode and Numba's kernel cache,
which both live beside the modules by design).

Marked ``wheel``: ``make test`` runs it; deselect with ``-m "not wheel"`` while iterating.
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = ("numpy", "numba", "llvmlite", "scipy", "PIL", "matplotlib", "tqdm")

pytestmark = pytest.mark.wheel


def _run(cmd, cwd, env, timeout=900):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({r.returncode})\n--- stdout\n"
                               f"{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-5000:]}")
    return r.stdout


def _tree(path: str) -> dict[str, tuple[int, int]]:
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns)
    return out


def _dep_dirs() -> list[str]:
    import importlib
    dirs = []
    for name in DEPS:
        mod = importlib.import_module(name)
        d = os.path.dirname(os.path.dirname(os.path.abspath(mod.__file__)))
        if d not in dirs:
            dirs.append(d)
    assert os.path.abspath(ROOT) not in dirs
    return dirs


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, bin dir, site-packages) of a fresh venv holding only the built tinybin wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, f), src / f)
    shutil.copytree(os.path.join(ROOT, "tinybin"), src / "tinybin",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(src)],
         cwd=tmp, env=env)
    wheels = glob.glob(str(tmp / "dist" / "tinybin-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp,
                env=env).strip()
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps", "--no-index",
          wheels[0]], cwd=tmp, env=env)
    with open(os.path.join(site, "_tinybin_test_deps.pth"), "w") as fh:
        fh.write("\n".join(_dep_dirs()) + "\n")
    return str(py), str(bindir), site


def test_installed_wheel_trains_evaluates_and_runs_an_experiment_outside_the_repo(installed, tmp_path):
    py, bindir, site = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TQDM_DISABLE="1", MPLBACKEND="Agg", PATH=bindir + os.pathsep + env.get("PATH", ""))
    where = _run([py, "-c", "import tinybin, tinybin.data; print(tinybin.__file__)"], cwd=work, env=env).strip()
    assert where.startswith(site), f"imported {where}, not the installed wheel under {site}"
    before = _tree(site)

    tinybin = os.path.join(bindir, "tinybin")
    out = _run([tinybin, "demo", "--quick", "--no-progress"], cwd=work, env=env)
    assert "| binary hpm |" in out
    assert (work / "runs" / "demo" / "summary.md").exists()

    _run([tinybin, "train", "--width", "16", "--depth", "2", "--resolution", "32", "--steps", "3",
          "--batch-size", "2", "--n-train", "8", "--n-test", "4"], cwd=work, env=env)
    ckpt = work / "runs" / "train" / "checkpoint.npz"
    assert ckpt.exists()
    out = _run([tinybin, "eval", "--checkpoint", str(ckpt), "--n", "4"], cwd=work, env=env)
    assert '"pckh"' in out

    _run([py, "-m", "tinybin.experiments", "run", "table1", "--quick"], cwd=work, env=env)
    # quick runs write nothing; full runs write under the default results folder, which must be
    # the working directory's
    res = _run([py, "-c", "import os, tinybin.experiments as X; print(os.path.abspath(X.RESULTS))"],
               cwd=work, env=env).strip()
    assert res == str(work / "results")

    after = _tree(site)
    written = sorted(p for p in after if before.get(p) != after[p]
                     and "__pycache__" not in p.split(os.sep))
    assert not written, f"written inside site-packages: {written[:20]}"
