"""Tests for tinybin.data (re-exported by datasets.py): synthetic pose/face sets, the display-list
renderer, the real-format loaders.

Every loader is exercised on fixture files this test writes in the real format into ``tmp_path``
(``scipy.io.savemat`` struct arrays for MPII RELEASE, a JSON list for MPII JSON, ``.pts`` text,
LSP / LSPET ``joints.mat``, AFLW2000-3D per-image ``.mat``).
"""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io
from PIL import Image

import tinybin.data as datasets
from tinybin.data import (RecordDataset, SyntheticFace, SyntheticPose, load_300w, load_aflw2000, load_lsp,
                          load_mpii_json, load_mpii_mat, read_pts)
from tinybin.data.render import F_TARGET, LABEL, _sd_ref
from tinybin.data.scenes import _ry, _rz, _sample_seed, _upsample
from tinybin.skeletons import FACE68_FLIP, FACE_PARTS, MPII_FLIP
from tinybin.transforms import apply_affine

R = 64


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


# --------------------------------------------------------------------------------------------
# Synthetic sets: determinism, shapes, geometry
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SyntheticPose, SyntheticFace])
def test_deterministic_per_seed_split_index(cls):
    ds = cls(10, resolution=R, seed=3)
    a, b = ds[4], cls(10, resolution=R, seed=3)[4]
    assert _same(a, b)
    assert not np.array_equal(a["image"], ds[5]["image"])
    assert not np.array_equal(a["points"], ds[5]["points"])
    assert not np.array_equal(a["image"], cls(10, resolution=R, seed=4)[4]["image"])
    assert not np.array_equal(a["image"], cls(10, resolution=R, seed=3, split="test")[4]["image"])
    assert _same(ds[-1], ds[9])
    with pytest.raises(IndexError):
        ds[10]


@pytest.mark.parametrize("cls", [SyntheticPose, SyntheticFace])
def test_bad_arguments(cls):
    with pytest.raises(ValueError, match="split"):
        cls(4, split="holdout")
    with pytest.raises(ValueError, match="difficulty"):
        cls(4, difficulty=1.5)
    with pytest.raises(ValueError, match="resolution"):
        cls(4, resolution=8)


@pytest.mark.parametrize("res", [48, 64])
def test_pose_sample_structure(res):
    ds = SyntheticPose(40, resolution=res, seed=1)
    b = ds.batch(range(40))
    n = 40
    assert b["image"].shape == (n, res, res, 3) and b["image"].dtype == np.float32
    assert b["image"].min() >= 0 and b["image"].max() <= 1
    assert b["points"].shape == (n, 16, 2) and b["points"].dtype == np.float32
    assert b["visible"].shape == (n, 16) and set(np.unique(b["visible"])) <= {0.0, 1.0}
    assert b["occluded"].shape == (n, 16)
    assert b["center"].shape == (n, 2) and b["scale"].shape == (n,) and b["head_size"].shape == (n,)
    assert np.all(np.isfinite(b["points"]))
    # Visible joints lie inside the image; occluded ones are in frame but not visible.
    vis = b["visible"] > 0
    p = b["points"]
    assert np.all((p[vis] >= 0) & (p[vis] <= res - 1))
    occ = b["occluded"] > 0
    assert not np.any(vis & occ)
    assert np.all((p[occ] >= 0) & (p[occ] <= res - 1))
    assert vis.mean() > 0.7                    # most joints are visible at the default difficulty
    # The figure fills a consistent part of the frame: box of 200 * scale is about the image.
    assert np.all(np.abs(200 * b["scale"] / res - 1) < 0.45)
    # Head size tracks person size (MPII: about 0.6 x head diagonal ~ 0.1 x box side).
    ratio = b["head_size"] / (200 * b["scale"])
    assert np.all((ratio > 0.05) & (ratio < 0.15))
    # The head (top and upper neck) lies within ~1.5 head sizes of each other.
    d = np.linalg.norm(p[:, 9] - p[:, 8], axis=1)
    assert np.all(d < 1.6 * b["head_size"])


def test_pose_left_right_follow_the_facing_cue():
    """A figure facing the camera (|facing| < 90) has its left shoulder and hip on the image
    right of its right ones, measured across the spine (so in-plane rotation does not matter);
    seen from the back the order reverses. The same holds after a flip augmentation."""
    ds = SyntheticPose(200, resolution=R, seed=2, difficulty=0.3)
    b = ds.batch(range(200))

    def check(b):
        p, f = b["points"].astype(np.float64), np.radians(b["facing"])
        up = p[:, 7] - p[:, 6]                                       # pelvis -> thorax
        sel = np.abs(np.cos(f)) > 0.5
        for a, c in ((13, 12), (3, 2)):                               # l/r shoulder, l/r hip
            v = p[:, a] - p[:, c]
            cross = v[:, 0] * up[:, 1] - v[:, 1] * up[:, 0]
            agree = np.sign(cross[sel]) == -np.sign(np.cos(f[sel]))
            assert agree.mean() > 0.97, agree.mean()
        return sel.sum()

    assert check(b) > 100
    flipped = ds.batch(range(200), augment=True, rng=np.random.default_rng(0), rotation=0.0,
                       scale_range=(1.0, 1.0), color=False)
    check(flipped)


