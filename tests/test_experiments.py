"""The experiment runner: resumable, skips finished runs, report reproduces from the JSON files;
validation-only calibration; recipes; paired differences."""
import json
import os
import time

import numpy as np
import pytest
from scipy import stats

import tinybin as tb
from tinybin import experiments as X


def test_every_experiment_row_builds_its_network():
    from tinybin.models import HourGlass
    for exp in X.EXPERIMENTS.values():
        for row in exp.rows:
            net = HourGlass.downscaled(seed=None, **row.net)
            # the network's input size is the data's (DATA, or the row's data_opts)
            assert net.config["resolution"] == row.data_opts.get("resolution", X.DATA["resolution"]), row.name


def test_quick_run_of_one_row_executes_every_path():
    r = X.run_one(X.get("table4"), X.get("table4").rows[1], seed=0, quick=True, progress=False)
    assert np.isfinite(r["metrics"]["pckh"]) and r["params"] > 0
    fn = r["feature_noise"]  # Fig. 13's numbers and maps, stored by every pose run
    assert set(r["feature_example"]) == {"first", "middle", "last"}
    assert set(fn) == {"first", "middle", "last"}
    assert all(set(v) == {"autocorr", "high_freq", "constant"} for v in fn.values())
    assert all(-1 <= v["autocorr"] <= 1 and 0 <= v["high_freq"] <= 1 and 0 <= v["constant"] <= 1
               for v in fn.values() if v["autocorr"] is not None)
    g = r["generalisation"]  # every pose run also scores the training and the augmented test images
    assert set(g) == {"train", "test_augmented"}
    assert all(0 <= v["pckh"] <= 100 and 0 <= v["pckh_matched"] <= 100 for v in g.values())


def test_generalisation_probe_scores_the_stored_training_images_and_a_fixed_augmented_test_set():
    train, test = X.make_data("pose", seed=3, n_train=12, n_test=10, resolution=32)
    view = X.AugmentedView(test, seed=3)
    a, b = view.batch(np.arange(6)), view.batch(np.arange(6))
    np.testing.assert_array_equal(a["image"], b["image"])          # the same draw every time
    plain = test.batch(np.arange(6))
    assert not np.allclose(a["image"], plain["image"])              # and not the plain crops
    assert not np.allclose(a["image"], X.AugmentedView(test, seed=4).batch(np.arange(6))["image"])
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=2, resolution=32, seed=0)
    got = X.generalisation_probe(net, train, test, 8, flip=True, seed=3)
    want_train = tb.train.evaluate(net, train, 8, flip=True)
    want_aug = tb.train.evaluate(net, view, 8, kind="pose", flip=True)
    for k in ("pckh", "pckh_matched"):
        assert got["train"][k] == pytest.approx(want_train[k])
        assert got["test_augmented"][k] == pytest.approx(want_aug[k])


