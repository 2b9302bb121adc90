"""Training one (experiment, row, seed) and writing its result file; running many of them in
worker processes or on a Dask cluster, resumably (finished runs are skipped, runs in progress
resume from their checkpoints in `results/.partial/`)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Callable

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None

import numpy as np

from .definitions import (BUDGET, DATA, EXPERIMENTS, RECIPE, RESULTS, Experiment, Row, copy_of, get,
                          make_data, merge_layers, source)

# ---- one run -----------------------------------------------------------------------------------

def result_path(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    return os.path.join(root, exp, f"{row}__seed{seed}.json")


def load_recipe(path: str) -> dict:
    """Read a recipe file: {"steps": .., "binary": {...}, "real": {...}}; top-level keys other than
    binary / real apply to both. Returns {"all": {...}, "binary": {...}, "real": {...}}."""
    from ..train import TrainConfig
    with open(path) as fh:
        raw = json.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe is a JSON object")
    out = {"all": {k: v for k, v in raw.items() if k not in ("binary", "real")},
           "binary": dict(raw.get("binary", {})), "real": dict(raw.get("real", {}))}
    known = set(TrainConfig.__dataclass_fields__) | {"warmup_fraction", "progressive_fraction",
                                                      "reverse_init_fraction"}
    for part in out.values():
        unknown = set(part) - known
        if unknown:
            raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
    return out


def train_settings(exp: Experiment, row: Row, overrides: dict | None = None, recipe: dict | None = None) -> dict:
    """The merged training settings of one row (precedence in the module docstring)."""
    binary = bool(row.net.get("binary", True))
    rec = RECIPE if recipe is None else recipe
    layers = [dict(BUDGET)]
    exp_layer = {}
    if exp.steps:
        exp_layer["steps"] = exp.steps
    if exp.eval_every:
        exp_layer["eval_every"] = exp.eval_every
    layers += [exp_layer, dict(rec.get("all", {})), dict(rec.get("binary" if binary else "real", {})),
               dict(row.train), dict(overrides or {})]
    kw = merge_layers(layers)
    if "stage_fraction" in kw:  # sequential stacks: `steps` is the row's total budget
        total = kw["steps"]
        kw["steps"] = max(1, int(round(kw.pop("stage_fraction") * total)))
        kw["finetune_steps"] = int(round(kw.pop("finetune_fraction", 0.0) * total))
    if "warmup_fraction" in kw:
        kw["warmup_steps"] = int(round(kw.pop("warmup_fraction") * kw["steps"]))
    for key in ("progressive", "reverse_init"):  # beyond the paper: stages as fractions of the budget
        if f"{key}_fraction" in kw:
            kw[f"{key}_steps"] = max(1, int(round(kw.pop(f"{key}_fraction") * kw["steps"])))
    return kw


def _json_rows(a: np.ndarray) -> list:
    """Nested lists with None for NaN (valid JSON)."""
    return [[None if not math.isfinite(v) else v for v in map(float, r)] for r in np.asarray(a)]


PROBE_SEED = 20171  # the augmented test images of `generalisation_probe` (any fixed value)


class AugmentedView:
    """A fixed augmented copy of a dataset: `batch(indices)` returns its samples under the training
    augmentation (rotation, scale, flip, colour; `tinybin.data.augment.AUGMENT`), drawn for each
    call from a generator seeded by `seed`: the same list of indices always gives the same images
    (`train.evaluate` asks for its first n samples in one call)."""

    def __init__(self, data, seed: int = 0):
        self.data, self.seed = data, int(seed)
        self.kind = getattr(data, "kind", "pose")
        self.flip_perm = getattr(data, "flip_perm", None)

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, indices, augment: bool = False, rng=None) -> dict:
        return self.data.batch(indices, augment=True, rng=np.random.default_rng([PROBE_SEED, self.seed]))


def generalisation_probe(net, train, test, n: int, flip: bool = True, seed: int = 0) -> dict:
    """PCKh (at 0.5 and matched) of a trained pose network on the first `n` training images as
    stored (no augmentation) and on the first `n` test images under the training augmentation
    (`AugmentedView`). Against the test score of the same network (`metrics` of the result),
    train - test is its generalisation gap, and augmented test - test is what the augmentation
    asks of it that the plain test images do not."""
    from ..train import evaluate
    out = {}
    for name, data in (("train", train), ("test_augmented", AugmentedView(test, seed))):
        r = evaluate(net, data, n, kind="pose", flip=flip)
        out[name] = {k: r[k] for k in ("pckh", "pckh_matched", "matched_threshold")}
    return out


def run_one(exp: Experiment, row: Row, seed: int, root: str | None = None, quick: bool = False,
            progress: bool = True, overrides: dict | None = None, recipe: dict | None = None,
            write: bool | None = None, work_root: str | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict:
    """Train and evaluate one (row, seed); return its result dict, and write it under `root`.

    work_root: where the checkpoints of the run in progress go (`partial_dir`); default `root`
    when writing, else none.

    should_stop: called between training steps; True stops the run as Ctrl-C does (checkpoint,
    then `tinybin.train.TrainingInterrupted`).

    write: default True for full runs (root defaults to results/) and, for quick runs, only when a
    `root` is given. Experiments with split "val" build only the train and val splits.
    """
    from .. import count_parameters
    from ..models import HourGlass
    from ..train import TrainConfig, Trainer, evaluate

    if write is None:
        write = (not quick) or root is not None
    root = RESULTS if root is None else root
    train_kw = train_settings(exp, row, overrides, recipe)
    teacher = train_kw.get("distill_teacher")
    if isinstance(teacher, str) and teacher.startswith("@"):  # "@row": that row's network, same seed
        train_kw["distill_teacher"] = ensure_teacher(exp, teacher[1:], seed, root, quick, progress, overrides,
                                                     recipe, write, work_root, should_stop)
    data_kw = dict(row.data_opts)
    if quick:  # a smoke-sized run so every code path executes in CI
        train_kw.update(steps=4, batch_size=4, eval_samples=16, finetune_steps=min(train_kw.get("finetune_steps", 0), 2),
                        warmup_steps=min(train_kw.get("warmup_steps", 0), 2))
        for k in ("progressive_steps", "reverse_init_steps"):  # beyond-the-paper stages: one step each
            if train_kw.get(k):
                train_kw[k] = 1
        data_kw = dict(n_train=32, n_test=16, resolution=32)
        train_kw.update(overrides or {})  # explicit flags still win (benchmarks set --steps)
        if train_kw.get("eval_every") and "eval_every" not in (overrides or {}):
            train_kw["eval_every"] = max(1, train_kw["steps"] // 2)
    val_mode = exp.split == "val"
    if not val_mode:
        train_kw["eval_every"] = 0  # no periodic look at the test split
    # A killed run resumes from its last checkpoint under `work_root` (bit-exact, see tinybin.train).
    # ckpt_every is set whether or not this run checkpoints, so its stored config does not depend
    # on where it ran.
    train_kw.setdefault("ckpt_every", CKPT_EVERY)
    if work_root is None and write:
        work_root = root
    work = partial_dir(exp.name, row.name, seed, work_root) if work_root else None
    with _run_lock(work) as waited:
        done = result_path(exp.name, row.name, seed, root)
        if waited and write and os.path.exists(done):  # another process trained it meanwhile
            with open(done) as fh:
                return json.load(fh)
        eval_n = train_kw.pop("eval_samples")
        cfg = TrainConfig(seed=seed, eval_samples=eval_n, flip_test=row.data != "segmentation", **train_kw)
        net_kw = dict(row.net)
        if quick:
            net_kw.update(width=_quick_width(net_kw), depth=2, resolution=32)
        net = HourGlass.downscaled(seed=seed, **net_kw)
        paper_net = dict(row.net)
        paper_net.pop("width", None)
        for k in ("resolution", "depth"):  # the paper-scale twin has the paper's R and D
            paper_net.pop(k, None)
        try:
            paper_params = count_parameters(HourGlass.paper(width=row.paper_width, seed=None, **paper_net))
        except TypeError:
            paper_params = None
        splits = ("train", "val") if val_mode else ("train", "test")
        train, evalset = make_data(row.data, seed=seed, splits=splits, **data_kw)
        t0 = time.time()
        trainer = Trainer(net, train, cfg, val=evalset if val_mode else None, progress=progress, out_dir=work,
                          should_stop=should_stop)
        history = trainer.fit(resume=work is not None)
        train_time = time.time() - t0
        if is_teacher(exp, row):
            from ..serialization import save as save_ckpt
            save_ckpt(net, teacher_path(exp.name, row.name, seed, _teacher_root(root, write, work_root)))
        res = evaluate(net, evalset, eval_n, flip=cfg.flip_test, return_distances=True)
        metrics = {k: v for k, v in res.items() if k not in ("errors", "distances")}
        per_stack = None
        if net.config["stacks"] > 1 and row.data == "pose":  # every stack's output (Table 11)
            per_stack = []
            for k in range(1, net.config["stacks"] + 1):
                r_k = evaluate(_FirstStacks(net, k), evalset, eval_n, flip=cfg.flip_test)
                per_stack.append({"stack": k, **{m: r_k[m] for m in ("pckh", "pckh_matched", "matched_threshold")}})
        out = {
            "experiment": exp.name, "row": row.name, "label": row.label, "seed": seed, "quick": quick,
            "split": exp.split, "metrics": metrics,
            "params": count_parameters(net), "paper_scale_params": paper_params,
            "paper": row.paper, "paper_params": row.paper_params,
            "train_time_s": round(max(train_time, trainer.train_time), 1), "code": code_version(),
            "machine": machine_info(),
            "step_time_s": round(trainer.train_time / max(cfg.total_steps(net.config["stacks"]), 1), 4),
            "forward_ms": forward_ms(net, evalset.batch(np.arange(min(16, len(evalset))))["image"]),
            "net_config": net.config, "train_config": asdict(cfg),
            "data": {"kind": row.data, **DATA, **data_kw, "splits": list(splits)},
            "loss_first": float(np.mean(history["loss"][:20])), "loss_last": float(np.mean(history["loss"][-20:])),
            "loss_curve": [round(float(v), 5) for v in history["loss"][:: max(1, len(history["loss"]) // 100)]],
        }
        if per_stack is not None:
            out["metrics_per_stack"] = per_stack
        if row.data == "pose":  # Fig. 13's numbers and maps for every trained pose network
            from ..analysis import feature_maps
            maps = feature_maps(net, evalset.batch(np.arange(min(16, len(evalset))))["image"])
            out["feature_noise"], out["feature_example"] = feature_noise(maps), feature_example(maps)
        if row.data == "pose" and not val_mode:  # overfitting and what augmentation teaches
            out["generalisation"] = generalisation_probe(net, train, evalset, eval_n, cfg.flip_test, seed)
        if "distances" in res:
            out["distances"] = _json_rows(res["distances"])
        elif row.data == "face":
            out["nme_per_image"] = [round(float(v), 6) for v in res["errors"]]
        if val_mode:
            ev = history.get("eval_metrics", [])
            out["val_curve"] = {"step": list(history["eval_step"]),
                                **{k: [e.get(k) for e in ev] for k in (ev[0] if ev else {})}}
        if write:
            write_result(done, out)
        if work:
            shutil.rmtree(work, ignore_errors=True)
        return out


CKPT_EVERY = 500  # steps between the checkpoints of a run in progress


def feature_noise(maps: dict[str, np.ndarray]) -> dict:
    """{"first" | "middle" | "last": {"autocorr", "high_freq", "constant"}}: how smooth the feature
    maps of Fig. 13's three layers are (`maps` = `analysis.feature_maps(net, images)`), by
    `analysis.noise_summary`, averaged over channels and images; rounded to 5 digits."""
    from ..analysis import noise_summary
    return {layer: {k: round(v, 5) if math.isfinite(v) else None for k, v in noise_summary(m).items()}
            for layer, m in maps.items()}


def feature_example(maps: dict[str, np.ndarray]) -> dict:
    """{layer: {"channel": c, "map": h x w nested list}}: per layer of `analysis.feature_maps`, the
    first image's channel with the largest spatial standard deviation (3 decimals), so a notebook
    can draw Fig. 13 from the trained network without its weights."""
    out = {}
    for layer, m in maps.items():
        img = m[0]
        c = int(np.argmax(img.reshape(-1, img.shape[-1]).std(0)))
        out[layer] = {"channel": c, "map": np.round(img[..., c].astype(np.float64), 3).tolist()}
    return out


# ---- distillation teachers (beyond the paper) -------------------------------------------------
# A row whose training settings say distill_teacher="@name" learns from the network of row `name`
# of the same experiment and seed. That row's run keeps its trained weights (a tinybin checkpoint)
# at `<root>/.teachers/<exp>/<name>__seed<k>.npz` (like .partial/, not committed); a distilling run
# whose teacher file is missing trains the teacher row first (writing its result too). The teacher
# run is the same deterministic run either way; with --jobs > 1 two workers may both train it
# (identical weights, atomic writes). Quick runs that write nothing keep teachers in a temp folder.

_QUICK_TEACHERS: list[str] = []


def teacher_path(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    return os.path.join(root, ".teachers", exp, f"{row}__seed{seed}.npz")


def is_teacher(exp: Experiment, row: Row) -> bool:
    """Whether some row distills from `row` (its run then keeps its weights): a row of `exp` names
    it, or a row of any experiment names a `same_as` row whose source it is."""
    for e in EXPERIMENTS.values():
        for r in e.rows:
            t = r.train.get("distill_teacher")
            if isinstance(t, str) and t.startswith("@"):
                src_exp, src = source(e, e.row(t[1:]))
                if (src_exp.name, src.name) == (exp.name, row.name):
                    return True
    return False


def _teacher_root(root: str, write: bool, work_root: str | None) -> str:
    if work_root:
        return work_root
    if write:
        return root
    if not _QUICK_TEACHERS:
        import tempfile
        _QUICK_TEACHERS.append(tempfile.mkdtemp(prefix="tinybin-teachers-"))
    return _QUICK_TEACHERS[0]


def ensure_teacher(exp: Experiment, name: str, seed: int, root: str | None, quick: bool, progress: bool,
                   overrides, recipe, write, work_root, should_stop=None) -> str:
    """The checkpoint path of row `name`'s trained network for `seed`; trains the row when missing
    (its `same_as` source, when it has one: the teacher is that run)."""
    exp, row = source(exp, exp.row(name))
    name = row.name
    w = ((not quick) or root is not None) if write is None else write
    r = RESULTS if root is None else root
    wr = work_root if work_root is not None else (r if w else None)
    path = teacher_path(exp.name, name, seed, _teacher_root(r, w, wr))
    if not os.path.exists(path):
        run_one(exp, row, seed, root=root, quick=quick, progress=progress, overrides=overrides, recipe=recipe,
                write=write, work_root=work_root, should_stop=should_stop)
    return path


@contextlib.contextmanager
def _run_lock(work: str | None):
    """Hold an exclusive lock on `<work>/.lock` while this process trains the run that checkpoints
    into `work`, so that no two processes train one run at once (two runners started on one
    results folder; a worker that needs, as its distillation teacher, the run another worker is
    training). The second one waits, then finds the result (or resumes the checkpoint). Yields
    whether it had to wait. Without `work`, or without `fcntl` (Windows): no lock."""
    if work is None or fcntl is None:
        yield False
        return
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, ".lock"), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            fcntl.flock(fh, fcntl.LOCK_EX)
            waited = True
        yield waited  # closing the file releases the lock


def _locked(work: str) -> bool:
    """Whether a process holds `_run_lock(work)` now, i.e. is training that run."""
    path = os.path.join(work, ".lock")
    if fcntl is None or not os.path.exists(path):
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def partial_dir(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    """Checkpoints of a run in progress: `<root>/.partial/<exp>/<row>__seed<k>/` (not committed;
    removed once the result file is written). An interrupted `run` resumes from here."""
    return os.path.join(root, ".partial", exp, f"{row}__seed{seed}")


def code_version() -> dict:
    """Which code made a result: the tinybin version and, in a git checkout, the commit and whether
    the tree had uncommitted changes (None outside a checkout)."""
    from .. import __version__
    out: dict = {"tinybin": __version__, "commit": None, "dirty": None}
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the tinybin package
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode == 0:
            out["commit"] = rev.stdout.strip()
            st = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no", "--", "."],
                                capture_output=True, text=True, timeout=10)
            out["dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def machine_info() -> dict:
    """Which CPU trained a result: a run's minutes depend on it, and the project's machine changes.

    `cpu` is a grouping key, "<vendor> family <f> model <m>" from /proc/cpuinfo (a virtual machine
    often reports a generic model name, so the numbers are what tells two CPUs apart), or the
    platform's processor string elsewhere; `name` is the model name; `cores` the logical CPUs.
    """
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break                              # the first processor is enough
                key, _, val = line.partition(":")
                info[key.strip()] = val.strip()
    except OSError:
        pass
    if "vendor_id" in info:
        cpu = f"{info['vendor_id']} family {info.get('cpu family', '?')} model {info.get('model', '?')}"
    else:
        cpu = platform.processor() or platform.machine() or None
    return {"cpu": cpu, "name": info.get("model name"), "cores": os.cpu_count()}


def _quick_width(net_kw: dict) -> int:
    """The smallest of 16, 32, 64, ... at which the row's network builds at R = 32, D = 2 (quick
    runs; 16 suits every block at its defaults, deep or high-cardinality hpm blocks need more)."""
    from ..models import HourGlass
    kw = {k: v for k, v in net_kw.items() if k not in ("width", "depth", "resolution")}
    for w in (16, 32, 64, 128, 256):
        try:
            HourGlass.downscaled(seed=None, **{**kw, "width": w, "depth": 2, "resolution": 32})
            return w
        except ValueError:
            continue
    raise ValueError(f"quick run: no width up to 256 builds {net_kw}")


def forward_ms(net, images: np.ndarray, repeats: int = 7) -> float:
    """Median wall time (ms) of one eval-mode forward pass of `net` on `images` (N, R, R, 3), after
    one warm-up pass; the network's mode is restored. Absolute times depend on the machine and its
    load: compare rows by ratios of medians, ideally measured in one process (`forward_times`)."""
    from ..tensor import Tensor, no_grad
    x = Tensor(np.ascontiguousarray(images, dtype=np.float32))
    was = net.training
    net.eval()
    try:
        with no_grad():
            net(x)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                net(x)
                ts.append(time.perf_counter() - t0)
    finally:
        net.train(was)
    return round(float(np.median(ts)) * 1e3, 3)


def forward_times(nets: dict, images: np.ndarray, rounds: int = 7,
                  per_round: bool = False) -> dict[str, float] | dict[str, list[float]]:
    """Forward time (ms) of each network in `nets` {name: net}, measured in interleaved rounds (one
    forward of each per round, so that machine load affects all of them alike), the order reversed
    every other round so that no network always runs first.

    Returns the median over rounds per network, or with `per_round=True` every round's time
    {name: [ms, ...]}: on a shared machine the ratio of two networks' times within one round, paired
    over rounds, is steadier than the ratio of medians.
    """
    if rounds < 1:
        raise ValueError(f"forward_times: rounds must be >= 1, got {rounds}")
    ts = {k: [] for k in nets}
    for k, n in nets.items():
        forward_ms(n, images, repeats=1)  # warm-up (Numba compilation, caches)
    names = list(nets)
    for i in range(rounds):
        for k in (names if i % 2 == 0 else names[::-1]):
            ts[k].append(forward_ms(nets[k], images, repeats=1))
    if per_round:
        return ts
    return {k: float(np.median(v)) for k, v in ts.items()}


class _FirstStacks:
    """`net` seen through its first k stacks only: forward returns stack k's logits, so that
    `evaluate` scores an intermediate stack (Table 11's per-stack accuracy)."""

    def __init__(self, net, k: int):
        self.net, self.k = net, k

    @property
    def training(self) -> bool:
        return self.net.training

    def train(self, mode: bool = True):
        self.net.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.net(x, num_stacks=self.k)[-1]


_LEAF_LIST = re.compile(r"\[[\s\d.,eE+\-nulNaIfity]*\]")


# Fields of a result that differ between two runs of the same job (wall-clock measurements, and the
# machine that made them: a Dask cluster's workers may be different computers).
TIMING_FIELDS = ("train_time_s", "step_time_s", "forward_ms", "machine")


def result_files(root: str) -> dict[str, dict]:
    """{path relative to `root`: result dict without `TIMING_FIELDS`} for every result file under
    `root` (runs in progress, under hidden folders such as `.partial/`, are skipped): what must be
    identical whichever way the jobs ran (one process, worker processes, a Dask cluster)."""
    out = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for n in sorted(names):
            if n.endswith(".json") and "__seed" in n:
                path = os.path.join(dirpath, n)
                with open(path) as fh:
                    r = json.load(fh)
                out[os.path.relpath(path, root)] = {k: v for k, v in r.items() if k not in TIMING_FIELDS}
    return out


def write_result(path: str, obj: dict) -> None:
    """Atomic JSON write with lists of numbers on one line each (distances stay compact)."""
    from ..serialization import _atomic_write
    text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=True)
    text = _LEAF_LIST.sub(lambda m: "[" + ",".join(p.strip() for p in m.group(0)[1:-1].split(",")) + "]"
                          if m.group(0)[1:-1].strip() else "[]", text)
    _atomic_write(path, ".json", "w", lambda fh: fh.write(text + "\n"))


