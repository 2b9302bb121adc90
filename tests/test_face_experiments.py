"""The face experiments' reports (paper Tables 9 and 12): scores recomputed from stored per-image
NME and yaw, the matched NME threshold, the heatmap-quantisation floor, paired differences and
verdicts, on hand-built result dicts and on one quick run."""
import math

import numpy as np
import pytest

from tinybin import experiments as E
from tinybin import metrics as M


def _face_result(row, seed, nme, yaw, resolution=64):
    return {"row": row, "seed": seed, "metrics": {"nme_per_image": list(nme), "yaw": list(yaw)},
            "data": {"resolution": resolution}}


def test_matched_alpha_is_the_same_tolerance_in_cells():
    assert E.face_matched_alpha(64) == pytest.approx(0.28)
    assert E.face_matched_alpha(256) == pytest.approx(0.07)
    # one heatmap cell (4 px) as a fraction of the 0.475 R box, at both scales, scaled alike
    assert E.face_matched_alpha(64) / 0.07 == pytest.approx((4 / (0.475 * 64)) / (4 / (0.475 * 256)))


def test_face_cell_nme_matches_the_generated_boxes():
    assert E.face_cell_nme(64) == pytest.approx(400 / (0.475 * 64))      # 13.16 %
    assert E.face_cell_nme(256) == pytest.approx(400 / (0.475 * 256))    # 3.29 %
    assert E.face_cell_nme(64) / E.face_cell_nme(256) == pytest.approx(E.face_matched_alpha(64) / 0.07)
    # the box of the generated 68 points is (w + h) / 2 = 0.475 R x U(0.9, 1.1): one 4-px cell is
    # face_cell_nme % of sqrt(w h) up to the box's aspect ratio and that spread
    from tinybin.data import SyntheticFace
    ds = SyntheticFace(60, resolution=64, seed=3, split="test")
    side = np.array([0.5 * np.ptp(ds[i]["points"], axis=0).sum() for i in range(len(ds))])
    assert np.median(side / 64) == pytest.approx(0.475, rel=0.04)
    assert side.min() / 64 >= 0.475 * 0.9 - 1e-6 and side.max() / 64 <= 0.475 * 1.1 + 1e-6


def test_face_scores_by_hand():
    nme = [0.01, 0.03, 0.05, 0.10]
    yaw = [-10.0, 20.0, 45.0, -80.0]
    s = E.face_scores(_face_result("x", 0, nme, yaw))
    assert s["[0,30]"] == pytest.approx(2.0) and s["(30,60]"] == pytest.approx(5.0)
    assert s["(60,90]"] == pytest.approx(10.0)
    assert s["mean"] == pytest.approx((2 + 5 + 10) / 3)          # mean of the bin means, not of images
    assert s["all"] == pytest.approx(4.75)
    # AUC@0.07 = mean(max(0, 1 - e / 0.07)); FR = share above 0.07
    assert s["auc"] == pytest.approx(100 * np.mean([1 - 1 / 7, 1 - 3 / 7, 1 - 5 / 7, 0.0]))
    assert s["fr"] == pytest.approx(25.0)
    assert s["fr_matched"] == pytest.approx(0.0)
    assert E.face_scores({"row": "x", "seed": 0, "metrics": {}}) == {}


def test_claim_verdict():
    d = E.paired_difference({0: 1.0, 1: 2.0, 2: 1.5}, {0: 2.0, 1: 3.1, 2: 2.4})   # all about -1
    assert d["hi"] < 0
    assert E.claim_verdict(d, -1) == "agrees" and E.claim_verdict(d, +1) == "disagrees"
    straddle = E.paired_difference({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 2.0, 2: 2.0})
    assert E.claim_verdict(straddle, -1) == "unresolved"
    # 2 pairs that coincide give a narrow interval excluding 0, but below the protocol's 3 seeds
    two = E.paired_difference({0: 1.00, 1: 1.01}, {0: 2.0, 1: 2.0})
    assert two["hi"] < 0 and E.claim_verdict(two, -1) == "unresolved (2 pairs)"
    assert E.claim_verdict(E.paired_difference({0: 1.0}, {0: 2.0}), -1) == "unresolved (1 pair)"   # no CI