def test_report_generalisation_section_by_hand(tmp_path):
    root = str(tmp_path)
    vals = {("final", 0): (70, 60, 50), ("final", 1): (72, 61, 53), ("final", 2): (71, 62, 52),
            ("no_aug", 0): (80, 66, 40), ("no_aug", 1): (84, 67, 41), ("no_aug", 2): (82, 65, 45)}
    for (row, seed), (tr, te, au) in vals.items():
        r = _pose_result("table4_probe", row, seed, te)
        r["generalisation"] = {"train": {"pckh": tr, "pckh_matched": tr}, "test_augmented": {"pckh": au, "pckh_matched": au}}
        X.write_result(X.result_path("table4_probe", row, seed, root), r)
    rep = X.report("table4_probe", root)
    line = next(ln for ln in rep.splitlines() if ln.startswith("| No Aug. (probed) | 82.0"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    gap = X.paired_difference({0: 80 - 66, 1: 84 - 67, 2: 82 - 65}, {0: 0, 1: 0, 2: 0})
    d_aug = X.paired_difference({0: 40, 1: 41, 2: 45}, {0: 50, 1: 53, 2: 52})
    assert cells[1:4] == ["82.0 ± 2.0 (3)", "66.0 ± 1.0 (3)", "42.0 ± 2.6 (3)"]
    assert cells[4] == X._fmt_diff(gap) and gap["mean"] == pytest.approx(16.0)
    assert cells[8] == X._fmt_diff(d_aug) and d_aug["mean"] == pytest.approx(-29 / 3)


def test_feature_noise_is_noise_summary_of_the_three_maps():
    from tinybin import analysis as A
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=2, resolution=32, seed=0)
    x = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    maps = A.feature_maps(net, x)
    got, ex = X.runner.feature_noise(maps), X.runner.feature_example(maps)
    for layer, m in maps.items():
        want = A.noise_summary(m)
        for k in want:
            assert got[layer][k] == pytest.approx(want[k], abs=6e-6)
        c = ex[layer]["channel"]           # the first image's most varied channel, 3 decimals
        assert m[0, ..., c].std() == pytest.approx(m[0].reshape(-1, m.shape[-1]).std(0).max(), rel=1e-5)
        np.testing.assert_allclose(ex[layer]["map"], m[0, ..., c], atol=5e-4 + 1e-6)


def _fake_run_one(calls, interrupt_at=None):
    def fake_run_one(exp, row, seed, root, quick=False, progress=True, overrides=None, recipe=None, write=None):
        calls.append((exp.name, row.name, seed))
        out = {"experiment": exp.name, "row": row.name, "label": row.label, "seed": seed,
               "metrics": {"pckh": 50.0 + seed + len(row.name),
                           "pckh_parts": {p: 10.0 * seed for p in ("Head", "Shoulder", "Elbow", "Wrist",
                                                                   "Hip", "Knee", "Ankle")}},
               "params": 1000, "paper_scale_params": 6236560,
               "paper": row.paper, "paper_params": row.paper_params, "train_time_s": 60.0}
        _write(X.result_path(exp.name, row.name, seed, root), out)
        if len(calls) == interrupt_at:
            calls.append(("copied before the interruption",
                          os.path.exists(X.result_path("table1", "bottleneck_binary", 0, root))))
            raise KeyboardInterrupt  # interrupted mid-experiment
        return out
    return fake_run_one


def test_runner_skips_finished_runs_and_report_reproduces(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(X.runner, "run_one", _fake_run_one(calls, interrupt_at=3))
    with pytest.raises(KeyboardInterrupt):
        X.run("table1", seeds=2, root=str(tmp_path))
    # table1's binary bottleneck is table2's bottleneck row (same_as): that row is what trains
    assert calls == [("table1", "bottleneck_real", 0), ("table2", "bottleneck", 0), ("table1", "bottleneck_real", 1),
                     ("copied before the interruption", True)]  # as soon as its source run finished
    X.run("table1", seeds=2, root=str(tmp_path))
    assert calls[4:] == [("table2", "bottleneck", 1)]  # only the missing run was trained
    s = {r["row"]: r for r in X.summarize("table1", str(tmp_path))}
    v = [50 + len("bottleneck_real"), 51 + len("bottleneck_real")]
    assert s["bottleneck_real"]["mean"] == pytest.approx(np.mean(v))
    assert s["bottleneck_real"]["std"] == pytest.approx(np.std(v, ddof=1))
    assert s["bottleneck_binary"]["mean"] == pytest.approx(50.5 + len("bottleneck"))  # the copied results
    copied = json.loads((tmp_path / "table1" / "bottleneck_binary__seed1.json").read_text())
    assert copied["same_as"] == "table2/bottleneck" and copied["row"] == "bottleneck_binary"
    os.remove(tmp_path / "table1" / "bottleneck_binary__seed1.json")  # a copy not written yet:
    got = X.load_results("table1", str(tmp_path))["bottleneck_binary"]  # the source's file is read
    assert [r["seed"] for r in got] == [0, 1] and got[1] == copied
    assert X.report("table1", str(tmp_path)) == X.report("table1", str(tmp_path))
    assert "76.5" in X.report("table1", str(tmp_path))
    parts = X.parts_report("table1", str(tmp_path))
    assert "| Head | 5.0 / 94.9 | 5.0 / 90.5 |" in parts  # mean of seeds 0 and 1 next to the paper


def test_rows_shared_between_tables_train_once_in_one_pool(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(X.runner, "run_one", _fake_run_one(calls))
    out = X.run(["table2:bottleneck,hpm", "table1"], seeds=2, root=str(tmp_path))
    assert calls == [("table2", "bottleneck", 0), ("table2", "hpm", 0), ("table1", "bottleneck_real", 0),
                     ("table2", "bottleneck", 1), ("table2", "hpm", 1), ("table1", "bottleneck_real", 1)]
    assert [(r["experiment"], r["row"], r["seed"]) for r in out] == [
        ("table2", "bottleneck", 0), ("table2", "hpm", 0), ("table2", "bottleneck", 1), ("table2", "hpm", 1),
        ("table1", "bottleneck_real", 0), ("table1", "bottleneck_binary", 0),
        ("table1", "bottleneck_real", 1), ("table1", "bottleneck_binary", 1)]
    with pytest.raises(ValueError, match="unknown row"):
        X.run(["table1"], seeds=1, root=str(tmp_path), rows=["nope"])
    with pytest.raises(ValueError, match="unknown row"):
        X.run(["table1:nope"], seeds=1, root=str(tmp_path))


def test_same_as_rows_are_the_same_run():
    """A row that copies another table's results must train exactly that network the same way."""
    pairs = [(e, r) for e in X.EXPERIMENTS.values() for r in e.rows if r.same_as]
    assert pairs, "no same_as rows"
    for exp, row in pairs:
        src_exp, src = X.source(exp, row)
        assert src is not row and not src.same_as
        assert (row.net, row.data, row.data_opts) == (src.net, src.data, src.data_opts), row.name
        assert X.train_settings(exp, row) == X.train_settings(src_exp, src), row.name


def _write(path, obj):
    from tinybin.train import write_json
    write_json(path, obj)


def test_unknown_experiment_is_a_clear_error(capsys):
    assert X.main(["run", "table99"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


# ---------------------------------------------------------------- validation split and calibration

def test_calibration_never_constructs_the_test_split(tmp_path, monkeypatch):
    """A calibration run builds train and val only; the test generator is never constructed."""
    import dataclasses

    from tinybin.data import KINDS
    made = []
    pose = KINDS["pose"]

    def recording(*a, **kw):
        made.append(kw.get("split", "train"))
        return pose.generator(*a, **kw)

    monkeypatch.setitem(KINDS, "pose", dataclasses.replace(pose, generator=recording))
    exp = X.get("calibration")
    r = X.run_one(exp, exp.row("hpm_binary_lr1e-3_clip"), seed=0, root=str(tmp_path), quick=True, progress=False)
    assert sorted(made) == ["train", "val"]
    assert r["split"] == "val" and r["data"]["splits"] == ["train", "val"]
    assert r["val_curve"]["step"] == [2, 4] and len(r["val_curve"]["pckh_matched"]) == 2
    assert r["metrics"]["pckh_matched"] == r["val_curve"]["pckh_matched"][-1]  # same net, same val split
    assert r["train_config"]["clip_latent"] == 1.0 and r["metrics"]["flip_test"] is True
    with open(X.result_path("calibration", "hpm_binary_lr1e-3_clip", 0, str(tmp_path))) as fh:
        assert json.load(fh)["metrics"] == json.loads(json.dumps(r["metrics"]))
    # the table experiments build train and test
    made.clear()
    X.run_one(X.get("table1"), X.get("table1").rows[0], seed=0, quick=True, progress=False)
    assert sorted(made) == ["test", "train"]


def test_splits_are_distinct_and_deterministic():
    tr, va, te = X.make_data("pose", seed=3, n_train=4, n_test=4, resolution=32, splits=("train", "val", "test"))
    imgs = [ds.batch(np.arange(4))["image"] for ds in (tr, va, te)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(imgs[i], imgs[j])
    (va2,) = X.make_data("pose", seed=3, n_test=4, resolution=32, splits=("val",))
    np.testing.assert_array_equal(va2.batch(np.arange(4))["image"], imgs[1])
    with pytest.raises(ValueError, match="splits"):
        X.make_data("pose", splits=("holdout",))


def test_synthetic_head_fraction_constant_matches_generator():
    """Step 3 of the matched-threshold derivation (tinybin.metrics) recomputed from the generator."""
    from tinybin import metrics as M
    assert X.synthetic_head_fraction() == pytest.approx(M.SYNTHETIC_POSE_HEAD_FRACTION, abs=5e-5)


def test_recipe_is_what_the_calibration_rule_picks_from_the_committed_sweep():
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
    choice = X.calibration_choice(root)
    for kind in ("binary", "real"):
        assert "missing" not in choice[kind], choice[kind]
        want = {k: v for k, v in choice[kind]["settings"].items()}
        assert X.RECIPE[kind] == pytest.approx(want), kind
        assert {k: X.recommended(kind == "binary")[k] for k in want} == pytest.approx(want)


def test_budget_is_what_the_budget_rule_picks_from_the_committed_pilot():
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
    choice = X.budget_choice(root)
    assert not choice["missing"] and choice["steps"] is not None
    assert X.BUDGET["steps"] == choice["steps"] == X.recommended(True)["steps"]


def test_calibration_grid_and_recipe_precedence(tmp_path):
    cal = X.get("calibration")
    assert len(cal.rows) == 22 and len({r.name for r in cal.rows}) == len(cal.rows)
    s = X.train_settings(cal, cal.row("hpm_real_lr5e-3_warmup"), overrides={"steps": 1000})
    assert s["lr"] == 5e-3 and s["lr_end"] == pytest.approx(1e-3) and s["warmup_steps"] == 100  # 10% of steps
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"steps": 6000, "binary": {"lr": 1e-3, "clip_latent": 1.0},
                                "real": {"lr": 2.5e-3, "warmup_steps": 50}}))
    rec = X.load_recipe(str(path))
    pilot = X.get("pilot")
    b = X.train_settings(pilot, pilot.row("hpm"), recipe=rec)
    r = X.train_settings(pilot, pilot.row("bottleneck_real"), recipe=rec, overrides={"lr": 2e-3})
    assert (b["steps"], b["lr"], b["lr_end"], b["clip_latent"]) == (6000, 1e-3, pytest.approx(2e-4), 1.0)
    assert (r["lr"], r["lr_end"], r["warmup_steps"], r.get("clip_latent")) == (2e-3, pytest.approx(4e-4), 50, None)
    path.write_text(json.dumps({"binary": {"learning_rate": 1e-3}}))
    with pytest.raises(ValueError, match="unknown"):
        X.load_recipe(str(path))
    assert X.main(["calibrate", "--lr", "1e-3", "--quick"]) == 2


# ---------------------------------------------------------------- report: paired differences, old results

def test_paired_difference_hand_values():
    d = X.paired_difference({0: 3.0, 1: 5.0, 2: 4.0, 7: 100.0}, {0: 1.0, 1: 2.0, 2: 2.0, 3: 0.0})
    # differences 2, 3, 2 over the shared seeds 0, 1, 2; sd = 0.57735, t(0.975, 2) = 4.302653
    assert d["seeds"] == [0, 1, 2] and d["mean"] == pytest.approx(7 / 3)
    assert d["sd"] == pytest.approx(0.5773503, rel=1e-6)
    assert d["half"] == pytest.approx(4.302653 * 0.5773503 / np.sqrt(3), rel=1e-5)
    assert X.paired_difference({0: 1.0}, {0: 0.5})["half"] is None
    assert X.paired_difference({0: 1.0}, {0: 0.5})["sd"] is None
    assert X.paired_difference({0: 1.0}, {1: 0.5})["n"] == 0


def test_seeds_for_power_matches_published_paired_t_sample_sizes():
    # Two-sided paired t-test, alpha 0.05, 80% power: effect size 1 needs n = 10 (power 0.8031),
    # effect size 0.5 needs n = 34 (power 0.8078); the standard sample-size tables (e.g. G*Power).
    assert X.paired_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=5e-4)
    assert X.paired_power(2.0, -1.0, 34) == pytest.approx(0.8078, abs=5e-4)   # sign and scale free
    assert X.seeds_for_power(1.0, 1.0) == 10 and X.seeds_for_power(3.0, 1.5) == 34
    for sd, delta in ((1.3, 0.9), (0.4, 1.0), (1.0, 0.3)):
        n = X.seeds_for_power(sd, delta, power=0.9)
        assert X.paired_power(sd, delta, n) >= 0.9 and (n == 2 or X.paired_power(sd, delta, n - 1) < 0.9)
    assert X.seeds_for_power(1.0, 0.0) is None
    assert X.seeds_for_power(1.0, 0.01, most=200) is None                  # beyond `most` seeds
    for bad in (dict(sd=0.0, delta=1.0, n=5), dict(sd=1.0, delta=1.0, n=1), dict(sd=1.0, delta=1.0, n=2.5)):
        with pytest.raises(ValueError):
            X.paired_power(**bad)
    with pytest.raises(ValueError):
        X.seeds_for_power(1.0, 1.0, power=1.0)


def test_paired_power_is_the_rate_at_which_paired_difference_resolves():
    # Simulated experiments of 6 normal paired differences: the share whose 95% interval lies above
    # 0 estimates the power; 3000 draws give it within +-0.037 (4 standard errors at p = 0.5).
    rng = np.random.default_rng(5)
    sd, delta, n, draws = 1.2, 1.0, 6, 3000
    hits = 0
    for diffs in rng.normal(delta, sd, size=(draws, n)):
        d = X.paired_difference(dict(enumerate(diffs)), dict.fromkeys(range(n), 0.0))
        hits += d["lo"] > 0
    p = X.paired_power(sd, delta, n)
    assert 0.2 < p < 0.8                                                   # a case where the check has teeth
    assert abs(hits / draws - p) < 4 * np.sqrt(p * (1 - p) / draws)


def test_loss_drift_hand_values():
    cfg = {"train_config": {"steps": 100}}
    ref = [dict(cfg, seed=s, loss_curve=[5.0] * 10) for s in (0, 1, 2)]
    # row - ref per seed: seed 0 ends at -1 after -0.5, seed 1 at -2 after -1, seed 2 level at -1
    row = [dict(cfg, seed=0, loss_curve=[5.0] * 6 + [4.5, 4.5, 4.0, 4.0]),
           dict(cfg, seed=1, loss_curve=[5.0] * 6 + [4.0, 4.0, 3.0, 3.0]),
           dict(cfg, seed=2, loss_curve=[4.0] * 10),
           dict(cfg, seed=3, loss_curve=[0.0] * 10)]  # no reference run for seed 3: unpaired
    d = X.loss_drift({"ref": ref, "row": row}, "ref", window=0.2)["row"]
    assert d["last"]["seeds"] == [0, 1, 2] and d["last"]["mean"] == pytest.approx(-4 / 3)
    assert d["before"]["mean"] == pytest.approx(-2.5 / 3)
    # drift per seed: -0.5, -1, 0 -> mean -0.5, sd 0.5, t(0.975, 2) = 4.302653
    assert d["drift"]["mean"] == pytest.approx(-0.5)
    assert d["drift"]["half"] == pytest.approx(4.302653 * 0.5 / np.sqrt(3), rel=1e-5)
    assert d["mean"][-1] == pytest.approx(-4 / 3) and d["steps"][-1] == 100
    assert "ref" not in X.loss_drift({"ref": ref, "row": row}, "ref")
    with pytest.raises(ValueError, match="window"):
        X.loss_drift({"ref": ref}, "ref", window=0.8)


def _pose_result(exp, row, seed, pckh, distances=None, matched=None):
    m = {"pckh": pckh, "pckh_parts": {p: pckh for p in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee",
                                                        "Ankle")}}
    if matched is not None:
        m.update(pckh_matched=matched, matched_threshold=2.0)
    out = {"experiment": exp, "row": row, "label": row, "seed": seed, "metrics": m, "params": 1000,
           "paper_scale_params": 3.5e6, "paper": None, "paper_params": None, "train_time_s": 60.0,
           "data": {"resolution": 64}}
    if distances is not None:
        out["distances"] = distances
    return out


def test_report_paired_differences_and_old_results(tmp_path):
    root = str(tmp_path)
    # seed 0, 1: first-protocol files (no distances, no pckh_matched); seed 2, 3: new protocol
    for seed, (real, binary) in enumerate([(50.0, 40.0), (52.0, 41.0), (60.0, 45.0), (64.0, 46.0)]):
        for row, v in (("bottleneck_real", real), ("bottleneck_binary", binary)):
            dist = None
            if seed >= 2:  # one sample: 16 joints, distance 0.1 (correct) or 3.0 (wrong at any threshold <= 2)
                dist = [[0.1 if j < round(v / 100 * 16) else 3.0 for j in range(16)]]
            X.write_result(X.result_path("table1", row, seed, root),
                           _pose_result("table1", row, seed, v, dist, matched=v + 10 if seed >= 2 else None))
    s = {r["row"]: r for r in X.summarize("table1", root)}
    gap = s["bottleneck_real"]["diff"]["pckh"]
    assert gap["n"] == 4 and gap["mean"] == pytest.approx(np.mean([10, 11, 15, 18]))
    assert s["bottleneck_real"]["diff"]["pckh_matched"]["n"] == 2  # only the new-protocol seeds
    assert s["bottleneck_real"]["scores"]["pckh_matched"]["mean"] == pytest.approx(72.0)
    rep = X.report("table1", root)
    assert "| Bottleneck (real) | 56.5 ± 6.6 (4) | " in rep  # std of 50, 52, 60, 64 (ddof 1) = 6.61
    assert f"{gap['mean']:+.1f} [{gap['lo']:+.1f}, {gap['hi']:+.1f}] (4)" in rep
    # PCKh at another threshold comes from the stored distances; old files give "–"
    t = X.summarize("table1", root, threshold=0.5)
    assert t[0]["scores"]["pckh@"]["n"] == 2
    d = np.array([[0.1 if j < round(60 / 100 * 16) else 3.0 for j in range(16)]])
    from tinybin import metrics as M
    assert X.score_of(X.load_results("table1", root)["bottleneck_real"][2], "pckh@", 0.5) == \
        pytest.approx(M.pckh_from_distances(d, 0.5)["mean"])
    assert "PCKh@0.5 %" in X.report("table1", root, threshold=0.5)
    assert X.main(["report", "table1", "--results", root, "--threshold", "1.0"]) == 0


def test_report_notes_training_minutes_from_mixed_machines(tmp_path):
    """The minutes column compares rows only when one recorded CPU trained them all."""
    root = str(tmp_path)
    cpus = {"bottleneck_real": "GenuineIntel family 6 model 85", "bottleneck_binary": "GenuineIntel family 6 model 85"}

    def write(cpus):
        for row, cpu in cpus.items():
            res = _pose_result("table1", row, 0, 50.0, None)
            if cpu is not None:
                res["machine"] = {"cpu": cpu, "name": "Intel(R) Xeon(R) Processor", "cores": 2}
            X.write_result(X.result_path("table1", row, 0, root), res)

    write(cpus)
    assert "train min/run:" not in X.report("table1", root)              # one machine: no note
    write({**cpus, "bottleneck_binary": "AuthenticAMD family 25 model 17"})
    note = next(line for line in X.report("table1", root).splitlines() if line.startswith("train min/run:"))
    assert "2 machines (AuthenticAMD family 25 model 17, GenuineIntel family 6 model 85)" in note
    assert "do not record" not in note
    write({**cpus, "bottleneck_binary": None})                           # an older file, without the record
    note = next(line for line in X.report("table1", root).splitlines() if line.startswith("train min/run:"))
    assert "1 machine (GenuineIntel family 6 model 85) and runs that do not record their CPU" in note
    m = X.runner.machine_info()
    assert set(m) == {"cpu", "name", "cores"} and m["cores"] == os.cpu_count()


class _RecordingNet:
    """Stands in for a network in `forward_times`: records the order of its calls in `log`."""

    def __init__(self, name, log):
        self.name, self.log, self.training = name, log, True

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        assert not self.training  # timed in eval mode
        self.log.append(self.name)
        return x


def test_forward_times_alternates_the_order_and_pairs_rounds():
    """No network always runs first (the order flips every round), each round times each network
    once, and the networks' modes are restored."""
    log = []
    nets = {"a": _RecordingNet("a", log), "b": _RecordingNet("b", log)}
    per = X.forward_times(nets, np.zeros((1, 4, 4, 3), np.float32), rounds=4, per_round=True)
    assert sorted(per) == ["a", "b"] and all(len(v) == 4 and min(v) >= 0 for v in per.values())
    # forward_ms calls each net twice (warm-up, timed): warm-ups a a b b, then rounds a a b b | b b a a | ...
    timed = log[4::2]
    assert timed == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert all(n.training for n in nets.values())
    med = X.forward_times(nets, np.zeros((1, 4, 4, 3), np.float32), rounds=3)
    assert sorted(med) == ["a", "b"] and all(isinstance(v, float) for v in med.values())
    with pytest.raises(ValueError, match="rounds"):
        X.forward_times(nets, np.zeros((1, 4, 4, 3), np.float32), rounds=0)


def test_forward_time_ratio_pairs_only_runs_timed_on_one_cpu(tmp_path):
    """Table 10's speed column: a ratio of two forward times is only a ratio when one CPU measured both."""
    root = str(tmp_path)
    amd, intel = "AuthenticAMD family 25 model 17", "GenuineIntel family 6 model 167"
    runs = {("hg", 0): (30.0, amd), ("improved", 0): (24.0, amd),        # same CPU: ratio 0.8
            ("hg", 1): (40.0, intel), ("improved", 1): (30.0, intel),    # same CPU: ratio 0.75
            ("hg", 2): (30.0, None), ("improved", 2): (90.0, intel),     # reference without its CPU
            ("hg", 3): (30.0, amd), ("improved", 3): (90.0, intel)}      # two CPUs
    for (row, seed), (ms, cpu) in runs.items():
        res = _pose_result("table10", row, seed, 50.0, None)
        res["forward_ms"] = ms
        if cpu is not None:
            res["machine"] = {"cpu": cpu, "name": "x", "cores": 2}
        X.write_result(X.result_path("table10", row, seed, root), res)

    def timing_line():  # the row's line in the forward-time table, after the accuracy table
        return [x for x in X.report("table10", root).splitlines() if x.startswith("| Improved HG")][-1]
    line = timing_line()
    assert line.endswith(f"| {np.median([24.0, 30.0, 90.0, 90.0]):.1f} | {np.mean([0.8, 0.75]):.3f} (2) |"), line
    for seed in (0, 1):                                                   # no pair left: say so
        os.remove(X.result_path("table10", "improved", seed, root))
    line = timing_line()
    assert line.endswith("| – (no pair on one CPU) |"), line


def test_write_result_is_compact_and_round_trips(tmp_path):
    obj = {"distances": [[0.1234, None, 2.0], [1e-4, 3.5, None]], "label": "MS [no 1x1], a, b",
           "metrics": {"pckh_joints": [1.0, float("nan")], "nme_yaw": {"[0,30]": 1.5}}, "empty": []}
    path = str(tmp_path / "r.json")
    X.write_result(path, obj)
    text = open(path).read()
    assert "[0.1234,null,2.0]" in text
    back = json.load(open(path))
    assert back["distances"] == obj["distances"] and back["label"] == obj["label"]
    assert back["metrics"]["nme_yaw"] == obj["metrics"]["nme_yaw"] and np.isnan(back["metrics"]["pckh_joints"][1])


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A run killed mid-way resumes from `.partial/` and gives the uninterrupted run's result."""
    from tinybin.train import Trainer
    exp = X.get("table1")
    row = exp.row("bottleneck_binary")
    over = {"steps": 6, "ckpt_every": 2}
    whole = X.run_one(exp, row, 0, root=str(tmp_path / "a"), quick=True, progress=False, overrides=over)

    real_step = Trainer.train_step

    def dies_at_5(self, step):
        if step == 5:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "train_step", dies_at_5)
    with pytest.raises(KeyboardInterrupt):
        X.run_one(exp, row, 0, root=str(tmp_path / "b"), quick=True, progress=False, overrides=over)
    partial = X.partial_dir("table1", "bottleneck_binary", 0, str(tmp_path / "b"))
    assert os.path.exists(os.path.join(partial, "checkpoint.npz"))
    monkeypatch.setattr(Trainer, "train_step", real_step)
    resumed = X.run_one(exp, row, 0, root=str(tmp_path / "b"), quick=True, progress=False, overrides=over)
    assert not os.path.exists(partial)
    timing = X.TIMING_FIELDS
    assert {k: v for k, v in resumed.items() if k not in timing} == {k: v for k, v in whole.items() if k not in timing}