def test_face_sample_structure_and_masks():
    ds = SyntheticFace(40, resolution=R, seed=1)
    b = ds.batch(range(40))
    assert b["image"].shape == (40, R, R, 3) and b["image"].dtype == np.float32
    assert b["points"].shape == (40, 68, 2) and b["visible"].shape == (40, 68)
    assert np.all(b["visible"] == 1)
    assert b["mask"].shape == (40, R, R) and b["mask"].dtype == np.uint8
    assert b["mask"].max() < len(FACE_PARTS)
    assert set(np.unique(b["mask"])) == set(range(7))                 # every class occurs
    assert np.all(np.abs(b["yaw"]) <= 90)
    # All landmarks inside the frame, face box about half the crop.
    assert np.all((b["points"] >= 0) & (b["points"] <= R - 1))
    assert np.all(np.abs(200 * b["scale"] / R - 1) < 0.3)
    for i in range(40):
        m, p = b["mask"][i], b["points"][i]
        present = set(np.unique(m))
        assert {0, 1, 6} <= present                                     # background, skin, nose
        if abs(b["yaw"][i]) < 45:
            assert 5 in present and 3 in present and 2 in present      # eyes, both lips
        # The skin polygon's label sits at the chin-to-nose midpoint; the nose tip is nose/skin.
        x, y = np.rint(0.5 * (p[8] + p[30])).astype(int)
        assert m[y, x] in (1, 2, 3, 4)
    # Self-occlusion flags: a frontal face hides nothing, a strong yaw hides part of the jaw.
    so = b["self_occluded"]
    front = np.abs(b["yaw"]) < 10
    if front.any():
        assert so[front].mean() < 0.05
    side = np.abs(b["yaw"]) > 50
    if side.any():
        assert so[side][:, :17].mean() > 0.2


def test_face_mask_matches_landmark_polygons():
    """Pixel centres well inside an eye / the upper lip polygon carry that class."""
    from matplotlib.path import Path
    ds = SyntheticFace(12, resolution=128, seed=5, difficulty=0.0)
    for i in range(12):
        s = ds[i]
        m, p = s["mask"], s["points"].astype(np.float64)
        Y, X = np.mgrid[0:128, 0:128]
        centres = np.stack([X.ravel(), Y.ravel()], 1)
        for idx, cls in ((range(36, 42), 5), (range(42, 48), 5)):
            # Shrink the polygon by 0.6 px (the sign of matplotlib's radius depends on the winding).
            inside = min((Path(p[list(idx)]).contains_points(centres, radius=r).reshape(128, 128)
                          for r in (-0.6, 0.6)), key=np.sum)
            assert inside.sum() > 10
            assert np.all(m[inside] == cls)


def test_face_yaw_range_uniform_and_default_unchanged():
    """yaw_range=(-90, 90) draws yaw uniformly over the whole span (all three |yaw| bins filled
    about equally); the default mixture is what yaw_range=None gives; bad ranges are refused."""
    wide = SyntheticFace(90, resolution=32, seed=2, difficulty=0.3, yaw_range=(-90, 90))
    yaw = np.array([wide[i]["yaw"] for i in range(90)])
    assert np.all(np.abs(yaw) <= 90) and np.abs(yaw).max() > 80 and (yaw < 0).sum() > 25 and (yaw > 0).sum() > 25
    counts = np.histogram(np.abs(yaw), bins=[0, 30, 60, 90])[0]
    assert counts.min() >= 15, counts                           # uniform: 30 expected per bin
    # difficulty 0.3 alone caps |yaw| at 30 + 60 * 0.3 = 48 degrees
    default = SyntheticFace(20, resolution=32, seed=2, difficulty=0.3)
    same = SyntheticFace(20, resolution=32, seed=2, difficulty=0.3, yaw_range=None)
    for i in range(20):
        a, b = default[i], same[i]
        assert a["yaw"] == b["yaw"] and abs(a["yaw"]) <= 48 + 1e-4
        np.testing.assert_array_equal(a["image"], b["image"])
    narrow = SyntheticFace(10, resolution=32, seed=2, yaw_range=(10, 20))
    assert all(10 <= narrow[i]["yaw"] <= 20 for i in range(10))
    for bad in [(-100, 90), (30, 30), (40, 10)]:
        with pytest.raises(ValueError, match="yaw_range"):
            SyntheticFace(4, resolution=32, yaw_range=bad)


