"""Parallel experiment runner (worker processes, Dask), warm-up schedule and flip-tested evaluation."""
import os

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