def test_sequential_stack_rows_share_the_one_stack_budget():
    exp = X.get("table11")
    for steps in (900, 4000):
        totals = []
        for row in exp.rows:
            kw = X.train_settings(exp, row, overrides={"steps": steps})
            s = row.net.get("stacks", 1)
            totals.append(kw["steps"] * s + kw.get("finetune_steps", 0) if kw.get("sequential_stacks") else kw["steps"])
        assert all(abs(t - steps) <= 1 for t in totals), totals
    # The paper's schedule: every stage the whole budget, then half of it jointly.
    sched = X.get("table11_schedule")
    kw = X.train_settings(sched, sched.row("stacks2_full"), overrides={"steps": 900})
    assert (kw["steps"], kw["finetune_steps"], kw["sequential_stacks"]) == (900, 450, True)


def test_stacked_quick_run_scores_every_stack_and_the_report_shows_them(tmp_path):
    exp = X.get("table11")
    r = X.run_one(exp, exp.row("stacks2"), seed=0, root=str(tmp_path), quick=True, progress=False)
    ps = r["metrics_per_stack"]
    assert [p["stack"] for p in ps] == [1, 2]
    assert ps[-1]["pckh"] == r["metrics"]["pckh"] and ps[-1]["pckh_matched"] == r["metrics"]["pckh_matched"]
    assert r["forward_ms"] > 0
    rep = X.report("table11", str(tmp_path))
    assert "Per-stack accuracy" in rep and "| 2 stacks | 2 |" in rep
    assert "Forward time" in X.report("table10", str(tmp_path))  # table10 has timing (no runs: "–")


