"""The experiment runner: resumable, skips finished runs, report reproduces from the JSON files."""

import numpy as np
import pytest

from tinybin import experiments as X


def test_every_experiment_row_builds_its_network():
    from tinybin.models import HourGlass
    for exp in X.EXPERIMENTS.values():
        for row in exp.rows:
            net = HourGlass.downscaled(seed=None, **row.net)
            assert net.config["resolution"] == 64


def test_quick_run_of_one_row_executes_every_path():
    r = X.run_one(X.get("table4"), X.get("table4").rows[1], seed=0, quick=True, progress=False)
    assert np.isfinite(r["metrics"]["pckh"]) and r["params"] > 0


def test_runner_skips_finished_runs_and_report_reproduces(tmp_path, monkeypatch):
    calls = []

    def fake_run_one(exp, row, seed, root, quick=False, progress=True, overrides=None):
        calls.append((row.name, seed))
        out = {"experiment": exp.name, "row": row.name, "label": row.label, "seed": seed,
               "metrics": {"pckh": 50.0 + seed + len(row.name),
                           "pckh_parts": {p: 10.0 * seed for p in ("Head", "Shoulder", "Elbow", "Wrist",
                                                                   "Hip", "Knee", "Ankle")}},
               "params": 1000, "paper_scale_params": 6236560,
               "paper": row.paper, "paper_params": row.paper_params, "train_time_s": 60.0}
        _write(X.result_path(exp.name, row.name, seed, root), out)
        if len(calls) == 3:
            raise KeyboardInterrupt  # interrupted mid-experiment
        return out

    monkeypatch.setattr(X, "run_one", fake_run_one)
    with pytest.raises(KeyboardInterrupt):
        X.run("table1", seeds=2, root=str(tmp_path))
    assert calls == [("bottleneck_real", 0), ("bottleneck_binary", 0), ("bottleneck_real", 1)]
    X.run("table1", seeds=2, root=str(tmp_path))
    assert calls[3:] == [("bottleneck_binary", 1)]  # only the missing run was trained
    s = {r["row"]: r for r in X.summarize("table1", str(tmp_path))}
    v = [50 + len("bottleneck_real"), 51 + len("bottleneck_real")]
    assert s["bottleneck_real"]["mean"] == pytest.approx(np.mean(v))
    assert s["bottleneck_real"]["std"] == pytest.approx(np.std(v, ddof=1))
    assert X.report("table1", str(tmp_path)) == X.report("table1", str(tmp_path))
    assert "76.5" in X.report("table1", str(tmp_path))
    parts = X.parts_report("table1", str(tmp_path))
    assert "| Head | 5.0 / 94.9 | 5.0 / 90.5 |" in parts  # mean of seeds 0 and 1 next to the paper


def _write(path, obj):
    from tinybin.train import write_json
    write_json(path, obj)


def test_unknown_experiment_is_a_clear_error(capsys):
    assert X.main(["run", "table99"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
