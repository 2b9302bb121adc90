"""Metrics against hand-computed cases and against the MPII reference table (tinybin.metrics)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

from tinybin import metrics as m

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
MPII_MAT = FIXTURES / "mpii_valid_tompson_detections.mat"


# ---------------------------------------------------------------- PCKh / PCK

def test_head_size():
    boxes = np.array([[[0, 0], [3, 4]], [[10, 10], [16, 18]]], float)
    np.testing.assert_allclose(m.head_size(boxes), [3.0, 6.0])       # 0.6 * 5, 0.6 * 10
    assert m.head_size(boxes[0]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="zero size"):
        m.head_size(np.array([[[1, 1], [1, 1]]], float))
    with pytest.raises(ValueError, match=r"\(M, 2, 2\)"):
        m.head_size(np.zeros((3, 4)))


def _pose_case():
    """2 people, head size 10 and 20. Per joint offsets chosen by hand (threshold 0.5 -> 5 and 10 px)."""
    gt = np.zeros((2, 16, 2))
    pred = gt.copy()
    hs = np.array([10.0, 20.0])
    vis = np.ones((2, 16), bool)
    pred[0, 9] = [3, 4]          # head-top: d = 5 / 10 = 0.5 -> correct (<=)
    pred[1, 9] = [0, 10.01]      # d = 0.5005 -> wrong
    pred[0, 12] = [6, 0]         # r-shoulder: 0.6 wrong
    pred[1, 12] = [0, 1]         # correct
    pred[0, 13] = [100, 0]       # l-shoulder wrong, person 1 unannotated
    vis[1, 13] = False
    pred[:, 0] = [50, 50]        # r-ankle wrong for both
    vis[:, 5] = False            # l-ankle never annotated
    pred[:, 6] = [99, 99]        # pelvis wrong: must not affect the means
    return pred, gt, hs, vis


def test_pckh_hand_case():
    pred, gt, hs, vis = _pose_case()
    r = m.pckh(pred, gt, hs, vis)
    j = r["joints"]
    assert j[9] == 50.0 and j[12] == 50.0 and j[13] == 0.0 and j[0] == 0.0 and j[6] == 0.0
    assert np.isnan(j[5])                                   # never annotated
    np.testing.assert_array_equal(r["counts"][[0, 5, 9, 12, 13]], [2, 0, 2, 2, 1])
    assert r["parts"]["Head"] == 50.0
    assert r["parts"]["Shoulder"] == 25.0                   # mean of the R and L joint scores
    assert r["parts"]["Elbow"] == 100.0
    assert np.isnan(r["parts"]["Ankle"]) and np.isnan(r["mean"])
    # Weighted over the 14 joints: all annotated except l-ankle (2) and one l-shoulder.
    # Wrong: one head-top, one r-shoulder, one l-shoulder, two r-ankles -> 20 of 25 correct.
    assert r["n_joints"] == 25
    assert r["mean_weighted"] == pytest.approx(80.0)
    # Shifting both pred and gt (1-based vs 0-based) changes nothing.
    r2 = m.pckh(pred + 1, gt + 1, hs, vis)
    np.testing.assert_array_equal(r2["joints"], j)


def test_pckh_unweighted_mean_and_threshold():
    pred, gt, hs, vis = _pose_case()
    vis[:, 5] = True
    r = m.pckh(pred, gt, hs, vis)
    sel = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15]
    assert r["mean"] == pytest.approx(np.mean(r["joints"][sel]))
    assert r["joints"][5] == 100.0
    r0 = m.pckh(pred, gt, hs, vis, threshold=0.0)
    assert r0["joints"][9] == 0.0 and r0["joints"][1] == 100.0   # exact hits count at threshold 0 (<=)
    curve = m.pckh_curve(pred, gt, hs, vis, thresholds=[0.0, 0.5, 10.0])
    assert curve["joints"].shape == (3, 16)
    assert curve["mean_weighted"][-1] == 100.0
    assert np.all(np.diff(curve["mean_weighted"]) >= 0)


def test_pck_and_input_checks():
    gt = np.zeros((3, 2, 2))
    pred = np.array([[[1, 0], [0, 3]], [[0, 0], [0, 0]], [[2, 0], [0, 0]]], float)
    r = m.pck(pred, gt, np.array([4.0, 1.0, 2.0]), None, threshold=0.5)
    np.testing.assert_allclose(r["joints"], [200 / 3, 200 / 3])     # d = .25,.75 | 0,0 | 1,0
    assert r["mean"] == pytest.approx(100 * 4 / 6)
    with pytest.raises(ValueError, match="empty"):
        m.pck(np.zeros((0, 2, 2)), np.zeros((0, 2, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="differs"):
        m.pck(pred[:, :1], gt, np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        m.pck(pred, gt, np.array([1.0, 0.0, 1.0]))
    # A zero normaliser is fine when that sample has nothing to evaluate.
    r = m.pck(pred, gt, np.array([4.0, 0.0, 2.0]), [[1, 1], [0, 0], [1, 1]])
    assert r["counts"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="16"):
        m.pckh(pred, gt, np.ones(3))


@pytest.mark.skipif(not MPII_MAT.exists(), reason=f"reference fixture not found at {MPII_MAT} "
                    "(the shared fixtures folder ../shared/fixtures is absent)")
def test_pckh_reproduces_mpii_reference_table():
    """Tompson et al.'s MPII validation predictions: the published PCKh@0.5 table, to 0.01."""
    from scipy.io import loadmat
    d = loadmat(MPII_MAT)
    gt = d["pos_gt_src"].transpose(2, 0, 1)             # (2958, 16, 2), 1-based (shift-invariant)
    pred = d["pos_pred_src"].transpose(2, 0, 1)
    vis = 1 - d["jnt_missing"].T
    hs = m.head_size(d["headboxes_src"].transpose(2, 0, 1))
    r = m.pckh(pred, gt, hs, vis, 0.5)
    expected = {"Head": 95.60, "Shoulder": 92.71, "Elbow": 83.36, "Wrist": 76.74, "Hip": 81.93,
                "Knee": 73.36, "Ankle": 65.45}
    for k, v in expected.items():
        assert r["parts"][k] == pytest.approx(v, abs=0.005), k
    assert r["mean"] == pytest.approx(81.46, abs=0.005)
    assert r["mean_weighted"] == pytest.approx(82.34, abs=0.005)
    assert int(r["counts"].sum()) == 44240 and gt.shape[0] == 2958


