"""Evaluation metrics: PCKh / PCK (pose), NME, CED, AUC, failure rate (faces), FCN scores (parts).

Paper sections 6.2 (MPII PCKh@0.5), 6.3 (AFLW2000-3D NME per yaw bin, CED curves), 9 (facial part
segmentation: pixel accuracy, mean accuracy, mean IU as in FCN). The formulas follow the public
reference evaluation code (MPII's MATLAB toolkit and its Python ports, 3DDFA's AFLW2000-3D
benchmark, FCN's ``score.py``); ``tests/test_metrics.py`` reproduces the MPII table of Tompson et
al.'s validation predictions to 0.01.

Conventions: landmarks are (..., K, 2) arrays of (x, y); "visible" means *annotated* (MPII's
``1 - jnt_missing``), not "unoccluded". Percentages are in [0, 100], errors are plain ratios.
Bad input (shape mismatch, empty arrays, non-positive normalisers) raises ValueError; a joint with
no annotated instances scores NaN.
"""

from __future__ import annotations

import numpy as np

from .skeletons import FACE68_OUTER_EYE_CORNERS, MPII_PARTS, MPII_PCKH_JOINTS

__all__ = ["head_size", "normalized_distances", "pck", "pckh", "pckh_curve", "pckh_from_distances",
           "pckh_curve_from_distances", "nme", "nme_by_yaw", "YAW_BINS", "ced", "auc", "failure_rate",
           "confusion", "segmentation_scores", "boundary_share", "MPII_CROP_HEAD_PX", "MPII_TOLERANCE_CELLS",
           "SYNTHETIC_POSE_HEAD_FRACTION", "matched_threshold", "mpii_crop_head_px", "mpii_tolerance"]

# --------------------------------------------------------------------------------------------
# Pose: PCKh / PCK
# --------------------------------------------------------------------------------------------


def head_size(headboxes: np.ndarray) -> np.ndarray:
    """MPII head size: 0.6 x the head-box diagonal (``SC_BIAS = 0.6`` of the MPII toolkit).

    headboxes: (M, 2, 2) with ``[m, 0] = (x1, y1)`` and ``[m, 1] = (x2, y2)``, or (2, 2) for one box.
    Returns (M,) (or a scalar). ``h = 0.6 * ||(x2, y2) - (x1, y1)||``. Zero-size boxes raise ValueError.
    """
    b = np.asarray(headboxes, dtype=np.float64)
    if b.shape[-2:] != (2, 2):
        raise ValueError(f"head_size: expected headboxes (M, 2, 2) [(x1, y1), (x2, y2)], got shape {b.shape}")
    hs = 0.6 * np.linalg.norm(b[..., 1, :] - b[..., 0, :], axis=-1)
    bad = ~(hs > 0)
    if np.any(bad):
        raise ValueError(f"head_size: {int(np.sum(bad))} head box(es) have zero size or are not finite "
                         f"(first at index {int(np.flatnonzero(np.ravel(bad))[0])})")
    return hs


def _check_pose_inputs(pred, gt, norm, visible, name):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"{name}: expected gt (M, K, 2), got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: pred shape {pred.shape} differs from gt shape {gt.shape}")
    M, K = gt.shape[:2]
    if M == 0 or K == 0:
        raise ValueError(f"{name}: empty input, gt shape {gt.shape}")
    vis = np.ones((M, K), bool) if visible is None else np.asarray(visible).astype(bool)
    if vis.shape != (M, K):
        raise ValueError(f"{name}: visible must be ({M}, {K}), got shape {vis.shape}")
    norm = np.asarray(norm, dtype=np.float64).reshape(-1)
    if norm.shape != (M,):
        raise ValueError(f"{name}: normaliser must be ({M},), got shape {np.shape(norm)}")
    used = vis.any(1)
    bad = used & ~(norm > 0)                   # also catches NaN
    if np.any(bad):
        raise ValueError(f"{name}: normaliser must be positive and finite; {int(bad.sum())} sample(s) are not "
                         f"(first at index {int(np.flatnonzero(bad)[0])})")
    return pred, gt, norm, vis