def test_balanced_yaw_subset_hand_case():
    yaw = np.array([5.0, -10, 29, 31, -45, 59, 61, -75, 90, 89, 0, -30])   # bins: 5 / 3 / 4 (30 -> first)
    idx = datasets.balanced_yaw_subset(yaw, seed=1)
    assert len(idx) == 9 and np.all(np.diff(idx) > 0)
    y = np.abs(yaw[idx])
    assert ((y <= 30).sum(), ((y > 30) & (y <= 60)).sum(), (y > 60).sum()) == (3, 3, 3)
    assert set(idx) >= {3, 4, 5}                                         # the smallest bin is taken whole
    np.testing.assert_array_equal(idx, datasets.balanced_yaw_subset(yaw, seed=1))   # deterministic
    assert len(datasets.balanced_yaw_subset(yaw, per_bin=2)) == 6
    with pytest.raises(ValueError, match="per_bin"):
        datasets.balanced_yaw_subset(yaw, per_bin=4)
    with pytest.raises(ValueError, match="90"):
        datasets.balanced_yaw_subset([10.0, 95.0])


def test_face_nose_mask_encloses_the_tip_at_any_yaw():
    """Fig. 14's masks join the 68 points so that each part is fully enclosed: the nose class
    covers bridge top (27), tip (30) and nostril wings (31, 35) at every yaw. Pixel centres
    well inside the nose triangles, and outside the classes filled after the nose (eyes, lips,
    inner mouth), carry the nose label; a point just inside the tip is nose at every yaw."""
    from matplotlib.path import Path

    from tinybin.skeletons import FACE_PART_POLYGONS
    S = 96
    ds = SyntheticFace(30, resolution=S, seed=4, difficulty=0.3, yaw_range=(-90, 90))
    Y, X = np.mgrid[0:S, 0:S]
    centres = np.stack([X.ravel(), Y.ravel()], 1)

    def inside(poly, shrink):
        r = (-shrink, shrink)
        masks = [Path(poly).contains_points(centres, radius=v).reshape(S, S) for v in r]
        return min(masks, key=np.sum) if shrink > 0 else max(masks, key=np.sum)

    def in_triangle(tri, margin):
        """Pixel centres at least `margin` px inside a triangle (signed edge distances)."""
        a, b, c = tri
        orient = np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
        ok = np.ones(S * S, bool)
        for u, v in ((a, b), (b, c), (c, a)):
            e = v - u
            d = orient * (e[0] * (centres[:, 1] - u[1]) - e[1] * (centres[:, 0] - u[0])) / np.hypot(*e)
            ok &= d >= margin
        return ok.reshape(S, S)

    nose_id = FACE_PARTS.index("nose")
    for i in range(30):
        s = ds[i]
        m, p = s["mask"], s["points"].astype(np.float64)
        nose = np.zeros((S, S), bool)
        later = np.zeros((S, S), bool)
        seen_nose = False
        for name, idx in FACE_PART_POLYGONS:
            if name == "nose":
                if len(idx) == 3:                        # the triangles are simple polygons at any yaw
                    nose |= in_triangle(p[list(idx)], 0.6)   # (the nostril line folds under strong yaw)
                seen_nose = True
            elif seen_nose:
                later |= inside(p[list(idx)], -0.6)     # grown: anything near a later class
        region = nose & ~later
        assert np.all(m[region] == nose_id), (s["yaw"], np.unique(m[region]))
        tip = 0.8 * p[30] + 0.1 * p[27] + 0.05 * (p[31] + p[35])
        x, y = np.rint(tip).astype(int)
        assert m[y, x] == nose_id, (float(s["yaw"]), int(m[y, x]))


def test_difficulty_knob():
    """Harder settings hide more joints (occluders, truncation) and widen the face yaw range."""
    easy = SyntheticPose(40, resolution=R, seed=0, difficulty=0.0).batch(range(40))
    hard = SyntheticPose(40, resolution=R, seed=0, difficulty=1.0).batch(range(40))
    assert easy["visible"].mean() > 0.97 and easy["occluded"].sum() == 0
    assert hard["visible"].mean() < easy["visible"].mean() - 0.05
    fe = SyntheticFace(60, resolution=32, seed=0, difficulty=0.0).batch(range(60))
    fh = SyntheticFace(60, resolution=32, seed=0, difficulty=1.0).batch(range(60))
    assert np.abs(fe["yaw"]).max() <= 30 + 1e-4
    assert np.abs(fh["yaw"]).max() > 60


def test_upsample_is_bilinear_with_aligned_corners():
    g = np.arange(12, dtype=np.float64).reshape(2, 3, 2)[:, :2]         # (2, 2, 2)
    u = _upsample(g, 5)
    assert u.shape == (5, 5, 2) and u.dtype == np.float32
    np.testing.assert_allclose(u[[0, 0, -1, -1], [0, -1, 0, -1]], g[[0, 0, 1, 1], [0, 1, 0, 1]])
    np.testing.assert_allclose(u[2, 2], g.mean((0, 1)), rtol=1e-6)