# ---------------------------------------------------------------- NME and friends

def test_nme_box_hand_case():
    gt = np.array([[[0, 0], [4, 0], [4, 9], [0, 9]]], float)       # box 4 x 9 -> sqrt = 6
    pred = gt + np.array([[3, 4], [0, 0], [0, 6], [0, 0]])          # errors 5, 0, 6, 0
    np.testing.assert_allclose(m.nme(pred, gt), [11 / 4 / 6])
    # Only annotated points count, and the box comes from the annotated gt points.
    vis = np.array([[1, 1, 1, 0]])
    np.testing.assert_allclose(m.nme(pred, gt, visible=vis), [11 / 3 / 6])
    np.testing.assert_allclose(m.nme(pred, gt, norm=np.array([2.0])), [11 / 4 / 2])
    r = m.nme(np.concatenate([pred, pred]), np.concatenate([gt, gt]), visible=np.array([[1, 1, 1, 1], [0, 0, 0, 0]]))
    assert r[0] == pytest.approx(11 / 24) and np.isnan(r[1])


def test_nme_interocular_and_errors():
    gt = np.zeros((1, 68, 2))
    gt[0, 36] = [10, 20]
    gt[0, 45] = [50, 50]                                           # distance 50
    pred = gt.copy()
    pred[0, 0] = [68 * 5, 0]                                       # one error of 340 -> mean 5
    np.testing.assert_allclose(m.nme(pred, gt, "interocular"), [5 / 50])
    with pytest.raises(ValueError, match="68"):
        m.nme(pred[:, :10], gt[:, :10], "interocular")
    flat = np.zeros((1, 3, 2))
    flat[0, :, 0] = [0, 1, 2]                                      # all on a line: zero-area box
    with pytest.raises(ValueError, match="zero"):
        m.nme(flat, flat, "box")
    with pytest.raises(ValueError, match="empty"):
        m.nme(np.zeros((0, 3, 2)), np.zeros((0, 3, 2)))
    with pytest.raises(ValueError, match="norm"):
        m.nme(flat, flat, "diagonal")


