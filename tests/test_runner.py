"""Parallel experiment runner (worker processes, Dask), warm-up schedule and flip-tested evaluation."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinybin import experiments as X



@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    X.run("table1", seeds=2, root=str(root), quick=True, progress=False, jobs=1)
    return X.result_files(root)


def test_worker_processes_write_the_same_files_as_one_process(serial_results, tmp_path):
    out = X.run("table1", seeds=2, root=str(tmp_path), quick=True, progress=False, jobs=2)
    assert [(r["row"], r["seed"]) for r in out] == [("bottleneck_real", 0), ("bottleneck_binary", 0),
                                                    ("bottleneck_real", 1), ("bottleneck_binary", 1)]
    got = X.result_files(tmp_path)
    assert len(got) == 6 and got == serial_results  # table1 and, for its same_as row, table2
    # resumable: a finished file is read back, not recomputed
    os.remove(X.result_path("table1", "bottleneck_binary", 1, str(tmp_path)))
    before = os.path.getmtime(X.result_path("table1", "bottleneck_real", 0, str(tmp_path)))
    X.run("table1", seeds=2, root=str(tmp_path), quick=True, progress=False, jobs=2)
    assert os.path.getmtime(X.result_path("table1", "bottleneck_real", 0, str(tmp_path))) == before
    assert X.result_files(tmp_path) == serial_results


def test_dask_cluster_returns_the_same_files(serial_results, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed (extra 'cluster')")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c:
        X.run("table1", seeds=2, root=str(tmp_path), quick=True, progress=False, scheduler=c.scheduler_address)
    assert X.result_files(tmp_path) == serial_results


def test_single_thread_env_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    with X.runner._single_thread_env():
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["NUMBA_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "7" and "NUMBA_NUM_THREADS" not in os.environ


def test_failed_job_is_reported_after_the_others(tmp_path):
    with pytest.raises(RuntimeError, match="1 of 2 jobs failed"):
        X.run("table1", seeds=1, root=str(tmp_path), quick=True, progress=False, jobs=2,
              recipe={"real": {"optimizer": "nope"}})  # the real row fails, the binary row finishes
    assert os.path.exists(X.result_path("table1", "bottleneck_binary", 0, str(tmp_path)))


# ---------------------------------------------------------------- interruption

STEPS = 100
RUN = [sys.executable, "-m", "tinybin.experiments", "run", "table1", "--quick", "--steps", str(STEPS),
       "--seeds", "1", "--jobs", "2"]


def _workers(pid: int) -> list[int]:
    """The pool's worker processes of runner `pid` (Linux /proc)."""
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                spawned = b"spawn_main" in fh.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and spawned:
            out.append(int(d))
    return out


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _checkpointed_steps(root: str) -> dict[str, int]:
    """{run: steps its checkpoint holds} under root/.partial."""
    out = {}
    for d in glob.glob(os.path.join(root, ".partial", "*", "*")):
        with open(os.path.join(d, "history.json")) as fh:
            out[os.path.relpath(d, os.path.join(root, ".partial"))] = len(json.load(fh)["loss"])
    return out