def test_quick_width_fits_deep_and_wide_cardinality_rows():
    assert X.runner._quick_width({"block": "hpm"}) == 16
    assert X.runner._quick_width({"block": "hpm", "block_opts": {"depth": 7}}) == 128  # F/2 split in 2**6
    assert X.runner._quick_width({"block": "hpm", "block_opts": {"cardinality": 8}}) == 64


def _cal_result(row, seed, curve):
    return {"experiment": "calibration", "row": row, "seed": seed, "metrics": {},
            "val_curve": {"step": list(range(250, 250 * (len(curve) + 1), 250)), "pckh": curve}}


def test_calibration_choice_follows_the_stated_rule(tmp_path):
    """Mean of the last two validation checkpoints; near-ties go to the smaller lr; a kind with a
    missing cell is not chosen."""
    exp = X.get("calibration")
    binary = [r for r in exp.rows if r.net.get("binary", True)]
    real = [r for r in exp.rows if not r.net.get("binary", True)]
    scores = {r.name: 10.0 for r in binary}
    top = "hpm_binary_lr2.5e-3_clip"
    near = "hpm_binary_lr1e-3_noclip"
    scores[top] = 30.0                      # last two: (20 + 40) / 2 = 30
    scores[near] = 29.8                     # within 0.5 of the best and a smaller lr: chosen
    for name, sc in scores.items():
        curve = [0.0, 20.0, 40.0] if name == top else [99.0, sc, sc]   # an early peak does not count
        X.write_result(X.result_path("calibration", name, 0, str(tmp_path)), _cal_result(name, 0, curve))
    for r in real[:-1]:
        X.write_result(X.result_path("calibration", r.name, 0, str(tmp_path)), _cal_result(r.name, 0, [1.0, 2.0]))
    c = X.calibration_choice(str(tmp_path))
    assert c["binary"]["row"] == near and c["binary"]["best"] == pytest.approx(30.0)
    assert c["binary"]["settings"]["lr"] == 1e-3 and c["binary"]["settings"]["clip_latent"] is None
    assert c["real"] == {"missing": [real[-1].name]}
    assert "not chosen yet" in X.calibration_report(str(tmp_path))