@pytest.mark.parametrize("cls", [SyntheticPose, SyntheticFace])
def test_batch_augment(cls):
    ds = cls(6, resolution=R, seed=0)
    with pytest.raises(ValueError, match="rng"):
        ds.batch(range(3), augment=True)
    b = ds.batch(range(6), augment=True, rng=np.random.default_rng(1))
    K = 16 if cls is SyntheticPose else 68
    assert b["image"].shape == (6, R, R, 3) and b["points"].shape == (6, K, 2) and b["M"].shape == (6, 2, 3)
    vis = b["visible"] > 0
    assert np.all((b["points"][vis] >= -0.5) & (b["points"][vis] < R - 0.5))
    # Points follow the crop matrix applied to the un-augmented sample (up to the flip permutation).
    plain = ds.batch(range(6))
    perm = MPII_FLIP if cls is SyntheticPose else FACE68_FLIP
    for i in range(6):
        q = apply_affine(plain["points"][i], b["M"][i].astype(np.float64))
        if np.linalg.det(b["M"][i][:, :2]) < 0:
            q = q[perm]
        np.testing.assert_allclose(b["points"][i], q, atol=1e-3)
    if cls is SyntheticFace:
        assert b["mask"].shape == (6, R, R)


# --------------------------------------------------------------------------------------------
# Renderer: Numba kernel against the NumPy reference
# --------------------------------------------------------------------------------------------

def _labels_agree(a, b, prims, data, band=1e-6):
    """Label maps of the kernel and the reference are equal at every pixel whose centre lies
    farther than `band` from the edge of each labelling primitive. (A label is painted where the
    signed distance is <= 0: at a centre on an edge, the two computations' rounding decides.)
    Returns the fraction of pixels left out, which must stay small."""
    H, W = a.shape
    Y, X = np.mgrid[0:H, 0:W].astype(np.float64)
    unsure = np.zeros((H, W), bool)
    for row in prims:
        if int(row[F_TARGET]) & LABEL:
            unsure |= np.abs(_sd_ref(row, data, X, Y)[0]) < band
    np.testing.assert_array_equal(a[~unsure], b[~unsure])
    return unsure.mean()


def _capture(ds, i):
    got = {}

    def spy(canvas, occ, labels, prims, data):
        got["args"] = (canvas.copy(), occ.copy(), labels.copy(), prims.copy(), data.copy())
        datasets.render_list(canvas, occ, labels, prims, data)

    ds._render(_sample_seed(ds.seed, ds.split, i), impl=spy)
    return got["args"]


@pytest.mark.parametrize("cls", [SyntheticPose, SyntheticFace])
def test_render_kernel_matches_reference_on_samples(cls):
    ds = cls(4, resolution=R, seed=7, difficulty=0.8)
    for i in range(3):
        canvas, occ, labels, prims, data = _capture(ds, i)
        a = (canvas.copy(), occ.copy(), labels.copy())
        b = (canvas.copy(), occ.copy(), labels.copy())
        datasets.render_list(*a, prims, data)
        datasets.render_list_ref(*b, prims, data)
        np.testing.assert_allclose(a[0], b[0], atol=1e-4)
        np.testing.assert_allclose(a[1], b[1], atol=1e-5)
        assert _labels_agree(a[2], b[2], prims, data) < 1e-2


def test_render_kernel_matches_reference_on_random_lists(rng):
    H, W = 40, 50
    for _ in range(5):
        dl = datasets.DisplayList()
        for _ in range(12):
            c = rng.uniform(-5, 55, 2)
            col = rng.random(3)
            kw = dict(alpha=rng.uniform(0.3, 1), target=int(rng.choice([1, 3, 5, 4])), label=int(rng.integers(1, 7)),
                      grad=tuple(rng.normal(0, 0.02, 2)), stripe=(0.6, 0.8, 0.2, rng.uniform(0, 0.3), 1.0))
            t = rng.integers(4)
            if t == 0:
                dl.add(dl.capsule(c, c + rng.normal(0, 10, 2), rng.uniform(0.3, 5), rng.uniform(0.3, 5), col,
                                  shade=0.5, **kw))
            elif t == 1:
                dl.add(dl.ellipse(c, rng.uniform(0.5, 12), rng.uniform(0.5, 8), rng.uniform(0, 3), col, shade=0.3, **kw))
            elif t == 2:
                dl.add(dl.polygon(c + rng.normal(0, 8, (int(rng.integers(3, 9)), 2)), col,
                                  rounding=float(rng.choice([0, 1.5])), **kw))
            else:
                Rm = _rz(rng.uniform(-1, 1)) @ _ry(rng.uniform(-1.5, 1.5))
                hp = datasets.head_params(c, Rm, rng.uniform(3, 10, 3), col, rng.random(3), hairline=(-0.2, 0.6, 0.1))
                if rng.random() < 0.5:
                    dl.add(dl.head(hp, **kw))
                else:
                    st = len(dl.data)
                    dl.data.extend(hp)
                    dl.add(dl.shaded_polygon(c + rng.normal(0, 6, (5, 2)), st, **kw))
        prims, data = dl.arrays()
        a = (np.full((H, W, 3), 0.5, np.float32), np.zeros((H, W), np.float32), np.zeros((H, W), np.uint8))
        b = tuple(x.copy() for x in a)
        datasets.render_list(*a, prims, data)
        datasets.render_list_ref(*b, prims, data)
        np.testing.assert_allclose(a[0], b[0], atol=1e-4)
        np.testing.assert_allclose(a[1], b[1], atol=1e-5)
        assert _labels_agree(a[2], b[2], prims, data) < 1e-2