def test_nme_by_yaw():
    e = np.array([1.0, 3.0, 10.0, 20.0, 7.0, 100.0])
    yaw = np.array([-10.0, 30.0, 30.5, -60.0, 61.0, 95.0])
    r = m.nme_by_yaw(e, yaw)
    assert r["[0,30]"] == 2.0 and r["(30,60]"] == 15.0 and r["(60,90]"] == 53.5
    assert r["mean"] == pytest.approx((2 + 15 + 53.5) / 3)         # mean of bin means
    assert r["counts"] == {"[0,30]": 2, "(30,60]": 2, "(60,90]": 2}
    r = m.nme_by_yaw([1.0, 2.0], [0.0, 45.0])
    assert np.isnan(r["(60,90]"]) and r["mean"] == 1.5 and r["counts"]["(60,90]"] == 0
    with pytest.raises(ValueError, match="empty"):
        m.nme_by_yaw([], [])


def test_ced_auc_failure_rate_hand_case():
    e = np.array([0.0, 0.02, 0.04, 0.08, 0.5])
    assert m.auc(e, 0.08) == pytest.approx((1 + 0.75 + 0.5 + 0 + 0) / 5)
    assert m.failure_rate(e, 0.08) == pytest.approx(0.2)             # 0.08 itself is not a failure
    x, y = m.ced(e, 0.08, n=5)
    np.testing.assert_allclose(x, [0, 0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(y, [0.2, 0.4, 0.6, 0.6, 0.8])
    assert m.auc([np.inf, 0.0], 0.1) == 0.5                         # inf = failure
    with pytest.raises(ValueError, match="NaN"):
        m.auc([np.nan], 0.1)
    with pytest.raises(ValueError, match="empty"):
        m.failure_rate([], 0.1)


def test_auc_closed_form_equals_integral_of_ced():
    e = np.random.default_rng(0).gamma(2.0, 0.02, size=500)
    x, y = m.ced(e, 0.08, n=80001)
    assert m.auc(e, 0.08) == pytest.approx(integrate.trapezoid(y, x) / 0.08, abs=2e-4)
    assert 1 - y[-1] == pytest.approx(m.failure_rate(e, 0.08))


# ---------------------------------------------------------------- segmentation

def test_confusion_hand_case_void_and_accumulation():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pr = np.array([[0, 1, 1], [1, 0, 2]])
    h = m.confusion(pr, gt, 3)
    np.testing.assert_array_equal(h, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])   # rows gt, cols pred; 255 dropped
    acc = np.zeros((3, 3), np.int64)
    m.confusion(pr, gt, 3, out=acc)
    m.confusion(pr, gt, 3, out=acc)
    np.testing.assert_array_equal(acc, 2 * h)
    with pytest.raises(ValueError, match="predicted labels"):
        m.confusion(np.array([3]), np.array([0]), 3)
    with pytest.raises(ValueError, match="shape"):
        m.confusion(pr, gt[:1], 3)


def test_boundary_share_hand_cases():
    one = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(m.boundary_share(one, 2), [0.5, 1.0])
    # a 2x4 block of class 1 in a 4x6 image: its 8 pixels all touch class 0 (it is 2 rows thick);
    # class 0 has 16 pixels, 12 of them 4-adjacent to the block (4 above, 4 below, 2 left, 2 right)
    blk = np.zeros((4, 6), int)
    blk[1:3, 1:5] = 1
    np.testing.assert_allclose(m.boundary_share(blk, 3), [12 / 16, 1.0, np.nan])
    # a thick block has an interior; upsampling by 4 shrinks the boundary share of both classes
    big = np.kron(blk, np.ones((4, 4), int))
    s = m.boundary_share(big, 2)
    assert s[1] == pytest.approx(1 - 6 * 14 / 128)  # 8x16 block, 6x14 interior
    assert s[0] < 0.5 and s[1] < 1.0
    # batches count every image; void labels are skipped
    np.testing.assert_allclose(m.boundary_share(np.stack([one, one]), 2), [0.5, 1.0])
    np.testing.assert_allclose(m.boundary_share(np.where(one == 0, 255, one), 2), [np.nan, 1.0])
    with pytest.raises(ValueError, match="integers"):
        m.boundary_share(one.astype(float), 2)


def test_segmentation_scores_hand_case():
    h = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    s = m.segmentation_scores(h)
    assert s["pixel_acc"] == pytest.approx(3 / 5)
    np.testing.assert_allclose(s["acc"], [0.5, 1.0, 0.0])
    assert s["mean_acc"] == pytest.approx(0.5)
    np.testing.assert_allclose(s["iu"], [1 / 3, 2 / 3, 0.0])           # 1/(2+2-1), 2/(2+3-2), 0/(1+0-0)
    assert s["mean_iu"] == pytest.approx(1 / 3)
    assert s["fw_iu"] == pytest.approx(0.4 * 1 / 3 + 0.4 * 2 / 3)
    # A class absent from gt and prediction is NaN and skipped.
    h4 = np.zeros((4, 4), int)
    h4[:3, :3] = h
    s4 = m.segmentation_scores(h4)
    assert np.isnan(s4["iu"][3]) and s4["mean_iu"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="empty"):
        m.segmentation_scores(np.zeros((3, 3)))


# ---------------------------------------------------------------- PCKh from stored distances, matched tolerance

def test_pckh_from_distances_matches_pckh_and_hand_counts(rng):
    gt = rng.uniform(0, 60, (40, 16, 2))
    pred = gt + rng.normal(0, 3, gt.shape)
    hs = rng.uniform(4, 8, 40)
    vis = rng.random((40, 16)) > 0.2
    d = m.normalized_distances(pred, gt, hs, vis)
    for t in (0.2, 0.5, 1.3):
        a, b = m.pckh(pred, gt, hs, vis, t), m.pckh_from_distances(d, t)
        np.testing.assert_allclose(b["joints"], a["joints"])
        assert b["mean"] == pytest.approx(a["mean"]) and b["mean_weighted"] == pytest.approx(a["mean_weighted"])
        assert b["parts"] == pytest.approx(a["parts"])
    # hand case: joint 0 at distances (0.5, 0.6, NaN) -> 1 of 2 correct at 0.5 (<= counts)
    d = np.full((3, 16), 0.1)
    d[:, 0] = [0.5, 0.6, np.nan]
    r = m.pckh_from_distances(d, 0.5)
    assert r["joints"][0] == 50.0 and r["joints"][1] == 100.0
    assert r["mean"] == pytest.approx((50 + 13 * 100) / 14)
    c = m.pckh_curve_from_distances(d, [0.0, 0.55, 1.0])
    np.testing.assert_allclose(c["mean"], [0.0, (50 + 1300) / 14, 100.0])
    with pytest.raises(ValueError, match="16"):
        m.pckh_from_distances(np.zeros((3, 14)))


def test_matched_threshold_hand_values():
    # 3.2 cells of 4 px = 12.8 px; a 6.4-px head -> threshold 2
    assert m.matched_threshold(64, 4, head_fraction=0.1) == pytest.approx(2.0)
    assert m.matched_threshold(128, 4, head_fraction=0.1) == pytest.approx(1.0)
    assert m.MPII_TOLERANCE_CELLS == pytest.approx(3.2)
    with pytest.raises(ValueError):
        m.matched_threshold(0)


def test_mpii_crop_head_px_hand_case():
    gt = np.zeros((2, 16, 2))
    gt[:, 8] = (100, 100)
    gt[:, 9] = (100, 60)          # head segment 40 px -> 200 * scale = 240 px, crop box 300 px
    gt[:, 0] = (90, 300)
    gt[:, 5] = (110, 300)         # ankles midpoint 240 px below the head top
    hb = np.array([[[80, 60], [112, 84]]] * 2, float)   # diagonal 40 -> head size 24
    vis = np.ones((2, 16))
    vis[1, 0] = 0
    np.testing.assert_allclose(m.mpii_crop_head_px(gt, hb, vis, "scale"), [24 * 256 / 300] * 2)
    a = m.mpii_crop_head_px(gt, hb, vis, "ankles")
    assert a[0] == pytest.approx(24 * 256 / 300) and np.isnan(a[1])
    with pytest.raises(ValueError, match="method"):
        m.mpii_crop_head_px(gt, hb, vis, "height")


@pytest.mark.skipif(not MPII_MAT.exists(), reason=f"reference fixture not found at {MPII_MAT} "
                    "(the shared fixtures folder ../shared/fixtures is absent)")
def test_mpii_tolerance_constant_matches_fixture():
    """The stored MPII head size in 256-px crop pixels is the fixture's median (MPII's scale rule),
    and the head-and-ankles height estimate gives a larger head (shorter person), as documented."""
    r = m.mpii_tolerance(str(MPII_MAT))
    assert r["n"] == 2932
    assert r["head_px"] == pytest.approx(m.MPII_CROP_HEAD_PX, abs=0.01)
    assert r["tolerance_cells"] == pytest.approx(m.MPII_TOLERANCE_CELLS, abs=0.002)
    a = m.mpii_tolerance(str(MPII_MAT), method="ankles")
    assert a["n"] == 2051 and a["head_px"] == pytest.approx(29.97, abs=0.01)