def normalized_distances(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, visible=None) -> np.ndarray:
    """``d[m, k] = ||pred[m, k] - gt[m, k]|| / norm[m]``; (M, K), NaN where not annotated."""
    pred, gt, norm, vis = _check_pose_inputs(pred, gt, norm, visible, "normalized_distances")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]
    return np.where(vis, d, np.nan)


def pck(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, visible=None, threshold: float = 0.5) -> dict:
    """Percentage of correct keypoints with a per-sample normaliser.

    pred, gt: (M, K, 2); norm: (M,) (head size for PCKh, torso size for LSP PCK@0.2, ...);
    visible: (M, K) annotated flags or None. A joint counts as correct if
    ``||pred - gt|| / norm <= threshold`` (``<=`` as HRNet and Bulat's evaluation; identical to
    ``<`` on the MPII fixture).

    Returns dict(joints=(K,) percent per joint (NaN if never annotated), counts=(K,) int,
    correct=(K,) int, mean=percent over all annotated joints (count-weighted)).
    """
    pred, gt, norm, vis = _check_pose_inputs(pred, gt, norm, visible, "pck")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]
    hit = (d <= threshold) & vis
    counts = vis.sum(0)
    correct = hit.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        joints = 100.0 * correct / counts
    total = counts.sum()
    mean = 100.0 * correct.sum() / total if total else np.nan
    return {"joints": joints, "counts": counts, "correct": correct, "mean": float(mean)}


def pckh(pred: np.ndarray, gt: np.ndarray, head_sizes: np.ndarray, visible=None, threshold: float = 0.5) -> dict:
    """MPII PCKh@threshold (paper Tables 1, 5): PCK normalised by the head size.

    pred, gt: (M, 16, 2) in MPII joint order (any common shift of both, e.g. 1-based vs 0-based,
    cancels); head_sizes: (M,) from ``head_size``; visible: (M, 16) annotated (1 - jnt_missing).

        d[m, j]   = ||pred[m, j] - gt[m, j]|| / head_sizes[m]
        PCKh[j]   = 100 * #{m annotated: d[m, j] <= threshold} / #{m annotated}

    Returns dict:
      joints (16,) percent; counts (16,) int; correct (16,) int;
      parts: {"Head": head-top, "Shoulder": mean of right and left, ..., "Ankle": ...};
      mean: unweighted mean of the 14 joints without pelvis and thorax (MPII toolkit, bearpaw);
      mean_weighted: correct / annotated over those 14 joints (HRNet's "Mean");
      n_joints: number of annotated joints among those 14; threshold.
    """
    r = pck(pred, gt, head_sizes, visible, threshold)
    K = r["joints"].shape[0]
    if K != 16:
        raise ValueError(f"pckh: expected 16 MPII joints, got {K}")
    j = r["joints"]
    sel = list(MPII_PCKH_JOINTS)
    parts = {name: float(np.mean(j[list(idx)])) for name, idx in MPII_PARTS.items()}
    n = int(r["counts"][sel].sum())
    return {
        "joints": j,
        "counts": r["counts"],
        "correct": r["correct"],
        "parts": parts,
        "mean": float(np.mean(j[sel])),
        "mean_weighted": float(100.0 * r["correct"][sel].sum() / n) if n else float("nan"),
        "n_joints": n,
        "threshold": float(threshold),
    }


def pckh_curve(pred: np.ndarray, gt: np.ndarray, head_sizes: np.ndarray, visible=None, thresholds=None) -> dict:
    """PCKh as a function of the threshold (HRNet's curve over ``arange(0, 0.51, 0.01)`` by default).

    Returns dict(thresholds (T,), joints (T, 16), mean (T,), mean_weighted (T,)).
    """
    t = np.arange(0.0, 0.51, 0.01) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    rows = [pckh(pred, gt, head_sizes, visible, float(th)) for th in t]
    return {"thresholds": t, "joints": np.stack([r["joints"] for r in rows]),
            "mean": np.array([r["mean"] for r in rows]),
            "mean_weighted": np.array([r["mean_weighted"] for r in rows])}