def test_render_hand_computed_coverage():
    """A disc of radius 3 at (10, 10): centre pixel fully covered, pixel 3.5 away covered 0..,
    and a pixel exactly on the rim half covered."""
    dl = datasets.DisplayList()
    dl.add(dl.ellipse((10.0, 10.0), 3.0, 3.0, 0.0, (1.0, 1.0, 1.0)))
    prims, data = dl.arrays()
    canvas = np.zeros((20, 20, 3), np.float32)
    datasets.render_list(canvas, np.zeros((20, 20), np.float32), np.zeros((20, 20), np.uint8), prims, data)
    assert canvas[10, 10, 0] == pytest.approx(1.0)
    assert canvas[10, 13, 0] == pytest.approx(0.5)          # on the rim: coverage 0.5
    assert canvas[10, 14, 0] == 0.0                         # 1 px outside
    with pytest.raises(ValueError, match="canvas"):
        datasets.render_list(np.zeros((4, 4, 3)), np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8),
                             prims, data)


def test_generation_speed():
    """Measured and printed, not asserted (the machine is shared); target >= 300 samples/s at R=64."""
    for cls in (SyntheticPose, SyntheticFace):
        ds = cls(200, resolution=R, seed=0)
        ds[0]                                               # compile / warm up
        t = time.perf_counter()
        n = 60
        for i in range(n):
            ds[i]
        rate = n / (time.perf_counter() - t)
        print(f"\n{cls.__name__} R={R}: {rate:.0f} samples/s")
        assert rate > 0


# --------------------------------------------------------------------------------------------
# Loaders on fixture files written here
# --------------------------------------------------------------------------------------------

def _write_pts(path, pts, header="version: 1\nn_points:  {n}\n", trailing_newline=True):
    body = header.format(n=len(pts)) + "{\n" + "".join(f"{x:.6f} {y:.6f}\n" for x, y in pts) + "}"
    path.write_text(body + ("\n" if trailing_newline else ""))


def _write_image(path, w=40, h=30, colour=(200, 100, 50)):
    Image.new("RGB", (w, h), colour).save(path)


def test_read_pts_formats(tmp_path):
    pts = np.random.default_rng(0).uniform(1, 100, (68, 2)).round(6)
    _write_pts(tmp_path / "a.pts", pts)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), pts - 1, atol=1e-4)       # 1-based -> 0-based
    _write_pts(tmp_path / "b.pts", pts, header="version: 1\nn_points: {n}\n", trailing_newline=False)
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts"), pts - 1, atol=1e-4)
    _write_pts(tmp_path / "c.pts", pts[:5], header="version:1\nn_points:   {n}\n\n")
    assert read_pts(tmp_path / "c.pts").shape == (5, 2)
    (tmp_path / "d.pts").write_text("version: 1\nn_points: 2\n{\n1 2\n3.5 4.5\n}")
    np.testing.assert_array_equal(read_pts(tmp_path / "d.pts"), [[0, 1], [2.5, 3.5]])
    assert read_pts(tmp_path / "d.pts").dtype == np.float32