# ---- many runs: local processes or a Dask cluster ------------------------------------------------

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "TINYBIN_BLAS_THREADS")


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread-count variables to 1 while worker processes are spawned (they read them
    before importing NumPy / Numba), then restore this process's environment."""
    old = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: "1" for k in _THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_WORKER: dict = {}  # in a local pool's worker process: {"parent": runner pid, "busy": running a job}


def _worker_init(parent: int) -> None:
    """First thing in each local worker process: remember the runner, and exit if it goes away
    while this worker waits for a job (a job in progress notices by itself and stops, see `_job`;
    without this an orphaned worker would wait for its next job forever)."""
    _WORKER.update(parent=parent, busy=False)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent and not _WORKER["busy"]:
                os._exit(1)
    threading.Thread(target=watch, name="tinybin-worker-watch", daemon=True).start()


def _job(exp_name: str, row_name: str, seed: int, quick: bool, overrides: dict | None,
         recipe: dict | None, work_root: str | None = None) -> dict:
    """One (row, seed) in a worker process or on a Dask worker: single-threaded, returns the dict.

    Local workers get the client's results folder as `work_root`: they checkpoint there, so a
    killed run resumes; write the result file themselves, so a finished run is kept even if the
    client has gone; and take the result file another process wrote since the client listed its
    jobs instead of training again. Dask workers, which may not see that folder, do none of this.

    A local worker stops its run after the step in progress, with a checkpoint, on SIGINT or
    SIGTERM or when the runner has gone (`Trainer.fit`'s `should_stop`); then the worker process
    exits, so it starts no further job."""
    from ..threads import set_num_threads
    if work_root is not None:  # finished by another process since the runner listed its jobs
        done = result_path(exp_name, row_name, seed, work_root)
        if os.path.exists(done):
            with open(done) as fh:
                return json.load(fh)
    set_num_threads(1)
    exp = get(exp_name)
    parent = _WORKER.get("parent")
    orphaned = (lambda: os.getppid() != parent) if parent is not None else None
    _WORKER["busy"] = True
    try:
        return run_one(exp, exp.row(row_name), seed, root=work_root, quick=quick, progress=False,
                       overrides=overrides, recipe=recipe, write=work_root is not None, work_root=work_root,
                       should_stop=orphaned)
    except KeyboardInterrupt:
        if parent is None:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    finally:
        _WORKER["busy"] = False


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run(name: str | list[str], seeds: int = 3, root: str | None = None, rows: list[str] | None = None,
        quick: bool = False, progress: bool = True, first_seed: int = 0, jobs: int = 1, scheduler=None,
        overrides: dict | None = None, recipe: dict | None = None) -> list[dict]:
    """Train every (row, seed) of experiment `name` whose result file does not exist yet.

    name: an experiment, or a list of them whose jobs share one pool (no core idles between
    tables); "exp:row1,row2" picks rows of one experiment. rows: only rows of these names (each
    must exist in one of the experiments). A row with `same_as` is not trained itself: its source
    row is (once, whichever experiment asks), and the result is copied into this experiment's
    folder with `same_as` recorded.

    jobs == 1 and no scheduler: one after the other in this process. jobs > 1: that many spawned
    worker processes, each single-threaded. scheduler: the address of a Dask scheduler (or a
    `dask.distributed.Client`); the jobs run on its workers. In every case this process writes
    the returned result files, which are identical up to the timing fields. Quick runs write only
    when `root` is given. Returns the results of all (row, seed), per experiment in (seed, row) order.
    """
    write = (not quick) or root is not None
    root = RESULTS if root is None else root
    wanted = _selection([name] if isinstance(name, str) else list(name), rows, first_seed, seeds)
    todo, found = _pending(wanted, root, write)

    def copies(key, result):  # the same_as rows of this run whose source `key` just finished
        found[key] = result
        for exp, row, seed in wanted:
            path = result_path(exp.name, row.name, seed, root)
            if row.same_as and write and _key(*source(exp, row), seed) == key and not os.path.exists(path):
                write_result(path, copy_of(exp, row, result))

    try:
        if scheduler is not None:
            _run_dask(todo, scheduler, root, write, quick, progress, overrides, recipe, copies)
        elif jobs > 1 and len(todo) > 1:
            _run_pool(todo, jobs, root, write, quick, progress, overrides, recipe, copies)
        else:
            for e, r, seed in todo:
                print(f"[{e}] {r} seed {seed}", flush=True)
                exp = get(e)
                copies((e, r, seed), run_one(exp, exp.row(r), seed, root if write else None, quick=quick,
                                             progress=progress, overrides=overrides, recipe=recipe, write=write))
    finally:  # copy what the same_as rows need, also after a failure or an interruption
        out = []
        for exp, row, seed in wanted:
            key = _key(*source(exp, row), seed)
            if key not in found and write and os.path.exists(result_path(*key, root)):
                with open(result_path(*key, root)) as fh:
                    found[key] = json.load(fh)
            result = found.get(key)
            if result is None:
                continue
            if row.same_as:
                result = copy_of(exp, row, result)
                path = result_path(exp.name, row.name, seed, root)
                if write and not os.path.exists(path):
                    write_result(path, result)
            out.append(result)
    return out