def pckh_from_distances(distances: np.ndarray, threshold: float = 0.5) -> dict:
    """PCKh from stored normalised distances (the ``distances`` of a result file).

    distances: (M, 16) ``||pred - gt|| / head_size``, NaN where the joint is not annotated.
    Same definitions as ``pckh``: a joint is correct if ``d <= threshold``; ``mean`` is the
    unweighted mean of the 14 joints without pelvis and thorax, ``mean_weighted`` is correct /
    annotated over those joints. Returns dict(joints (16,), parts, mean, mean_weighted, threshold).
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 16:
        raise ValueError(f"pckh_from_distances: expected (M, 16) distances, got shape {d.shape}")
    if d.shape[0] == 0:
        raise ValueError("pckh_from_distances: empty distances")
    vis = ~np.isnan(d)
    with np.errstate(invalid="ignore"):
        hit = vis & (d <= threshold)
    counts, correct = vis.sum(0), hit.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        joints = 100.0 * correct / counts
    sel = list(MPII_PCKH_JOINTS)
    n = int(counts[sel].sum())
    return {"joints": joints,
            "parts": {name: float(np.mean(joints[list(idx)])) for name, idx in MPII_PARTS.items()},
            "mean": float(np.mean(joints[sel])),
            "mean_weighted": float(100.0 * correct[sel].sum() / n) if n else float("nan"),
            "threshold": float(threshold)}


def pckh_curve_from_distances(distances: np.ndarray, thresholds=None) -> dict:
    """PCKh mean (14 joints, unweighted) at each threshold, from stored distances.

    Default thresholds: 0, 0.05, ..., 3.0 (wide enough to contain the matched threshold of 64-px
    crops). Returns dict(thresholds (T,), mean (T,)).
    """
    t = np.round(np.arange(0.0, 3.0001, 0.05), 4) if thresholds is None else np.asarray(thresholds, np.float64)
    return {"thresholds": t, "mean": np.array([pckh_from_distances(distances, float(x))["mean"] for x in t])}


# --------------------------------------------------------------------------------------------
# PCKh at matched tolerance (the downscaled protocol: README, "The experimental protocol")
# --------------------------------------------------------------------------------------------
#
# PCKh@0.5 allows an error of half a head size. What a network must resolve is its output grid: a
# heatmap cell is `stride` = 4 input pixels. On MPII the crop is 256 px and the head is large in
# it; on our 64-px synthetic crops the head is ~6.2 px, so half a head is under one cell. The
# "matched" threshold gives the synthetic data the same tolerance *in heatmap cells* as MPII at
# 256 px:
#
#   1. MPII's head size in 256-px crop pixels.  The crop is the box of side 1.25 * 200 * scale
#      resized to 256 (HRNet, bearpaw, Newell), so head_px_256 = head_size * 256 / (250 * scale).
#      MPII's `scale` (person height / 200) is not stored in the validation fixture, but it is a
#      function of the head annotation: 200 * scale = 6 * ||head top - upper neck|| (checked to
#      five digits on every public MPII record we could read that has both), and MPII's upper neck
#      and head top lie on the head box diagonal at 0.8 of its length, so head_size = 0.6 * diag =
#      0.75 * ||head top - upper neck||. Hence, for every person,
#          head_px_256 = 0.75 / 6 * 256 / 1.25 = 25.6 px
#      (`mpii_crop_head_px(..., method="scale")`: median 25.600 over the 2,932 validation people
#      with both points, 1st-99th percentile 25.40-25.82).
#      Cross-check with an estimate of the person's height that does not use MPII's scale rule
#      (`method="ankles"`): height = distance from the head top to the midpoint of the two
#      ankles, for the 2,051 people whose head top and both ankles are annotated, scale = height /
#      200. Median head_px_256 = 29.97 px. It is larger because that height leaves out the feet
#      and shrinks for sitting, bending and foreshortened people (median 200 * scale / height =
#      1.17 over those people), so it overstates the head in the crop; we use MPII's own rule.
#   2. Tolerance in cells: MPII_TOLERANCE_CELLS = 0.5 * 25.6 / 4 = 3.2 heatmap cells.
#   3. Synthetic head size. SyntheticPose frames each person the same way (box 1.25x the person),
#      so its head size scales with the crop side R: median head_size / R = 0.0973 (2,000
#      training-split samples at difficulty 0.3, seed 0, no augmentation; 6.23 px at R = 64,
#      `tinybin.experiments.synthetic_head_fraction` recomputes it).
#   4. matched_threshold = MPII_TOLERANCE_CELLS * stride / (SYNTHETIC_POSE_HEAD_FRACTION * R)
#      = 3.2 * 4 / 6.23 = 2.055 head sizes at R = 64 (1.03 at R = 128, where the head spans more
#      cells).
#
# tests/test_metrics.py recomputes step 1 from the MPII fixture and tests/test_experiments.py
# step 3 from the generator, each against the constants below.

MPII_CROP_HEAD_PX = 25.6
"""MPII head size (0.6 x head-box diagonal) in pixels of the usual 256-px training crop."""

MPII_TOLERANCE_CELLS = 0.5 * MPII_CROP_HEAD_PX / 4
"""PCKh@0.5 tolerance on MPII 256-px crops in heatmap cells (stride 4): 3.2."""

SYNTHETIC_POSE_HEAD_FRACTION = 0.0973
"""Median head size / crop side of ``SyntheticPose`` (difficulty 0.3, no augmentation)."""


def matched_threshold(resolution: int, stride: int = 4, head_fraction: float = SYNTHETIC_POSE_HEAD_FRACTION,
                      tolerance_cells: float = MPII_TOLERANCE_CELLS) -> float:
    """PCKh threshold (in head sizes) whose tolerance in heatmap cells equals MPII's at 256 px.

    ``t = tolerance_cells * stride / (head_fraction * resolution)``: a joint within t head sizes is
    within ``tolerance_cells`` cells of a ``stride``-pixel heatmap. 2.055 at resolution 64.
    """
    if not resolution > 0 or not stride > 0 or not head_fraction > 0:
        raise ValueError(f"matched_threshold: resolution, stride and head_fraction must be positive, got "
                         f"{resolution!r}, {stride!r}, {head_fraction!r}")
    return float(tolerance_cells * stride / (head_fraction * resolution))


def mpii_crop_head_px(gt: np.ndarray, headboxes: np.ndarray, visible: np.ndarray, method: str = "scale",
                      crop: int = 256) -> np.ndarray:
    """Head size of each MPII person in pixels of the usual ``crop``-px training crop.

    gt: (M, 16, 2) joints in MPII order; headboxes: (M, 2, 2); visible: (M, 16) annotated flags.
    The crop is a box of side 1.25 * 200 * scale resized to ``crop``, so
    ``head_px = head_size * crop / (1.25 * 200 * scale)`` with the person's scale estimated as

      method="scale":  200 * scale = 6 * ||head top - upper neck|| (MPII's own rule);
      method="ankles": 200 * scale = ||head top - midpoint of the two ankles|| (a height estimate).

    Returns (M,) with NaN for people lacking the joints the method needs.
    """
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible).astype(bool)
    if gt.ndim != 3 or gt.shape[1:] != (16, 2) or vis.shape != gt.shape[:2]:
        raise ValueError(f"mpii_crop_head_px: expected gt (M, 16, 2) and visible (M, 16), got {gt.shape} "
                         f"and {vis.shape}")
    hs = 0.6 * np.linalg.norm(np.asarray(headboxes, np.float64)[:, 1] - np.asarray(headboxes, np.float64)[:, 0],
                              axis=-1)
    if method == "scale":
        height = 6.0 * np.linalg.norm(gt[:, 9] - gt[:, 8], axis=-1)
        ok = vis[:, 9] & vis[:, 8]
    elif method == "ankles":
        height = np.linalg.norm(gt[:, 9] - 0.5 * (gt[:, 0] + gt[:, 5]), axis=-1)
        ok = vis[:, 9] & vis[:, 0] & vis[:, 5]
    else:
        raise ValueError(f"mpii_crop_head_px: method must be 'scale' or 'ankles', got {method!r}")
    ok &= (height > 0) & (hs > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, hs * crop / (1.25 * height), np.nan)


def mpii_tolerance(path: str, method: str = "scale", stride: int = 4, crop: int = 256) -> dict:
    """Recompute MPII's PCKh@0.5 tolerance in heatmap cells from an MPII validation .mat.

    path: a file with ``pos_gt_src``, ``jnt_missing``, ``headboxes_src`` (the layout of the
    Tompson validation detections). Returns dict(head_px (median head size in crop pixels),
    tolerance_cells = 0.5 * head_px / stride, n (people used), method).
    """
    from scipy.io import loadmat
    d = loadmat(path)
    px = mpii_crop_head_px(d["pos_gt_src"].transpose(2, 0, 1), d["headboxes_src"].transpose(2, 0, 1),
                           1 - d["jnt_missing"].T, method, crop)
    px = px[np.isfinite(px)]
    if px.size == 0:
        raise ValueError(f"mpii_tolerance: no person in {path} has the joints method {method!r} needs")
    med = float(np.median(px))
    return {"head_px": med, "tolerance_cells": 0.5 * med / stride, "n": int(px.size), "method": method}


# --------------------------------------------------------------------------------------------
# Faces: NME, yaw bins, CED / AUC / failure rate
# --------------------------------------------------------------------------------------------


def nme(pred: np.ndarray, gt: np.ndarray, norm="box", visible=None) -> np.ndarray:
    """Per-image normalised mean error (paper section 6.3).

    pred, gt: (M, K, 2); visible: (M, K) or None (all points). Per image,

        NME[m] = mean over annotated k of ||pred[m, k] - gt[m, k]|| / d[m]

    with d[m] given by ``norm``:
      "box"         sqrt(w * h) of the tight box around the annotated gt points (3DDFA's
                    AFLW2000-3D protocol, used for the paper's AFLW2000-3D numbers);
      "interocular" ||gt[36] - gt[45]|| (outer eye corners, 68-point layout, 300W);
      (M,) array    any other normaliser.
    Returns (M,) plain ratios (multiply by 100 for %). Images with no annotated point give NaN;
    a zero normaliser raises ValueError.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 2 or pred.shape != gt.shape:
        raise ValueError(f"nme: expected pred and gt of the same shape (M, K, 2), got {pred.shape} and {gt.shape}")
    M, K = gt.shape[:2]
    if M == 0 or K == 0:
        raise ValueError(f"nme: empty input, gt shape {gt.shape}")
    vis = np.ones((M, K), bool) if visible is None else np.asarray(visible).astype(bool)
    if vis.shape != (M, K):
        raise ValueError(f"nme: visible must be ({M}, {K}), got shape {vis.shape}")
    if isinstance(norm, str):
        if norm == "box":
            lo = np.where(vis[..., None], gt, np.inf).min(1)
            hi = np.where(vis[..., None], gt, -np.inf).max(1)
            wh = hi - lo
            with np.errstate(invalid="ignore"):
                d = np.sqrt(wh[:, 0] * wh[:, 1])
        elif norm == "interocular":
            if K != 68:
                raise ValueError(f"nme: 'interocular' needs the 68-point layout, got K={K}")
            a, b = FACE68_OUTER_EYE_CORNERS
            d = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
        else:
            raise ValueError(f"nme: norm must be 'box', 'interocular' or an (M,) array, got {norm!r}")
    else:
        d = np.asarray(norm, dtype=np.float64).reshape(-1)
        if d.shape != (M,):
            raise ValueError(f"nme: normaliser array must be ({M},), got shape {np.shape(norm)}")
    used = vis.any(1)
    bad = used & ~(d > 0)
    if np.any(bad):
        raise ValueError(f"nme: normaliser is zero or not finite for {int(bad.sum())} image(s) "
                         f"(first at index {int(np.flatnonzero(bad)[0])}); a point-like gt box?")
    err = np.where(vis, np.linalg.norm(pred - gt, axis=-1), 0.0).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = err / vis.sum(1) / d
    return np.where(used, out, np.nan)


YAW_BINS: tuple[tuple[str, float, float], ...] = (("[0,30]", -np.inf, 30.0), ("(30,60]", 30.0, 60.0),
                                                   ("(60,90]", 60.0, np.inf))
"""|yaw| bins of the AFLW2000-3D protocol: [0, 30], (30, 60], (60, 90]; as in 3DDFA, anything
above 60 degrees falls in the last bin."""


def nme_by_yaw(errors: np.ndarray, yaw_deg: np.ndarray) -> dict:
    """AFLW2000-3D protocol: mean NME per |yaw| bin and the mean of the bin means (paper Table 9).

    errors: (M,) per-image NME; yaw_deg: (M,) yaw in degrees (sign ignored).
    Returns {"[0,30]": mean, "(30,60]": mean, "(60,90]": mean, "mean": mean of the bin means,
    "counts": {bin: n}}. An empty bin is NaN and left out of "mean" (so with all three bins filled
    "mean" is exactly the protocol's number; check "counts").
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    y = np.abs(np.asarray(yaw_deg, dtype=np.float64).reshape(-1))
    if e.shape != y.shape:
        raise ValueError(f"nme_by_yaw: errors {e.shape} and yaw {y.shape} differ in length")
    if e.size == 0:
        raise ValueError("nme_by_yaw: empty input")
    if np.any(np.isnan(y)):
        raise ValueError("nme_by_yaw: yaw contains NaN")
    out: dict = {"counts": {}}
    means = []
    for name, lo, hi in YAW_BINS:
        sel = (y > lo) & (y <= hi)
        n = int(sel.sum())
        out["counts"][name] = n
        m = float(np.mean(e[sel])) if n else float("nan")
        out[name] = m
        if n:
            means.append(m)
    out["mean"] = float(np.mean(means))
    return out


def _check_errors(errors, threshold, name):
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if e.size == 0:
        raise ValueError(f"{name}: empty errors")
    if np.any(np.isnan(e)):
        raise ValueError(f"{name}: errors contain NaN (drop unevaluable images first; inf counts as a failure)")
    if not threshold > 0:
        raise ValueError(f"{name}: threshold must be positive, got {threshold!r}")
    return e


def ced(errors: np.ndarray, threshold: float, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution on ``n`` points of [0, threshold].

    ``CED(x) = #{i : e_i <= x} / M``. Returns (x (n,), fraction (n,)) for plotting (FAN/DAN layout).
    """
    e = np.sort(_check_errors(errors, threshold, "ced"))
    x = np.linspace(0.0, threshold, n)
    return x, np.searchsorted(e, x, side="right") / e.size


def auc(errors: np.ndarray, threshold: float) -> float:
    """Area under the CED curve up to ``threshold``, normalised to [0, 1].

    Exact closed form of ``(1 / a) * integral_0^a CED(x) dx`` (what DAN approximates with Simpson's
    rule on a 1e-4 grid): ``AUC_a = mean_i max(0, 1 - e_i / a)``.
    """
    e = _check_errors(errors, threshold, "auc")
    return float(np.mean(np.maximum(0.0, 1.0 - e / threshold)))


def failure_rate(errors: np.ndarray, threshold: float) -> float:
    """Fraction of images with error above the threshold: ``1 - CED(threshold)``."""
    e = _check_errors(errors, threshold, "failure_rate")
    return float(np.mean(e > threshold))


# --------------------------------------------------------------------------------------------
# Segmentation (paper section 9; Long et al., FCN)
# --------------------------------------------------------------------------------------------


def confusion(pred_labels: np.ndarray, gt_labels: np.ndarray, n_classes: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """Confusion matrix, rows = ground truth, columns = prediction: ``hist[g, p] = #pixels``.

    pred_labels, gt_labels: integer arrays of the same shape (any, e.g. (N, H, W)). Pixels whose gt
    label is outside [0, n_classes) (void, e.g. 255) are dropped; a prediction outside that range
    raises ValueError. Accumulate over a dataset by passing the running matrix as ``out`` (added
    in place and returned) or by summing the returned matrices; take ratios only at the end.
    Returns (n_classes, n_classes) int64.
    """
    p = np.asarray(pred_labels)
    g = np.asarray(gt_labels)
    if p.shape != g.shape:
        raise ValueError(f"confusion: pred shape {p.shape} differs from gt shape {g.shape}")
    if not (np.issubdtype(p.dtype, np.integer) and np.issubdtype(g.dtype, np.integer)):
        raise ValueError(f"confusion: labels must be integers, got {p.dtype} and {g.dtype}")
    n = int(n_classes)
    if n < 1:
        raise ValueError(f"confusion: n_classes must be >= 1, got {n_classes!r}")
    keep = (g >= 0) & (g < n)
    p, g = p[keep].astype(np.int64), g[keep].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= n):
        raise ValueError(f"confusion: predicted labels must lie in [0, {n}), got range [{p.min()}, {p.max()}]")
    hist = np.bincount(n * g + p, minlength=n * n).reshape(n, n)
    if out is not None:
        if out.shape != (n, n):
            raise ValueError(f"confusion: out must be ({n}, {n}), got {out.shape}")
        out += hist
        return out
    return hist


def segmentation_scores(confusion: np.ndarray) -> dict:
    """FCN's scores from an accumulated confusion matrix (rows gt, columns prediction).

        pixel_acc = trace(hist) / sum(hist)
        acc_c     = hist[c, c] / sum_p hist[c, p]                         mean_acc = nanmean(acc_c)
        iu_c      = hist[c, c] / (sum_p hist[c, p] + sum_g hist[g, c] - hist[c, c])   mean_iu = nanmean(iu_c)
        fw_iu     = sum_c freq_c * iu_c over classes with freq_c > 0,  freq_c = sum_p hist[c, p] / sum(hist)

    Classes absent from both gt and prediction are NaN and skipped by the means. Returns dict with
    the four floats plus per-class ``acc`` and ``iu`` arrays (fractions in [0, 1]).
    """
    hist = np.asarray(confusion, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[0] != hist.shape[1]:
        raise ValueError(f"segmentation_scores: expected a square confusion matrix, got shape {hist.shape}")
    total = hist.sum()
    if not total > 0:
        raise ValueError("segmentation_scores: empty confusion matrix (no labelled pixels)")
    diag = np.diag(hist)
    gt_count, pred_count = hist.sum(1), hist.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag / gt_count
        iu = diag / (gt_count + pred_count - diag)
    freq = gt_count / total
    present = freq > 0
    return {
        "pixel_acc": float(diag.sum() / total),
        "mean_acc": float(np.nanmean(acc)),
        "mean_iu": float(np.nanmean(iu)),
        "fw_iu": float(np.sum(freq[present] * iu[present])),
        "acc": acc,
        "iu": iu,
    }


def boundary_share(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, the share of its pixels that lie on a boundary: a pixel whose 4-neighbourhood
    (up, down, left, right, inside the image) holds another label.

    labels: integer array (H, W) or (N, H, W). Returns (n_classes,) float64, NaN for a class with
    no pixel. A part that is mostly boundary is one where a one-pixel error along its outline costs
    a large share of its IU: at a 16x16 output the eyes are almost all boundary, at 64x64 much less
    (notebook 09). Example: in [[0, 0, 0], [0, 1, 0], [0, 0, 0]] class 1 is all boundary, and 4 of
    the 8 pixels of class 0 (the edge centres) touch it: [0.5, 1.0].
    """
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"boundary_share: labels must be integers, got {lab.dtype}")
    if lab.ndim == 2:
        lab = lab[None]
    if lab.ndim != 3:
        raise ValueError(f"boundary_share: expected (H, W) or (N, H, W) labels, got shape {labels.shape}")
    edge = np.zeros(lab.shape, bool)
    dv = lab[:, 1:, :] != lab[:, :-1, :]
    dh = lab[:, :, 1:] != lab[:, :, :-1]
    edge[:, 1:, :] |= dv
    edge[:, :-1, :] |= dv
    edge[:, :, 1:] |= dh
    edge[:, :, :-1] |= dh
    n = int(n_classes)
    keep = (lab >= 0) & (lab < n)
    total = np.bincount(lab[keep].ravel(), minlength=n)[:n].astype(np.float64)
    on_edge = np.bincount(lab[keep & edge].ravel(), minlength=n)[:n].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, on_edge / total, np.nan)