@pytest.mark.parametrize("text, msg", [
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points 3 but the file has 2"),
    ("version: 1\nn_points: 2\n{\n1 2\nx 4\n}\n", "non-numeric"),
    ("version: 1\nn_points: 2\n1 2\n3 4\n", "no line starting with '{'"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", "missing closing"),
    ("version: 1\nn_points: 2\n{\n1 2\n3\n}\n", "two numbers"),
    ("version: 1\nn_points: two\n{\n1 2\n}\n", "n_points"),
    ("version: 1\nn_points: 1\n{\nnan 2\n}\n", "non-finite"),
])
def test_read_pts_malformed(tmp_path, text, msg):
    f = tmp_path / "bad_face.pts"
    f.write_text(text)
    with pytest.raises(ValueError, match=msg) as e:
        read_pts(f)
    assert "bad_face.pts" in str(e.value)


def test_load_300w(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "helen" / "trainset").mkdir(parents=True)
    pts = rng.uniform(5, 35, (68, 2))
    _write_pts(tmp_path / "helen" / "trainset" / "img1.pts", pts)
    _write_image(tmp_path / "helen" / "trainset" / "img1.jpg")
    _write_pts(tmp_path / "ibug_2.pts", pts + 1, trailing_newline=False)
    _write_image(tmp_path / "ibug_2.png")
    recs = load_300w(tmp_path)
    assert [r["name"] for r in recs] == ["helen/trainset/img1", "ibug_2"]
    np.testing.assert_allclose(recs[0]["points"], pts - 1, atol=1e-4)
    lo, hi = recs[0]["points"].min(0), recs[0]["points"].max(0)
    np.testing.assert_allclose(recs[0]["center"], (lo + hi) / 2, atol=1e-5)
    assert recs[0]["scale"] == pytest.approx((hi - lo).sum() / 190, rel=1e-5)
    assert "image" not in recs[0]                                         # lazy
    img = recs[0]["image"]
    assert img.shape == (30, 40, 3) and img.dtype == np.float32
    assert img[0, 0, 0] == pytest.approx(200 / 255, abs=0.02)
    # Wrong count, missing image.
    with pytest.raises(ValueError, match="expected 5"):
        load_300w(tmp_path, expect_points=5)
    (tmp_path / "lonely").mkdir()
    _write_pts(tmp_path / "lonely" / "noimage.pts", pts)
    with pytest.raises(ValueError, match="missing image") as e:
        load_300w(tmp_path / "lonely")
    assert "noimage.pts" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .pts"):
        load_300w(tmp_path / "empty")


def _mpii_release(tmp_path, with_images=True):
    """An MPII RELEASE struct with two images: image 1 has two people (one with string and empty
    is_visible flags, one whose points lack the is_visible field), image 2 is a test image
    (a person without annopoints)."""
    point_dt = [("x", "O"), ("y", "O"), ("id", "O"), ("is_visible", "O")]
    p1 = np.zeros((1, 3), dtype=point_dt)
    for k, (x, y, j, v) in enumerate([(101.0, 51.0, 0, 1), (111.0, 61.0, 9, "0"), (121.0, 71.0, 13, np.zeros((0, 0)))]):
        p1[0, k] = (x, y, j, v)
    p2 = np.zeros((1, 2), dtype=[("x", "O"), ("y", "O"), ("id", "O")])
    p2[0, 0] = (201.0, 151.0, 6)
    p2[0, 1] = (211.0, 161.0, 7)
    rect_dt = [("x1", "O"), ("y1", "O"), ("x2", "O"), ("y2", "O"), ("annopoints", "O"), ("scale", "O"), ("objpos", "O")]
    rects1 = np.zeros((1, 2), dtype=rect_dt)
    rects1[0, 0] = (91.0, 31.0, 121.0, 71.0, {"point": p1}, 2.0, {"x": 111.0, "y": 101.0})
    rects1[0, 1] = (191.0, 131.0, 211.0, 151.0, {"point": p2}, 1.5, {"x": 206.0, "y": 171.0})
    rects2 = np.zeros((1, 1), dtype=[("scale", "O"), ("objpos", "O")])
    rects2[0, 0] = (3.0, {"x": 50.0, "y": 60.0})
    ann = np.zeros((1, 2), dtype=[("image", "O"), ("annorect", "O")])
    ann[0, 0] = ({"name": "000001.jpg"}, rects1)
    ann[0, 1] = ({"name": "000002.jpg"}, rects2)
    path = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    scipy.io.savemat(path, {"RELEASE": {"annolist": ann, "img_train": np.array([[1, 0]])}})
    if with_images:
        (tmp_path / "images").mkdir()
        _write_image(tmp_path / "images" / "000001.jpg")
        _write_image(tmp_path / "images" / "000002.jpg")
    return path


def test_load_mpii_mat(tmp_path):
    path = _mpii_release(tmp_path)
    recs = load_mpii_mat(path, image_dir=tmp_path / "images")
    assert len(recs) == 2                                   # the test-image person has no joints
    r = recs[0]
    np.testing.assert_allclose(r["points"][[0, 9, 13]], [[100, 50], [110, 60], [120, 70]])
    np.testing.assert_array_equal(r["visible"], np.isin(np.arange(16), [0, 9, 13]).astype(np.float32))
    np.testing.assert_array_equal(r["is_visible"][[0, 9, 13]], [1, 0, 1])   # '0' -> 0, empty -> 1
    assert r["head_size"] == pytest.approx(0.6 * math.hypot(30, 40))
    np.testing.assert_allclose(r["headbox"], [[90, 30], [120, 70]])
    np.testing.assert_allclose(r["center"], [110, 100 + 30])                # y + 15 * scale, 0-based
    assert r["scale"] == pytest.approx(2.5) and r["mpii_scale"] == pytest.approx(2.0)
    assert r["is_train"] == 1 and r["image_name"] == "000001.jpg"
    assert r["image"].shape == (30, 40, 3)
    r2 = recs[1]
    np.testing.assert_allclose(r2["points"][[6, 7]], [[200, 150], [210, 160]])
    np.testing.assert_array_equal(r2["is_visible"][[6, 7]], [1, 1])        # field missing -> 1
    every = load_mpii_mat(path, annotated_only=False)
    assert len(every) == 3 and every[2]["visible"].sum() == 0 and every[2]["is_train"] == 0
    assert np.isnan(every[2]["head_size"]) and every[2]["image_path"] is None


def test_load_mpii_mat_malformed(tmp_path):
    path = _mpii_release(tmp_path, with_images=False)
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="missing image") as e:
        load_mpii_mat(path, image_dir=tmp_path / "images")
    assert "000001.jpg" in str(e.value)
    raw = path.read_bytes()
    bad = tmp_path / "truncated.mat"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated.mat"):
        load_mpii_mat(bad)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"something": np.zeros(3)})
    with pytest.raises(ValueError, match="other.mat.*RELEASE"):
        load_mpii_mat(other)
    with pytest.raises(ValueError, match="no such file"):
        load_mpii_mat(tmp_path / "absent.mat")