def test_budget_rule_on_hand_made_pilot_curves(tmp_path):
    """Differences that settle at step 4000 (within BUDGET_TOL of the end from there on) give 4000."""
    steps = list(range(500, 6001, 500))
    base = [30.0 + t / 200 for t in steps]
    settle = {500: 0, 1000: 1, 1500: 2, 2000: 3, 2500: 4, 3000: 5, 3500: 6.5, 4000: 7.5,
              4500: 8.5, 5000: 9, 5500: 9.2, 6000: 9.4}  # hpm - bottleneck
    assert X.BUDGET_TOL == 2.0 and X.BUDGET_MIN == 2000
    curves = {"bottleneck": base, "hpm": [b + settle[t] for b, t in zip(base, steps)],
              "bottleneck_real": [b + 20 for b in base], "multiscale_no1x1": [b - 1 for b in base]}
    assert X.budget_choice(str(tmp_path))["missing"]  # nothing run yet: no budget
    for row, c in curves.items():
        for seed in (0, 1):
            noise = 0.3 if seed else -0.3  # cancels in the mean over seeds
            _write(X.result_path("pilot", row, seed, str(tmp_path)),
                   {"experiment": "pilot", "row": row, "seed": seed,
                    "val_curve": {"step": steps, "pckh": [v + noise for v in c]}})
    got = X.budget_choice(str(tmp_path))
    assert got["diffs"]["hpm"][4000] == pytest.approx(7.5) and got["final_step"] == 6000
    assert got["steps"] == 4000  # |7.5 - 9.4| <= 2 from 4000 on; 3500 is 2.9 away
    text = X.budget_report(str(tmp_path))
    assert "- budget: 4000 steps" in text and "| 4000 | +7.5 | +20.0 | -1.0 |" in text