def _key(exp: Experiment, row: Row, seed: int) -> tuple[str, str, int]:
    return exp.name, row.name, seed


def _pending(wanted, root: str, write: bool):
    """(todo, found): the (experiment, row, seed) keys `run` trains, in its order, and the results
    already on disk by key. A same_as row's key is its source's."""
    todo, found = [], {}
    for exp, row, seed in wanted:
        key = _key(*source(exp, row), seed)
        path = result_path(*key, root)
        if write and os.path.exists(path):
            with open(path) as fh:
                found[key] = json.load(fh)
        elif key not in found and key not in todo:
            todo.append(key)
    # Seed by seed across all the experiments (a stopped session leaves complete seeds, every row
    # paired, rather than complete rows), distillation teachers first within a seed.
    todo.sort(key=lambda k: (k[2], not is_teacher(get(k[0]), get(k[0]).row(k[1]))))
    return todo, found


def plan(name: str | list[str], seeds: int = 3, root: str | None = None, rows: list[str] | None = None,
         first_seed: int = 0, overrides: dict | None = None, recipe: dict | None = None) -> list[dict]:
    """What `run` with these arguments would train, in its order, without training anything
    (full runs; `overrides` and `recipe` as for `run`).

    Per run: experiment, row, seed, its budget in steps (`total`), the steps a checkpoint of it
    under `.partial/` already holds (`done`), and `est_s`, the seconds still needed: the steps left
    times the median `step_time_s` of the finished runs of the same row (`basis` "row"), else of
    finished runs of any experiment with the same network config (`basis` "network": the training
    settings may differ, e.g. distillation adds a teacher's forward pass), else None. Step times are
    as measured, i.e. with whatever else ran on the machine then. `training`: another process is
    training the run now (it holds the run's lock).
    """
    from ..models import HourGlass
    from ..train import TrainConfig
    from .reports import load_results
    root = RESULTS if root is None else root
    wanted = _selection([name] if isinstance(name, str) else list(name), rows, first_seed, seeds)
    todo, _ = _pending(wanted, root, True)
    by_net: dict[str, list[float]] | None = None
    out = []
    for e, r, seed in todo:
        exp = get(e)
        row = exp.row(r)
        kw = train_settings(exp, row, overrides, recipe)
        kw.pop("eval_samples", None)
        total = TrainConfig(**kw).total_steps(int(row.net.get("stacks", 1)))
        done = 0
        hist = os.path.join(partial_dir(e, r, seed, root), "history.json")
        if os.path.exists(hist):
            with open(hist) as fh:
                done = len(json.load(fh).get("loss", []))
        times = [x["step_time_s"] for x in load_results(e, root)[r] if x.get("step_time_s")]
        basis = "row" if times else None
        if not times:
            if by_net is None:  # every finished run's step time by network config (and data)
                by_net = {}
                for other in EXPERIMENTS:
                    for res in load_results(other, root).values():
                        for x in res:
                            if x.get("step_time_s") and not x.get("same_as"):
                                k = json.dumps([x["net_config"], x.get("data", {}).get("kind")], sort_keys=True)
                                by_net.setdefault(k, []).append(x["step_time_s"])
            cfg = HourGlass.downscaled(seed=None, **row.net).config
            times = by_net.get(json.dumps([cfg, row.data], sort_keys=True), [])
            basis = "network" if times else None
        est = float(np.median(times)) * (total - done) if times else None
        out.append(dict(experiment=e, row=r, seed=seed, total=total, done=done, est_s=est, basis=basis,
                        training=_locked(partial_dir(e, r, seed, root))))
    return out