def test_load_mpii_json(tmp_path):
    joints = [[float(10 + k), float(20 + 2 * k)] for k in range(16)]
    joints[3] = [-1.0, -1.0]
    vis = [1] * 16
    vis[3] = 0
    data = [{"image": "005808361.jpg", "center": [966.0, 340.0], "scale": 4.718488, "joints": joints,
             "joints_vis": vis},
            {"image": "000002.jpg", "center": [50.0, 60.0], "scale": 1.0}]          # test record: no joints
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(data))
    recs = load_mpii_json(path)
    r = recs[0]
    np.testing.assert_allclose(r["points"][0], [9, 19])
    np.testing.assert_allclose(r["points"][3], [-2, -2])
    assert r["visible"][3] == 0 and r["visible"].sum() == 15
    np.testing.assert_allclose(r["center"], [965.0, 340.0 + 15 * 4.718488 - 1], rtol=1e-6)
    assert r["scale"] == pytest.approx(1.25 * 4.718488)
    assert np.isnan(r["head_size"]) and r["image_path"] is None
    assert recs[1]["visible"].sum() == 0
    bad = tmp_path / "bad_joints.json"
    bad.write_text(json.dumps([dict(data[0], joints=joints[:15])]))
    with pytest.raises(ValueError, match="bad_joints.json.*record 0"):
        load_mpii_json(bad)
    (tmp_path / "notjson.json").write_text("{not json")
    with pytest.raises(ValueError, match="notjson.json"):
        load_mpii_json(tmp_path / "notjson.json")
    (tmp_path / "dict.json").write_text("{}")
    with pytest.raises(ValueError, match="dict.json.*list"):
        load_mpii_json(tmp_path / "dict.json")
    with pytest.raises(ValueError, match="missing image"):
        load_mpii_json(path, image_dir=tmp_path)


def test_load_lsp_and_lspet(tmp_path):
    rng = np.random.default_rng(3)
    N = 3
    xy = rng.uniform(10, 100, (N, 14, 2))                  # (N, joints, xy) 1-based
    flag = (rng.random((N, 14)) < 0.3).astype(float)       # LSP: 1 = occluded (bearpaw convention)
    lsp = np.concatenate([xy.transpose(2, 1, 0), flag.T[None]], 0)          # 3 x 14 x N
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": lsp})
    (tmp_path / "images").mkdir()
    for n in range(N):
        _write_image(tmp_path / "images" / f"im{n + 1:04d}.jpg")
    recs = load_lsp(tmp_path / "joints.mat", image_dir=tmp_path / "images")
    assert len(recs) == N
    r = recs[1]
    p = xy[1] - 1
    np.testing.assert_allclose(r["points"][[0, 5, 10, 15, 8, 9]], p[[0, 5, 6, 11, 12, 13]], atol=1e-5)
    np.testing.assert_allclose(r["points"][6], (p[2] + p[3]) / 2, atol=1e-5)   # pelvis = mean of the hips
    assert np.all(r["visible"] == 1)
    np.testing.assert_array_equal(r["is_visible"][[0, 10]], 1 - flag[1, [0, 6]])
    assert r["image_name"] == "im0002.jpg" and r["image"].shape == (30, 40, 3)
    assert np.all(np.isnan([q["head_size"] for q in recs]))
    # LSPET: 14 x 3 x N, third column 1 = visible; a (0, 0) joint is unlabelled.
    xy2 = xy.copy()
    xy2[0, 4] = 0
    lspet = np.concatenate([xy2.transpose(1, 2, 0), (1 - flag).T[:, None]], 1)  # 14 x 3 x N
    scipy.io.savemat(tmp_path / "joints_et.mat", {"joints": lspet})
    recs2 = load_lsp(tmp_path / "joints_et.mat")
    np.testing.assert_allclose(recs2[1]["points"], recs[1]["points"], atol=1e-5)
    np.testing.assert_array_equal(recs2[1]["is_visible"], recs[1]["is_visible"])
    assert recs2[0]["visible"][4] == 0 and recs2[0]["image_name"] == "im00001.jpg"
    # Malformed.
    scipy.io.savemat(tmp_path / "wrong.mat", {"joints": np.zeros((2, 14, 3))})
    with pytest.raises(ValueError, match="wrong.mat.*3 x 14 x N"):
        load_lsp(tmp_path / "wrong.mat")
    scipy.io.savemat(tmp_path / "nokey.mat", {"pts": np.zeros((3, 14, 2))})
    with pytest.raises(ValueError, match="nokey.mat.*'joints'"):
        load_lsp(tmp_path / "nokey.mat")