def _until(cond, what, timeout=120.0):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
def test_a_killed_or_interrupted_runner_loses_nothing_and_resumes_to_the_same_files(tmp_path):
    root = str(tmp_path / "res")
    env = {**os.environ, "TQDM_DISABLE": "1"}

    def start(*extra):  # SIGINT as in a terminal (a shell's background job would ignore it)
        return subprocess.Popen(RUN + ["--results", root, *extra], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    # 1. The runner is killed outright (SIGKILL): its two workers notice that it has gone, stop after
    #    their current step with a checkpoint, and exit; they start nothing else.
    t0 = time.time()
    proc = start()
    _until(lambda: len(glob.glob(os.path.join(root, ".partial", "*", "*"))) == 2, "two runs to start")
    startup = time.time() - t0
    workers = _workers(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.communicate()
    _until(lambda: not any(map(_running, workers)), "the orphaned workers to exit")
    first = _checkpointed_steps(root)
    assert sorted(first) == ["table1/bottleneck_real__seed0", "table2/bottleneck__seed0"]  # binary: same_as
    assert all(0 < s < STEPS for s in first.values()), first

    # 2. Ctrl-C to the runner alone (about when its workers resume training): it asks them to stop;
    #    they checkpoint or, still starting, just exit; no run finishes; the runner exits with 130.
    #    Four seeds, so that jobs are still queued: they are dropped without a traceback.
    proc = start("--seeds", "4")
    _until(lambda: len(_workers(proc.pid)) == 2, "the workers")
    workers = _workers(proc.pid)
    time.sleep(0.75 * startup)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    _until(lambda: not any(map(_running, workers)), "the workers to exit")
    assert X.result_files(root) == {}
    second = _checkpointed_steps(root)
    assert sorted(second) == sorted(first) and all(first[k] <= second[k] < STEPS for k in first), (first, second)

    # 3. Running the same command again finishes the table: the same files as one uninterrupted process
    proc = subprocess.run(RUN + ["--results", root], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not _checkpointed_steps(root)
    ref = str(tmp_path / "ref")
    X.run("table1", seeds=1, root=ref, quick=True, progress=False, jobs=1, overrides={"steps": STEPS})
    assert X.result_files(root) == X.result_files(ref)


def test_a_run_is_never_trained_twice_at_once(tmp_path, monkeypatch):
    # e.g. two runners started on one results folder, or a worker needing as its teacher the run
    # another worker is training: the second caller waits for the first, then reads its result
    import threading
    from tinybin.train import Trainer
    trained = []
    fit = Trainer.fit

    def counted(self, *a, **k):
        trained.append(threading.current_thread().name)
        return fit(self, *a, **k)
    monkeypatch.setattr(Trainer, "fit", counted)
    exp = X.get("table1")
    got = {}

    def run(name):
        got[name] = X.run_one(exp, exp.row("bottleneck_real"), 0, root=str(tmp_path), quick=True, progress=False,
                              overrides={"steps": 40})
    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    _until(lambda: trained, "the first run to start training")
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    first.join()
    second.join()
    assert trained == ["first"]
    with open(X.result_path("table1", "bottleneck_real", 0, str(tmp_path))) as fh:
        assert got["second"] == json.load(fh)
    assert not os.path.exists(X.partial_dir("table1", "bottleneck_real", 0, str(tmp_path)))


def test_a_pool_job_whose_result_appeared_meanwhile_is_not_trained(tmp_path, monkeypatch):
    # e.g. a distillation teacher that a worker trained for a student before the teacher's own job
    from tinybin.train import Trainer
    X.run("table1:bottleneck_real", seeds=1, root=str(tmp_path), quick=True, progress=False, jobs=1)
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained a finished run"))
    got = X.runner._job("table1", "bottleneck_real", 0, True, None, None, str(tmp_path))
    with open(X.result_path("table1", "bottleneck_real", 0, str(tmp_path))) as fh:
        assert got == json.load(fh)


def test_sigterm_takes_the_path_of_ctrl_c_in_the_runner_command():
    from tinybin.experiments.cli import _sigterm_as_ctrl_c
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with _sigterm_as_ctrl_c():
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


# ---------------------------------------------------------------- warm-up and flip testing

class _Tiny:
    kind = "pose"

    def __init__(self, n=8, R=32, seed=0):
        self.ds = X.make_data("pose", seed=seed, n_train=n, n_test=n, resolution=R, splits=("train",))[0]
        self.flip_perm = self.ds.flip_perm

    def __len__(self):
        return len(self.ds)

    def batch(self, idx, augment=False, rng=None, **kw):
        return self.ds.batch(idx, augment=augment, rng=rng, **kw)


def test_linear_warmup_then_schedule():
    from tinybin.models import HourGlass
    from tinybin.train import TrainConfig, Trainer
    net = HourGlass.downscaled(block="bottleneck", width=16, depth=2, resolution=32, seed=0)
    cfg = TrainConfig(steps=10, batch_size=2, lr=1e-3, lr_end=1e-3, warmup_steps=4, augment=False)
    h = Trainer(net, _Tiny(), cfg, progress=False).fit()
    np.testing.assert_allclose(h["lr"], [2.5e-4, 5e-4, 7.5e-4, 1e-3] + [1e-3] * 6)


def test_flip_tested_evaluation_matches_manual_average():
    from tinybin import heatmaps as hm
    from tinybin import metrics as M
    from tinybin.models import HourGlass
    from tinybin.train import evaluate, predict
    data = _Tiny(6)
    net = HourGlass.downscaled(block="hpm", width=16, depth=2, resolution=32, seed=1)
    r = evaluate(net, data, flip=True, return_distances=True)
    b = data.batch(np.arange(6))
    x = b["image"].astype(np.float32)
    maps = hm.flip_test_combine(predict(net, x), predict(net, np.ascontiguousarray(x[:, :, ::-1])), data.flip_perm)
    pts = hm.heatmap_to_image(hm.decode(maps)[0], 4)
    ann = np.maximum(b["visible"], b["occluded"]) > 0
    d = np.round(M.normalized_distances(pts, b["points"], b["head_size"], ann), 4)
    np.testing.assert_array_equal(r["distances"], d)
    assert r["flip_test"] is True and r["pckh"] == M.pckh_from_distances(d, 0.5)["mean"]
    assert r["matched_threshold"] == pytest.approx(M.matched_threshold(32))
    assert r["pckh_matched"] == M.pckh_from_distances(d, r["matched_threshold"])["mean"]
    plain = evaluate(net, data, return_distances=True)
    assert plain["flip_test"] is False and not np.array_equal(plain["distances"], d)
    # a set without its own flip_perm falls back to its kind's row in tinybin.data.KINDS
    np.testing.assert_array_equal(evaluate(net, _NoPerm(data), flip=True, return_distances=True)["distances"], d)
    import dataclasses

    from tinybin.data import KINDS
    with pytest.MonkeyPatch.context() as mp:  # a kind without a flip permutation cannot flip-test
        mp.setitem(KINDS, "pose", dataclasses.replace(KINDS["pose"], flip_perm=None))
        with pytest.raises(ValueError, match="flip permutation"):
            evaluate(net, _NoPerm(data), flip=True)


class _NoPerm:
    kind = "pose"

    def __init__(self, d):
        self.d = d

    def __len__(self):
        return len(self.d)

    def batch(self, idx, **kw):
        return self.d.batch(idx, **kw)