def test_face_summary_pairs_and_claims_from_hand_results():
    rng = np.random.default_rng(0)
    yaw = np.repeat([15.0, 45.0, 75.0], 10)
    res = {r.name: [] for r in E.get("face").rows}
    for seed in range(4):
        base = 0.05 + 0.01 * seed
        # bottleneck worse than HPM by 0.5 / 1 / 2 points of NME in the three bins
        gap = np.repeat([0.005, 0.01, 0.02], 10)
        noise = rng.uniform(0, 1e-3, 30)
        res["face_hpm_binary"].append(_face_result("face_hpm_binary", seed, base + noise, yaw))
        res["face_bottleneck_binary"].append(_face_result("face_bottleneck_binary", seed, base + noise + gap, yaw))
        res["face_hpm_real"].append(_face_result("face_hpm_real", seed, base + noise - 0.01, yaw))
    sm = E.face_summary(res)
    d = sm["pairs"]["binary HPM - binary bottleneck"]
    assert d["[0,30]"]["mean"] == pytest.approx(-0.5) and d["(60,90]"]["mean"] == pytest.approx(-2.0)
    assert d["mean"]["mean"] == pytest.approx(-3.5 / 3)
    assert sm["pairs"]["real HPM - binary HPM"]["mean"]["mean"] == pytest.approx(-1.0)
    assert [c["verdict"] for c in sm["claims"]] == ["agrees", "agrees"]
    text = E.face_report(results=res, floor={"resolution": 64, "stride": 4, "cells": 0.19, "[0,30]": 2.5,
                                             "(30,60]": 2.5, "(60,90]": 2.5, "mean": 2.5})
    for paper in ("2.47", "3.01", "4.31", "3.26"):
        assert paper in text
    assert "agrees" in text and "0.28" in text


def test_table12_summary_and_report():
    res = {r.name: [] for r in E.get("table12").rows}
    offsets = {"seg_bottleneck_real": 0.10, "seg_bottleneck_binary": 0.0, "seg_hpm_binary": 0.08}
    for seed in range(3):
        for name, off in offsets.items():
            iu = [0.9, 0.5 + off, 0.3, 0.3, 0.2, 0.4, 0.5]
            res[name].append({"row": name, "seed": seed, "metrics": {
                "pixel_acc": 0.9 + off / 10, "mean_acc": 0.6 + off + 0.01 * seed, "mean_iu": 0.45 + off + 0.01 * seed,
                "iu": iu}})
    sm = E.table12_summary(res)
    assert sm["pairs"]["binary HPM - binary bottleneck"]["mean_iu"]["mean"] == pytest.approx(8.0)
    assert sm["pairs"]["binary HPM - real bottleneck"]["mean_iu"]["mean"] == pytest.approx(-2.0)
    # real - HPM = 2 < (real - binary bottleneck) / 2 = 5 on every seed: both claims agree; the CI
    # has zero width (the differences are equal up to rounding), so only the sign matters here
    assert [c["verdict"] for c in sm["claims"]] == ["agrees", "agrees"]
    row = next(r for r in sm["rows"] if r["row"] == "seg_hpm_binary")
    assert row["iu"][1] == pytest.approx(58.0)
    text = E.table12_report(results=res)
    for paper in ("97.98", "77.23", "69.29", "97.41", "70.35", "62.49", "97.91", "76.02", "68.05"):
        assert paper in text
    assert "inner_mouth" in text


def test_nme_floor_is_the_quarter_cell_decoder_error():
    """Decoding exact Gaussian targets leaves at most a quarter cell per axis (argmax within half
    a cell, then a quarter step towards the larger neighbour); uniform sub-cell offsets give a
    mean 2D error of E|(u, v)| with u, v ~ U(-1/4, 1/4), about 0.19 cells."""
    f = E.nme_floor(resolution=64, n=40)
    assert 0.15 < f["cells"] < 0.23
    assert f["cells"] <= 0.25 * math.sqrt(2)
    u = np.random.default_rng(0).uniform(-0.25, 0.25, (200000, 2))
    assert f["cells"] == pytest.approx(np.linalg.norm(u, axis=1).mean(), abs=0.02)
    # NME % = cells * stride / box; the box is about 0.475 R (less under yaw), so a few %
    assert 1.0 < f["mean"] < 5.0 and set(E.FACE_BINS) <= set(f)


def test_quick_face_run_stores_per_image_nme_and_yaw(tmp_path):
    exp = E.get("face")
    r = E.run_one(exp, exp.row("face_hpm_binary"), 0, root=str(tmp_path), quick=True, progress=False)
    m = r["metrics"]
    assert r["data"]["kind"] == "face_yaw90"
    assert len(m["nme_per_image"]) == len(m["yaw"]) == m["n"]
    e, y = E.face_errors(r)
    assert np.mean(e) * 100 == pytest.approx(m["nme"], rel=1e-4)
    assert M.nme_by_yaw(e, y)["mean"] * 100 == pytest.approx(m["nme_yaw"]["mean"], rel=1e-4)
    loaded = E.load_results("face", str(tmp_path))
    assert E.face_scores(loaded["face_hpm_binary"][0])["mean"] == pytest.approx(m["nme_yaw"]["mean"], rel=1e-4)