def test_load_aflw2000(tmp_path):
    rng = np.random.default_rng(4)
    pt = rng.uniform(100, 350, (3, 68))
    pose = np.array([[0.1, -0.5, 0.2, 225.0, 225.0, 0.0, 0.001]])
    for name in ("image00002", "image00004"):
        scipy.io.savemat(tmp_path / f"{name}.mat", {"pt3d_68": pt, "Pose_Para": pose, "pt2d": np.zeros((2, 21))})
    _write_image(tmp_path / "image00002.jpg", 45, 45)
    recs = load_aflw2000(tmp_path)
    assert [r["name"] for r in recs] == ["image00002", "image00004"]
    r = recs[0]
    np.testing.assert_allclose(r["points"], pt[:2].T - 1, atol=1e-4)
    assert r["yaw"] == pytest.approx(math.degrees(-0.5), rel=1e-5)
    assert r["pitch"] == pytest.approx(math.degrees(0.1), rel=1e-5)
    assert r["pt3d"].shape == (68, 3) and np.all(r["visible"] == 1)
    assert r["image"].shape == (45, 45, 3) and recs[1]["image_path"] is None
    assert len(load_aflw2000([tmp_path / "image00004.mat"])) == 1
    # Malformed: missing key, wrong shape, truncated file.
    scipy.io.savemat(tmp_path / "nokey.mat", {"pt3d_68": pt})
    with pytest.raises(ValueError, match="nokey.mat.*Pose_Para"):
        load_aflw2000([tmp_path / "nokey.mat"])
    scipy.io.savemat(tmp_path / "shape.mat", {"pt3d_68": pt[:, :60], "Pose_Para": pose})
    with pytest.raises(ValueError, match="shape.mat.*3 x 68"):
        load_aflw2000([tmp_path / "shape.mat"])
    raw = (tmp_path / "image00002.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(raw[:300])
    with pytest.raises(ValueError, match="cut.mat"):
        load_aflw2000([tmp_path / "cut.mat"])
    with pytest.raises(ValueError, match="not a directory"):
        load_aflw2000(str(tmp_path / "nowhere"))


def test_record_dataset_crops(tmp_path):
    arr = (np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "face.png")
    pts = np.random.default_rng(1).uniform(30, 60, (68, 2))
    _write_pts(tmp_path / "face.pts", pts)
    recs = load_300w(tmp_path)
    ds = RecordDataset(recs, resolution=32, kind="face")
    s = ds[0]
    assert s["image"].shape == (32, 32, 3) and s["points"].shape == (68, 2)
    np.testing.assert_allclose(s["points"], apply_affine(recs[0]["points"], s["M"].astype(np.float64)), atol=1e-3)
    # The face box is about half the crop (scale = (w + h) / 190).
    w = np.ptp(s["points"], axis=0).mean()
    assert 0.35 < w / 32 < 0.6
    b = ds.batch([0, 0], augment=True, rng=np.random.default_rng(2))
    assert b["image"].shape == (2, 32, 32, 3) and b["M"].shape == (2, 2, 3)
    with pytest.raises(ValueError, match="rng"):
        ds.batch([0], augment=True)


def test_root_datasets_py_reexports_tinybin_data():
    """`import datasets` from a clone (the repository root on the path, as `python` run there has)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import datasets, tinybin.data as D; assert datasets.SyntheticPose is D.SyntheticPose; "
            "assert all(getattr(datasets, n) is getattr(D, n) for n in D.__all__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("cls", ["SyntheticPose", "SyntheticFace"])
def test_render_cache_gives_the_same_batches_and_stays_unchanged(cls, monkeypatch):
    import pickle

    import tinybin.data as D
    from tinybin.data import synthetic
    make = getattr(D, cls)
    cached = make(12, resolution=32, seed=5, difficulty=0.5)
    monkeypatch.setattr(synthetic, "CACHE_BYTES", 0)
    plain = make(12, resolution=32, seed=5, difficulty=0.5)
    assert cached._cache == {} and plain._cache is None
    idx = [3, 7, 3, 11, 0]
    for t in range(3):  # first use renders, later uses read the cache; augmentation must not leak into it
        x = cached.batch(idx, augment=True, rng=np.random.default_rng(t))
        y = plain.batch(idx, augment=True, rng=np.random.default_rng(t))
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    s = cached[3]
    with pytest.raises(ValueError):
        s["image"][0, 0, 0] = 1.0  # cached arrays are read-only
    np.testing.assert_array_equal(cached.batch([3])["image"][0], plain[3]["image"])
    clone = pickle.loads(pickle.dumps(cached))
    assert clone._cache == {} and len(cached._cache) == 4
    np.testing.assert_array_equal(clone[7]["image"], plain[7]["image"])