def test_scale_check_pairs_the_change_of_a_difference_with_scale(tmp_path):
    """real - binary at F=64 (table1) and at F=128 (scale_width), 3 shared seeds, by hand."""
    root = str(tmp_path)
    base = {0: (60.0, 40.0), 1: (62.0, 44.0), 2: (58.0, 41.0)}    # gaps 20, 18, 17
    wide = {0: (66.0, 52.0), 1: (65.0, 50.0), 2: (70.0, 53.0)}    # gaps 14, 15, 17 (seed 2 only in half)
    for seed, (real, binary) in base.items():
        for row, v in (("bottleneck_real", real), ("bottleneck_binary", binary)):
            X.write_result(X.result_path("table1", row, seed, root), _pose_result("table1", row, seed, v, matched=v))
    for seed, (real, binary) in wide.items():
        for row, v in (("bottleneck_real", real), ("bottleneck", binary)):
            X.write_result(X.result_path("scale_width", row, seed, root),
                           _pose_result("scale_width", row, seed, v, matched=v + 1))
    e = next(e for e in X.scale_check(root) if e["scale"] == "scale_width" and e["label"].startswith("real"))
    assert e["base"]["pckh"]["mean"] == pytest.approx(55 / 3) and e["scaled"]["pckh"]["mean"] == pytest.approx(46 / 3)
    shift = X.paired_difference({0: 14.0, 1: 15.0, 2: 17.0}, {0: 20.0, 1: 18.0, 2: 17.0})
    assert e["shift"]["pckh"]["mean"] == pytest.approx(-3.0) and e["shift"]["pckh"]["lo"] == pytest.approx(shift["lo"])
    assert e["shift"]["pckh_matched"]["mean"] == pytest.approx(-3.0)  # +1 on both rows cancels in the gap
    # comparisons whose rows have not run report no pairs, and the report shows them as such
    r = next(e for e in X.scale_check(root) if e["scale"] == "scale_resolution" and e["label"].startswith("real"))
    assert r["scaled"]["pckh"]["n"] == 0 and r["shift"]["pckh"]["n"] == 0 and r["base"]["pckh"]["n"] == 3
    rep = X.report("scale_width", root)
    assert "change = here - base" in rep and f"{shift['mean']:+.1f} [{shift['lo']:+.1f}, {shift['hi']:+.1f}] (3)" in rep