def _selection(names: list[str], rows: list[str] | None, first_seed: int, seeds: int):
    """[(experiment, row, seed)] in (experiment, seed, row) order for `run`."""
    picked = []
    for item in names:
        exp_name, _, only = item.partition(":")
        exp = get(exp_name)
        only_rows = [r for r in only.split(",") if r] or None
        for r in only_rows or []:
            exp.row(r)
        picked.append((exp, only_rows))
    if rows:
        for r in rows:
            if not any(r in {x.name for x in exp.rows} for exp, _ in picked):
                raise ValueError(f"unknown row {r!r} in {names}")
    out = []
    for exp, only_rows in picked:
        for seed in range(first_seed, first_seed + seeds):
            for row in exp.rows:
                if (only_rows and row.name not in only_rows) or (rows and row.name not in rows):
                    continue
                out.append((exp, row, seed))
    return out


def _bar(total: int, desc: str, progress: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    kw = {} if progress else {"disable": True}  # else TQDM_DISABLE=1 still silences it
    return tqdm(total=total, desc=desc, unit="job", dynamic_ncols=True, **kw)


def _collect(pending, get_result, root, write, progress, what, on_result=None):
    """Write each finished job's result (then `on_result(key, result)`); report failures after the
    others have finished."""
    done, failed = {}, []
    names = ", ".join(dict.fromkeys(k[0] for k in pending))
    bar = _bar(len(pending), f"{names} ({what})", progress)
    try:
        for key, result in get_result():
            exp_name, row_name, seed = key
            if isinstance(result, BaseException):
                failed.append((key, result))
                print(f"[{exp_name}] {row_name} seed {seed} failed: {type(result).__name__}: {result}",
                      file=sys.stderr, flush=True)
            else:
                if write:
                    write_result(result_path(exp_name, row_name, seed, root), result)
                done[key] = result
                if on_result is not None:
                    on_result(key, result)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(pending)} jobs failed, first: {failed[0][0]}: "
                           f"{type(failed[0][1]).__name__}: {failed[0][1]}") from failed[0][1]
    return done


