"""``SyntheticFace``: 68 iBUG landmarks from a 3D template, posed and shaded, with 7-class part
masks (stand-in for 300W-LP / AFLW2000-3D, paper section 6.3, and 300W part masks, section 9)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..skeletons import FACE68_FLIP, FACE_PART_POLYGONS, FACE_PARTS
from .augment import _face_center_scale
from .render import LABEL, DisplayList, head_params, render_list
from .scenes import (_background, _clamp, _clip01, _cloth, _clutter, _convex_hull, _finish, _hair, _hsv, _luma,
                     _occluders, _rx, _ry, _rz, _skin)
from .synthetic import _batch, _Synthetic


# ============================================================================================
# 4. SyntheticFace: 68 iBUG landmarks from a 3D template, posed and shaded
# ============================================================================================

def _face_template() -> np.ndarray:
    """Our 68-point 3D mean shape (iBUG order), in face units: X to the image right of a frontal
    face (the subject's left), Y up, Z towards the viewer; outer eye corners at X = +-0.72, chin at
    Y = -1.07, nose tip 0.45 in front of the eye plane."""
    jaw = [(-0.98, 0.25, -0.75), (-0.96, 0.02, -0.72), (-0.92, -0.20, -0.62), (-0.86, -0.42, -0.50),
           (-0.77, -0.62, -0.36), (-0.64, -0.80, -0.22), (-0.48, -0.94, -0.08), (-0.26, -1.03, 0.03),
           (0.0, -1.07, 0.07)]
    jaw = jaw + [(-x, y, z) for x, y, z in jaw[7::-1]]
    rbrow = [(-0.88, 0.50, -0.15), (-0.74, 0.60, 0.0), (-0.57, 0.63, 0.08), (-0.40, 0.61, 0.12), (-0.22, 0.55, 0.13)]
    lbrow = [(-x, y, z) for x, y, z in rbrow[::-1]]
    bridge = [(0.0, 0.35, 0.10), (0.0, 0.17, 0.22), (0.0, 0.0, 0.34), (0.0, -0.17, 0.45)]
    nostrils = [(-0.2, -0.30, 0.12), (-0.1, -0.33, 0.20), (0.0, -0.35, 0.26), (0.1, -0.33, 0.20), (0.2, -0.30, 0.12)]
    reye = [(-0.72, 0.28, -0.10), (-0.57, 0.37, 0.0), (-0.38, 0.37, 0.02), (-0.24, 0.28, 0.0),
            (-0.38, 0.22, 0.02), (-0.57, 0.22, 0.0)]
    # left eye: 42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid
    leye = [(-x, y, z) for x, y, z in (reye[3], reye[2], reye[1], reye[0], reye[5], reye[4])]
    outer = [(-0.40, -0.62, 0.02), (-0.26, -0.55, 0.13), (-0.11, -0.51, 0.20), (0.0, -0.53, 0.22),
             (0.11, -0.51, 0.20), (0.26, -0.55, 0.13), (0.40, -0.62, 0.02), (0.27, -0.73, 0.12),
             (0.13, -0.79, 0.17), (0.0, -0.80, 0.18), (-0.13, -0.79, 0.17), (-0.27, -0.73, 0.12)]
    inner = [(-0.33, -0.62, 0.04), (-0.11, -0.615, 0.14), (0.0, -0.615, 0.16), (0.11, -0.615, 0.14),
             (0.33, -0.62, 0.04), (0.11, -0.625, 0.13), (0.0, -0.625, 0.15), (-0.11, -0.625, 0.13)]
    T = np.array(jaw + rbrow + lbrow + bridge + nostrils + reye + leye + outer + inner, np.float64)
    assert T.shape == (68, 3)
    return T


FACE_TEMPLATE_3D: np.ndarray = _face_template()
"""(68, 3) float64: our 3D mean face (X right of a frontal face, Y up, Z towards the viewer)."""

# The face box's mean side (w + h) / 2 as a fraction of the crop side, as FAN's crop rule (side =
# 200 (w + h) / 190 of the landmark box) puts it; the NME scale of a heatmap cell follows from it
# (`tinybin.experiments.face_cell_nme`).
BOX_FRACTION = 0.475

# Head ellipsoid (cranium) in the same units, and the centre the per-point normals radiate from.
_CRANIUM_C = np.array([0.0, 0.38, -0.82])
_CRANIUM_R = np.array([0.99, 1.25, 1.05])
_NORMAL_C = np.array([0.0, 0.15, -0.9])
_FACE_NORMALS = (FACE_TEMPLATE_3D - _NORMAL_C) / np.linalg.norm(FACE_TEMPLATE_3D - _NORMAL_C, axis=1, keepdims=True)
_SIDE = np.sign(FACE_TEMPLATE_3D[:, 0])


def _face_shape(rng, d):
    """Template + identity (symmetric shape jitter) + expression (mouth open, smile, brows, blink).
    Returns (68, 3) in template units."""
    P = FACE_TEMPLATE_3D.copy()
    N = rng.normal
    X, Y, Z = P[:, 0], P[:, 1], P[:, 2]            # views into P
    X *= N(1.0, 0.05)
    jaw = np.arange(17)
    low = np.abs(np.arange(17) - 8) <= 5
    X[jaw[low]] *= N(1.0, 0.06)
    Y[jaw] -= N(0, 0.04) * np.sin(np.pi * jaw / 16)                      # chin length
    eyes = np.arange(36, 48)
    X[eyes] += _SIDE[eyes] * N(0, 0.025)
    c = np.array([P[36:42].mean(0), P[42:48].mean(0)])
    es, eh = N(1.0, 0.08), N(1.0, 0.12)
    for k, idx in enumerate((np.arange(36, 42), np.arange(42, 48))):
        P[idx, 0] = c[k, 0] + (P[idx, 0] - c[k, 0]) * es
        P[idx, 1] = c[k, 1] + (P[idx, 1] - c[k, 1]) * es * eh
    Y[17:27] += N(0, 0.035)
    nose_len = N(0, 0.04)
    Y[29:36] -= nose_len * np.array([0.5, 1, 1, 1, 1, 1, 1])
    X[31:36] *= N(1.0, 0.1)
    Z[27:36] *= N(1.0, 0.12)
    mouth = np.arange(48, 68)
    X[mouth] *= N(1.0, 0.07)
    Y[mouth] -= N(0, 0.03)
    lip = N(1.0, 0.15)
    Y[49:54] = -0.62 + (Y[49:54] + 0.62) * lip - 0.0
    Y[55:60] = -0.62 + (Y[55:60] + 0.62) * lip
    # Expression.
    if rng.random() < 0.35 + 0.2 * d:              # mouth open
        o = rng.uniform(0.04, 0.3 + 0.1 * d)
        Y[[65, 66, 67]] -= o
        Y[55:60] -= o * 0.95
        Y[[60, 64]] -= o * 0.3
        Y[[48, 54]] -= o * 0.25
        Y[jaw] -= o * 0.85 * np.clip(np.sin(np.pi * jaw / 16) ** 3, 0, 1)
    if rng.random() < 0.4:                          # smile
        s = rng.uniform(0.2, 1.0)
        for i, w in ((48, 1.0), (60, 0.8), (54, 1.0), (64, 0.8), (49, 0.4), (53, 0.4), (59, 0.4), (55, 0.4)):
            Y[i] += 0.09 * s * w
            X[i] += 0.05 * s * w * _SIDE[i]
    Y[17:27] += rng.uniform(-0.03, 0.08) * (rng.random() < 0.3)       # raised brows
    if rng.random() < 0.08:                         # blink: upper lids onto the lower ones
        for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
            Y[up] = Y[lo] + 0.01
    P += N(0, 0.01, P.shape)
    return P


def _face_pose(rng, d, yaw_range=None):
    if yaw_range is None:
        ymax = 30.0 + 60.0 * d
        yaw = rng.uniform(-ymax, ymax) if rng.random() < 0.7 else rng.normal(0, ymax / 2.5)
        yaw = _clamp(yaw, -ymax, ymax)              # |yaw| <= 30 + 60 difficulty <= 90
    else:
        yaw = rng.uniform(*yaw_range)               # explicit range: uniform (AFLW2000-3D's span)
    pitch = float(np.clip(rng.normal(0, 6 + 14 * d), -40, 40))
    roll = float(np.clip(rng.normal(0, 5 + 15 * d), -45, 45))
    return yaw, pitch, roll


def _face_rotation(yaw, pitch, roll):
    """Template (X right, Y up, Z to viewer) -> camera (x right, y down, z away), rotated:
    positive yaw turns the nose to the image right, positive pitch tilts it down, positive roll
    turns the face clockwise on screen."""
    flip = np.diag([1.0, -1.0, -1.0])
    r = math.radians
    return _rz(r(roll)) @ _rx(r(pitch)) @ _ry(-r(yaw)) @ flip


class SyntheticFace(_Synthetic):
    """Procedurally rendered faces with the 68 iBUG landmarks and a 7-class part mask
    (stand-in for 300W-LP / AFLW2000-3D and the 300W part masks, paper sections 6.3 and 9).

    ``ds[i]`` (deterministic per (seed, split, i)):
      image (R, R, 3) float32; points (68, 2) float32 -- every landmark, visible or self-occluded,
      as in AFLW2000-3D; visible (68,) float32 ones (all annotated); self_occluded (68,) float32
      (the point's surface normal faces away from the camera); yaw, pitch, roll float32 degrees
      (positive yaw: the nose turns to the image right, i.e. the subject turns to their left;
      positive pitch: looking down; positive roll: clockwise on screen); mask (R, R) uint8 part
      labels ``tinybin.skeletons.FACE_PARTS`` (0 background, 1 skin, 2 lower lip, 3 upper lip,
      4 inner mouth, 5 eyes, 6 nose), filled from the *projected landmarks* with the polygons of
      ``FACE_PART_POLYGONS`` in order (pixel centres, non-zero winding); center (2,) float32 = the
      landmark box centre and scale = (w + h) / 190 of that box (FAN's face-crop rule), so
      ``crop_transform(center, scale, R)`` frames the face.

    ``yaw_range``: None (default) draws yaw from a mixture (70% uniform, 30% normal) clamped to
    +-(30 + 60 difficulty) degrees; ``(lo, hi)`` draws it uniformly from [lo, hi] degrees instead,
    e.g. ``(-90, 90)``, the span of AFLW2000-3D (the face experiments of paper Table 9 use it);
    pitch and roll still follow ``difficulty``.

    A 3D template (``FACE_TEMPLATE_3D``) gets random identity (face, jaw, eye, nose and mouth
    proportions) and expression (mouth open, smile, brows, blinks), is rotated by yaw, pitch and roll and projected orthographically (weak
    perspective). It is painted over a shaded ellipsoid cranium with hair, ears, neck and
    shoulders: skin shaded by the surface normal, eyes, brows, nose shading and nostrils, lips,
    inner mouth and teeth; hidden features (the far eye and brow under large yaw) are skipped.
    """

    kind = "face"
    num_points = 68

    def __init__(self, n: int, resolution: int = 64, seed: int = 0, difficulty: float = 0.5, split: str = "train",
                 yaw_range: tuple[float, float] | None = None):
        super().__init__(n, resolution=resolution, seed=seed, difficulty=difficulty, split=split)
        if yaw_range is not None:
            lo, hi = (float(v) for v in yaw_range)
            if not -90.0 <= lo < hi <= 90.0:
                raise ValueError(f"SyntheticFace: yaw_range must be (lo, hi) with -90 <= lo < hi <= 90 degrees, "
                                 f"got {yaw_range!r}")
            yaw_range = (lo, hi)
        self.yaw_range = yaw_range

    @property
    def flip_perm(self) -> np.ndarray:
        return FACE68_FLIP

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None,
              **augment_kw) -> dict:
        """Stack samples (image (N, R, R, 3), points (N, 68, 2), mask (N, R, R), ...).
        augment=True: as ``SyntheticPose.batch`` with ``FACE68_FLIP``; the mask is warped too
        (nearest), and yaw changes sign under a flip."""
        return _batch(self, indices, augment, rng, augment_kw)

    def _render(self, rng, impl=render_list):
        R, d = self.resolution, self.difficulty
        P = _face_shape(rng, d)
        yaw, pitch, roll = _face_pose(rng, d, self.yaw_range)
        Rot = _face_rotation(yaw, pitch, roll)
        cam = P @ Rot.T                                                 # (68, 3) unit face coords
        lo, hi = cam[:, :2].min(0), cam[:, :2].max(0)
        unit = BOX_FRACTION * R * rng.uniform(0.9, 1.1) / (0.5 * ((hi - lo).sum()))  # pixels per face unit
        target = np.full(2, (R - 1) / 2) + rng.normal(0, 0.03 * R, 2)
        offset = target - 0.5 * (lo + hi) * unit

        def proj(p):
            c = np.asarray(p, np.float64) @ Rot.T
            return c[..., :2] * unit + offset

        pts = cam[:, :2] * unit + offset
        normals = _FACE_NORMALS @ Rot.T
        self_occ = normals[:, 2] > 0.0
        # Appearance.
        skin, hair = _skin(rng), _hair(rng)
        lips = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([0.1, 0.0, 0.02]) + rng.normal(0, 0.03, 3), 0, 1)
        light = (rng.normal(0, 0.6), rng.normal(-0.4, 0.3), -1.0)
        amb, dif = rng.uniform(0.3, 0.55), rng.uniform(0.45, 0.7)
        hairline = (rng.uniform(-0.25, 0.0), rng.uniform(0.45, 0.75), 0.12) if rng.random() > 0.08 else (-10, 0, 0)
        shirt = _cloth(rng)
        dl = DisplayList()
        bg = _background(rng, R, d, avoid_luma=_luma(skin))
        _clutter(dl, rng, R, d * 0.8, [skin, hair, shirt])
        # Shoulders and neck turn only partly with the head.
        Rb = _face_rotation(0.3 * yaw, 0.0, 0.3 * roll)

        def bproj(p):
            return (np.asarray(p, np.float64) @ Rb.T)[..., :2] * unit + offset

        c = bproj([0.0, -2.45, -0.9])
        dl.add(dl.ellipse(c, 2.5 * unit * rng.uniform(0.9, 1.1), 1.0 * unit, math.radians(0.3 * roll), shirt,
                          shade=0.3, grad=(0, -0.3 / unit)))
        if rng.random() < 0.45:                                          # long hair behind
            hc = proj(_CRANIUM_C + np.array([0, -0.55, -0.2]))
            dl.add(dl.ellipse(hc, 1.2 * unit * rng.uniform(0.95, 1.15), 1.75 * unit * rng.uniform(0.85, 1.1),
                              math.radians(roll), hair * 0.85, shade=0.4))
        n0, n1 = bproj([0.0, -0.55, -0.85]), bproj([0.0, -1.7, -0.9])
        nw = rng.uniform(0.55, 0.7)
        dl.add(dl.capsule(n0, n1, nw * unit, nw * 1.1 * unit, skin * 0.78, shade=0.5))
        ear_rows = []
        for sx in (-1, 1):
            e3 = np.array([0.97 * sx, 0.12, -0.8])
            en = (Rot @ np.array([sx, 0.0, -0.2]))[2]
            ax = proj(e3)
            row = dl.ellipse(ax, 0.16 * unit, 0.28 * unit, math.radians(roll), skin * 0.9, shade=0.35)
            if en >= -0.2:
                dl.add(row)                                              # ears facing away: behind the head
            else:
                ear_rows.append(row)
        # Cranium with hair.
        Rc = Rot @ np.diag([1.0, -1.0, -1.0])                            # head frame: x, y down, z back
        hc2 = proj(_CRANIUM_C)
        hp = head_params(hc2, Rc, _CRANIUM_R * unit, skin, hair, hairline=hairline, light=light,
                         ambient=amb, diffuse=dif)
        dl.add(dl.head(hp))
        for row in ear_rows:
            dl.add(row)
        # Lower face: the hull of jaw, nose and mouth points, shaded as a larger ellipsoid.
        fp = head_params(proj(_CRANIUM_C + np.array([0, -0.2, 0.05])), Rc, _CRANIUM_R * unit * [1.08, 1.2, 1.1],
                         skin, hair, light=light, ambient=amb, diffuse=dif)
        start = len(dl.data)
        dl.data.extend(fp)
        hull = _convex_hull(pts[list(range(17)) + [30, 31, 33, 35] + list(range(48, 60))])
        dl.add(dl.shaded_polygon(hull, start, rounding=0.0))
        # Features, skipped when they face away from the camera.
        def facing(idx):
            return normals[idx, 2].mean() < -0.05

        tone = _clip01
        dark = skin * 0.55
        nose_side = 1 if light[0] < 0 else -1
        dl.add(dl.polygon(pts[[27, 28, 29, 30, 33 + 2 * nose_side, 33]], dark, alpha=0.25))
        for a, b in ((31, 32), (34, 35)):
            if facing([a, b]):
                dl.add(dl.ellipse(0.5 * (pts[a] + pts[b]), 0.055 * unit, 0.03 * unit, math.radians(roll),
                                  skin * 0.3, alpha=0.8))
        dl.add(dl.capsule(pts[28], pts[30], 0.035 * unit, 0.05 * unit, tone(skin * 1.12), alpha=0.35))
        brow_col = hair * 0.8 if rng.random() < 0.8 else skin * 0.45
        bw = rng.uniform(0.035, 0.06)
        for idx in (range(17, 22), range(22, 27)):
            idx = list(idx)
            if facing(idx):
                for a, b in zip(idx[:-1], idx[1:]):
                    dl.add(dl.capsule(pts[a], pts[b], bw * unit, bw * unit, brow_col, alpha=0.9))
        iris = _hsv(rng.uniform(0.05, 0.6), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.5))
        for idx in (list(range(36, 42)), list(range(42, 48))):
            if facing(idx):
                dl.add(dl.polygon(pts[idx], tone(np.array([0.92, 0.9, 0.88]) * rng.uniform(0.8, 1.0))))
                h = np.linalg.norm(pts[idx[1]] - pts[idx[5]]) + np.linalg.norm(pts[idx[2]] - pts[idx[4]])
                ri = min(0.085 * unit, 0.35 * h)
                if ri > 0.05:
                    dl.add(dl.ellipse(pts[idx].mean(0), ri, ri, 0.0, iris))
                    dl.add(dl.ellipse(pts[idx].mean(0), ri * 0.45, ri * 0.45, 0.0, (0.02, 0.02, 0.02)))
                for a, b in zip(idx[:3], idx[1:4]):                      # upper lid line
                    dl.add(dl.capsule(pts[a], pts[b], 0.02 * unit, 0.02 * unit, skin * 0.25, alpha=0.9))
        dl.add(dl.polygon(pts[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]], lips, grad=(0, -0.2 / unit)))
        dl.add(dl.polygon(pts[[48, 60, 67, 66, 65, 64, 54, 55, 56, 57, 58, 59]], tone(lips * 1.08),
                          grad=(0, -0.3 / unit)))
        dl.add(dl.polygon(pts[60:68], (0.22, 0.06, 0.06)))
        gap = np.linalg.norm(pts[66] - pts[62])
        if gap > 0.08 * unit:                                            # teeth under the upper lip
            up = pts[[60, 61, 62, 63, 64]]
            down = up + (pts[66] - pts[62]) * 0.35
            dl.add(dl.polygon(np.concatenate([up, down[::-1]]), (0.9, 0.88, 0.8)))
        anchors = pts[[30, 36, 45, 57, 8, 0, 16]]
        _occluders(dl, rng, R, d, anchors, 0.3 * d, unit * 2.0)
        # Part mask from the projected landmarks, in the fill order of FACE_PART_POLYGONS.
        for name, idx in FACE_PART_POLYGONS:
            dl.add(dl.polygon(pts[list(idx)], (0, 0, 0), target=LABEL, label=FACE_PARTS.index(name)))
        prims, data = dl.arrays()
        occ = np.zeros((R, R), np.float32)
        mask = np.zeros((R, R), np.uint8)
        impl(bg, occ, mask, prims, data)
        img = _finish(bg, rng, R, d * 0.8)
        center, scale = _face_center_scale(pts)
        return dict(image=img, points=pts.astype(np.float32), visible=np.ones(68, np.float32),
                    self_occluded=self_occ.astype(np.float32), yaw=np.float32(yaw), pitch=np.float32(pitch),
                    roll=np.float32(roll), mask=mask, center=center, scale=scale)


def balanced_yaw_subset(yaw: np.ndarray, per_bin: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices of a subset with the same number of images in each |yaw| bin [0, 30], (30, 60],
    (60, 90] (the bins of ``tinybin.metrics.YAW_BINS``), as the paper's CED on AFLW2000-3D (Fig. 8b:
    a random subset of 696 images, 232 per bin).

    yaw: (M,) degrees (sign ignored). per_bin: images per bin, default the smallest bin's count; a
    bin with fewer images raises ValueError. Images are drawn without replacement with
    ``np.random.default_rng(seed)``. Returns sorted (3 * per_bin,) int64 indices into ``yaw``.
    """
    from ..metrics import YAW_BINS
    y = np.abs(np.asarray(yaw, dtype=np.float64).reshape(-1))
    if y.size == 0 or np.any(~np.isfinite(y)):
        raise ValueError("balanced_yaw_subset: yaw must be a non-empty array of finite angles")
    if np.any(y > 90.0):
        raise ValueError(f"balanced_yaw_subset: |yaw| must be <= 90 degrees, got {y.max():g}")
    bins = [np.flatnonzero((y > lo) & (y <= hi)) for _, lo, hi in YAW_BINS]
    counts = [len(b) for b in bins]
    k = min(counts) if per_bin is None else int(per_bin)
    if k < 1 or k > min(counts):
        raise ValueError(f"balanced_yaw_subset: per_bin = {k} but the bins hold {counts} images")
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(b, k, replace=False) for b in bins])).astype(np.int64)