def test_scale_verdict_reads_the_change_against_the_papers_value():
    def d(mean, lo=None, hi=None, n=3):
        return {"n": n, "mean": mean, "lo": lo, "hi": hi}
    # base +27.7, paper +9.3: towards means downwards; -8.0 [-10.5, -5.5] lands at +19.5, not past 9.3
    assert X.scale_verdict(d(27.7), d(19.5), d(-8.0, -10.5, -5.5), 9.3) == "moves towards the paper's"
    # base +8.5 next to the paper's +8.3: a resolved drop to +3.0 goes far past it
    assert X.scale_verdict(d(8.5), d(3.0), d(-5.3, -8.1, -2.5), 8.3) == "overshoots the paper's"
    # base +5.8 below the paper's +9.3: going down is away, up to +13.9 overshoots
    assert X.scale_verdict(d(5.8), d(4.2), d(-2.0, -3.1, -0.9), 9.3) == "moves away from the paper's"
    assert X.scale_verdict(d(5.8), d(13.9), d(7.6, 1.2, 14.0), 9.3) == "overshoots the paper's"
    assert X.scale_verdict(d(5.8), d(8.0), d(2.2, 0.4, 4.0), 9.3) == "moves towards the paper's"
    assert X.scale_verdict(d(2.0), d(1.3), d(-1.0, -3.1, 1.2), 8.8) == "no change resolved"
    assert X.scale_verdict(d(2.0), d(None, n=0), d(None, n=0), 8.8) == "not run"
    assert X.scale_verdict(d(2.0), d(1.3), d(-1.0, -3.1, -0.2), None) == "unresolved"