def _run_pool(todo, jobs, root, write, quick, progress, overrides, recipe, on_result=None):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = mp.get_context("spawn")
    with _single_thread_env(), ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                                                   initializer=_worker_init, initargs=(os.getpid(),)) as ex:
        futs = {ex.submit(_job, e, r, s, quick, overrides, recipe, root if write else None): (e, r, s)
                for e, r, s in todo}

        def results():
            for f in as_completed(futs):
                e = f.exception()
                yield futs[f], (e if e is not None else f.result())
        try:  # the workers write their own result files (`_job`)
            return _collect(todo, results, root, False, progress, f"{min(jobs, len(todo))} processes", on_result)
        except KeyboardInterrupt:
            # Ctrl-C, or SIGTERM to this process: drop the queued jobs and ask each worker to stop its
            # run after the step in progress (checkpoint under .partial/), then wait for them. From a
            # terminal the workers got SIGINT too; SIGTERM on top does no harm. The queued jobs are
            # dropped by shutdown(cancel_futures=True) *before* the workers exit: cancelling the
            # futures one by one left them in the pool's books, and Python 3.11's pool then failed to
            # mark them broken when the workers exited (an InvalidStateError traceback).
            pids = list(getattr(ex, "_processes", None) or {})         # the pool's worker pids
            manager = getattr(ex, "_executor_manager_thread", None)     # shutdown() forgets both
            ex.shutdown(wait=False, cancel_futures=True)
            for p in pids:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGTERM)
            if manager is not None:
                manager.join()
            raise


def _run_dask(todo, scheduler, root, write, quick, progress, overrides, recipe, on_result=None):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'tinybin[cluster]'") from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futs = {client.submit(_job, e, r, s, quick, overrides, recipe, pure=False,
                              key=f"tinybin-{e}-{r}-{s}-{time.time_ns()}"): (e, r, s) for e, r, s in todo}

        def results():
            for f in as_completed(list(futs)):
                e = f.exception()
                yield futs[f], (e if e is not None else f.result())
        return _collect(todo, results, root, write, progress, "dask", on_result)
    finally:
        if own:
            client.close()