def test_feature_noise_table_and_report_section_by_hand(tmp_path):
    # fig13's section: mean ± std per (row, layer, stat), paired differences against the real
    # bottleneck, and whether the gap grows from the first to the last layer; hand-made values
    exp = X.get("fig13")
    base = X.run_one(exp, exp.row("bottleneck_real"), seed=0, quick=True, progress=False)
    auto = {"bottleneck_real": {"first": [0.8, 0.8, 0.8], "last": [0.7, 0.72, 0.74]},
            "bottleneck_binary": {"first": [0.7, 0.75, 0.8], "last": [0.3, 0.4, 0.5]},
            "hpm_binary": {"first": [0.8, 0.8, 0.8], "last": [0.6, 0.6, 0.6]}}
    for row, layers in auto.items():
        for seed in range(3):
            fn = {lay: {"autocorr": layers.get(lay, [0.5] * 3)[seed], "high_freq": 0.25 + 0.01 * seed, "constant": 0.0}
                  for lay in X.NOISE_LAYERS}
            X.write_result(X.result_path("fig13", row, seed, str(tmp_path)),
                           dict(base, row=row, seed=seed, feature_noise=fn))
    table = {(e["row"], e["layer"], e["stat"]): e for e in X.feature_noise_table("fig13", str(tmp_path))}
    e = table[("bottleneck_binary", "last", "autocorr")]
    assert e["ms"]["mean"] == pytest.approx(0.4) and e["ms"]["std"] == pytest.approx(0.1)
    t = stats.t.ppf(0.975, 2)
    assert e["diff"]["mean"] == pytest.approx(-0.32) and e["diff"]["half"] == pytest.approx(t * 0.08 / np.sqrt(3))
    # gaps: last (-0.40, -0.32, -0.24), first (-0.10, -0.05, 0.00) -> deepening (-0.30, -0.27, -0.24)
    assert e["deepening"]["mean"] == pytest.approx(-0.27) and e["deepening"]["half"] == pytest.approx(t * 0.03 / np.sqrt(3))
    h = table[("hpm_binary", "last", "high_freq")]
    assert h["diff"]["mean"] == pytest.approx(0.0, abs=1e-12) and h["deepening"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert table[("bottleneck_real", "last", "autocorr")]["diff"] is None      # the reference row
    rep = X.report("fig13", str(tmp_path))
    assert "| Bottleneck (binary) | last | 0.400 ± 0.100 (3) | -0.320 [" in rep
    assert "Does the gap to bottleneck_real grow towards the last layer?" in rep and "-0.270 [" in rep


def test_plan_lists_what_run_would_train_with_time_estimates(tmp_path, capsys):
    # table1 at 2 seeds: its binary row is table2's bottleneck (same_as), so the runs are
    # table1/bottleneck_real and table2/bottleneck per seed. Seed 0 of the real row is done
    # (0.2 s per step measured), seed 1 of it has a checkpoint at step 1,000 of 5,500
    root = str(tmp_path)
    done = {"experiment": "table1", "row": "bottleneck_real", "seed": 0, "step_time_s": 0.2,
            "net_config": {}, "data": {"kind": "pose"}, "metrics": {"pckh": 50.0}}
    _write(X.result_path("table1", "bottleneck_real", 0, root), done)
    part = X.partial_dir("table1", "bottleneck_real", 1, root)
    os.makedirs(part)
    _write(os.path.join(part, "history.json"), {"loss": [1.0] * 1000, "step": list(range(1000))})
    got = X.plan("table1", seeds=2, root=root)
    assert [(p["experiment"], p["row"], p["seed"]) for p in got] == [
        ("table2", "bottleneck", 0), ("table1", "bottleneck_real", 1), ("table2", "bottleneck", 1)]
    real1 = got[1]
    assert real1["total"] == X.BUDGET["steps"] and real1["done"] == 1000 and real1["basis"] == "row"
    assert real1["est_s"] == pytest.approx(0.2 * (X.BUDGET["steps"] - 1000))
    assert got[0]["est_s"] is None and got[0]["basis"] is None     # nothing of that network has run
    # same network config elsewhere: the estimate says so
    other = dict(done, experiment="table2", row="wide", step_time_s=0.1,
                 net_config=tb.HourGlass.downscaled(block="bottleneck", seed=None).config)
    _write(X.result_path("table2", "wide", 0, root), other)
    got = X.plan("table1", seeds=2, root=root)
    assert got[0]["basis"] == "network" and got[0]["est_s"] == pytest.approx(0.1 * X.BUDGET["steps"])
    assert X.plan("table1", seeds=2, root=root, overrides={"steps": 2000})[1]["total"] == 2000
    # the CLI prints the same list and the totals, and trains nothing
    assert X.main(["run", "table1", "--seeds", "2", "--results", root, "--dry-run", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 runs to train; 3 with an estimate" in out and "1000/5500" in out
    assert "training now" not in out and not any(p["training"] for p in got)
    assert not os.path.exists(X.result_path("table2", "bottleneck", 0, root))
    assert X.main(["run", "table1", "--quick", "--dry-run"]) == 2


def _hold_lock(path, seconds):
    import fcntl
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        time.sleep(seconds)


def test_plan_marks_the_run_another_process_is_training(tmp_path, capsys):
    pytest.importorskip("fcntl")
    import multiprocessing as mp
    root = str(tmp_path)
    part = X.partial_dir("table1", "bottleneck_real", 0, root)
    os.makedirs(part)
    holder = mp.get_context("spawn").Process(target=_hold_lock, args=(os.path.join(part, ".lock"), 60))
    assert not X.runner._locked(part)
    holder.start()
    try:
        t0 = time.time()
        while not X.runner._locked(part):
            assert time.time() - t0 < 60 and holder.is_alive()
            time.sleep(0.05)
        assert [(p["row"], p["training"]) for p in X.plan("table1", seeds=1, root=root)] == [
            ("bottleneck_real", True), ("bottleneck", False)]
        assert X.main(["run", "table1", "--seeds", "1", "--results", root, "--dry-run"]) == 0
        assert "(training now, in another process)" in capsys.readouterr().out
    finally:
        holder.terminate()
        holder.join()
    assert not X.runner._locked(part)


def test_power_table_reads_the_paired_spread(tmp_path, capsys):
    """The notebooks' power table: sd of the paired differences per row, the seeds that
    `seeds_for_power` says would resolve the paper's (or the yardstick's) difference, none from
    fewer than MIN_PAIRS pairs, and a pooled line weighting each row's variance by its df."""
    from tinybin import notebook as NB
    root = str(tmp_path)
    scores = {"bottleneck": [40.0, 41.0, 45.0, 44.0], "wide": [50.0, 52.0, 60.0, 56.0], "hpm": [42.0, 45.0]}
    for row, vals in scores.items():
        for seed, v in enumerate(vals):
            X.write_result(X.result_path("table2", row, seed, root), _pose_result("table2", row, seed, v, None))
    # reference: bottleneck. wide - bottleneck = 10, 11, 15, 12 (sd 2.1602); hpm: 2, 4 (sd 1.4142)
    out = NB.power_table("table2", root, [("wide", 4.0, "wider is better"), ("hpm", None, "hpm is better")],
                         keys=("pckh",))
    wide, hpm, pooled = out[:3]
    assert wide["sd"] == pytest.approx(np.std([10, 11, 15, 12], ddof=1)) and wide["pairs"] == 4
    assert wide["seeds"] == X.seeds_for_power(wide["sd"], 4.0) and wide["seeds"] > 2
    assert X.paired_power(wide["sd"], 4.0, wide["seeds"]) >= 0.8 > X.paired_power(wide["sd"], 4.0, wide["seeds"] - 1)
    assert hpm["sd"] == pytest.approx(np.sqrt(2)) and hpm["pairs"] == 2 and hpm["seeds"] is None
    assert hpm["delta"] == 1.0                                                    # the yardstick
    # pooled variance: (3 * 2.1602^2 + 1 * 2) / 4 = 4.0; seeds per distinct delta (1.0 first)
    assert pooled["row"] is None and pooled["sd"] == pytest.approx(2.0) and pooled["pairs"] == 5
    assert pooled["delta"] == 1.0 and pooled["seeds"] == X.seeds_for_power(2.0, 1.0)
    assert out[3]["delta"] == 4.0 and out[3]["seeds"] == X.seeds_for_power(2.0, 4.0)
    text = capsys.readouterr().out
    assert f"| wider is better | 4.0 (paper) | 2.16 (4) | {wide['seeds']} |" in text
    assert "| hpm is better | 1.0 (yardstick) | 1.41 (2) | – (< 3 pairs) |" in text
    seeds = f"1.0: {pooled['seeds']}, 4.0: {out[3]['seeds']}"
    assert f"| pooled over these rows | 1.0, 4.0 | 2.00 (4 df) | {seeds} |" in text
    assert len(NB.power_table("table2", root, [("wide", 4.0, "one row")], keys=("pckh",))) == 1
    assert "pooled" not in capsys.readouterr().out                                 # one row: nothing to pool
