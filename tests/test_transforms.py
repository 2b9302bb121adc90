"""Crop geometry, warping, flips and augmentation (tinybin.transforms), plus the skeleton tables."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybin import heatmaps, skeletons, transforms as T
from tinybin.skeletons import FACE68_FLIP, MPII_FLIP

finite = dict(allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------- skeletons

@pytest.mark.parametrize("perm,n", [(MPII_FLIP, 16), (FACE68_FLIP, 68)])
def test_flip_permutations_are_involutions(perm, n):
    assert sorted(perm.tolist()) == list(range(n))
    np.testing.assert_array_equal(perm[perm], np.arange(n))


def test_mpii_flip_pairs_and_sides():
    assert [int(MPII_FLIP[a]) for a, _ in skeletons.MPII_FLIP_PAIRS] == [b for _, b in skeletons.MPII_FLIP_PAIRS]
    np.testing.assert_array_equal(skeletons.MPII_SIDE[MPII_FLIP], -skeletons.MPII_SIDE)
    for name, idx in skeletons.MPII_PARTS.items():
        if len(idx) == 2:
            assert MPII_FLIP[idx[0]] == idx[1]
            assert skeletons.MPII_JOINTS[idx[0]].startswith("r_") and skeletons.MPII_JOINTS[idx[1]].startswith("l_")
    assert 6 not in skeletons.MPII_PCKH_JOINTS and 7 not in skeletons.MPII_PCKH_JOINTS
    assert len(skeletons.MPII_PCKH_JOINTS) == 14


@pytest.mark.parametrize("edges,perm", [(skeletons.MPII_EDGES, MPII_FLIP), (skeletons.FACE68_EDGES, FACE68_FLIP)])
def test_edges_map_onto_edges_under_flip(edges, perm):
    es = {frozenset(e) for e in edges}
    assert {frozenset((int(perm[a]), int(perm[b]))) for a, b in edges} == es


def test_face_groups_and_polygons_are_flip_consistent():
    assert len(skeletons.FACE68_EDGES) == 63
    assert sorted(i for g in skeletons.FACE68_GROUPS.values() for i in g) == list(range(68))
    # Mirroring the landmarks maps each class's polygons onto that class's polygons.
    by_class = {}
    for name, poly in skeletons.FACE_PART_POLYGONS:
        assert name in skeletons.FACE_PARTS and name != "background"
        by_class.setdefault(name, set()).add(frozenset(poly))
    for name, polys in by_class.items():
        assert {frozenset(int(FACE68_FLIP[i]) for i in p) for p in polys} == polys


def test_lsp_to_mpii_hand_case():
    lsp = np.arange(28, dtype=float).reshape(14, 2)
    vis = np.ones(14, bool)
    vis[8] = False                                            # r-shoulder missing
    out, ov = skeletons.lsp_to_mpii(lsp, vis)
    assert out.shape == (16, 2)
    np.testing.assert_array_equal(out[0], lsp[0])             # r-ankle
    np.testing.assert_array_equal(out[9], lsp[13])            # head-top
    np.testing.assert_array_equal(out[8], lsp[12])            # neck
    np.testing.assert_array_equal(out[10], lsp[6])            # r-wrist
    np.testing.assert_array_equal(out[15], lsp[11])           # l-wrist
    np.testing.assert_allclose(out[6], (lsp[2] + lsp[3]) / 2)  # pelvis
    np.testing.assert_allclose(out[7], (lsp[8] + lsp[9]) / 2)  # thorax
    assert ov[6] and not ov[7] and not ov[12] and ov[13]
    with pytest.raises(ValueError, match="14, 2"):
        skeletons.lsp_to_mpii(np.zeros((16, 2)))


# ---------------------------------------------------------------- crop geometry

def test_crop_transform_box_maps_to_pixel_edges():
    c, s, R = np.array([300.0, 200.0]), 1.5, 64
    M = T.crop_transform(c, s, R)
    assert M.shape == (2, 3) and M.dtype == np.float64
    half = 100 * s
    pts = np.array([c, c - half, c + half, [c[0] - half, c[1] + half]])
    np.testing.assert_allclose(T.apply_affine(pts, M), [[31.5, 31.5], [-0.5, -0.5], [63.5, 63.5], [-0.5, 63.5]],
                               atol=1e-12)


def test_crop_transform_rotation_and_flip_directions():
    c, R = np.array([50.0, 50.0]), 100
    right_of_centre = c + [10.0, 0.0]
    # +90 degrees turns the content counter-clockwise on screen: "right" goes "up" (smaller y).
    p = T.apply_affine(right_of_centre, T.crop_transform(c, 0.5, R, rotation=90.0))
    np.testing.assert_allclose(p, [49.5, 39.5], atol=1e-12)
    q = T.apply_affine(right_of_centre, T.crop_transform(c, 0.5, R, flip=True))
    np.testing.assert_allclose(q, [99 - 59.5, 49.5], atol=1e-12)


def test_crop_transform_rejects_bad_input():
    with pytest.raises(ValueError, match="scale"):
        T.crop_transform([0, 0], 0.0, 64)
    with pytest.raises(ValueError, match="center"):
        T.crop_transform([0, 0, 0], 1.0, 64)
    with pytest.raises(ValueError, match="singular"):
        T.invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        T.apply_affine(np.zeros((3, 2)), np.eye(3))


@settings(deadline=None)
@given(cx=st.floats(-500, 500, **finite), cy=st.floats(-500, 500, **finite), s=st.floats(0.05, 10),
       rot=st.floats(-180, 180, **finite), flip=st.booleans(), R=st.integers(1, 512))
def test_invert_affine_round_trip(cx, cy, s, rot, flip, R):
    M = T.crop_transform([cx, cy], s, R, rot, flip)
    pts = np.array([[cx, cy], [cx + 13.0, cy - 7.0], [0.0, 0.0]])
    back = T.apply_affine(T.apply_affine(pts, M), T.invert_affine(M))
    np.testing.assert_allclose(back, pts, atol=1e-9 * (1 + np.abs(pts).max()))
    I = T.compose_affine(T.invert_affine(M), M)
    np.testing.assert_allclose(I, [[1, 0, 0], [0, 1, 0]], atol=1e-9 * (1 + abs(cx) + abs(cy)))
    np.testing.assert_allclose(T.apply_affine([cx, cy], M), [(R - 1) / 2, (R - 1) / 2], atol=1e-9 * R)


# ---------------------------------------------------------------- warping

def _dots(points, shape, sigma=2.0):
    """(H, W, K) image with one Gaussian dot per landmark (render at stride 1)."""
    img, _ = heatmaps.render(points, shape, sigma)
    return img


def test_warp_identity_and_integer_shift_are_exact():
    rng = np.random.default_rng(0)
    img = rng.random((20, 30, 3)).astype(np.float32)
    np.testing.assert_array_equal(T.warp_image(img, [[1, 0, 0], [0, 1, 0]], (20, 30)), img)
    # Shift content right by 3 and down by 2 (source -> crop map adds (3, 2)).
    out = T.warp_image(img, [[1, 0, 3], [0, 1, 2]], (20, 30))
    np.testing.assert_array_equal(out[2:, 3:], img[:-2, :-3])
    assert np.all(out[:2] == 0) and np.all(out[:, :3] == 0)
    edge = T.warp_image(img, [[1, 0, 3], [0, 1, 2]], (20, 30), fill="edge")
    np.testing.assert_array_equal(edge[:2, 3:], np.broadcast_to(img[0, :-3], (2, 27, 3)))


def test_warp_moves_a_dot_where_apply_affine_moves_the_point():
    src = np.array([[40.3, 25.7], [60.0, 70.2]])
    img = _dots(src, (100, 120), sigma=3.0)
    M = T.crop_transform([60.0, 50.0], 0.6, 96, rotation=25.0)
    out = T.warp_image(img, M, 96)
    dst = T.apply_affine(src, M)
    # The dot's sub-pixel centroid, weighted around the peak, matches the mapped landmark.
    yy, xx = np.mgrid[0:96, 0:96]
    for k in range(2):
        w = out[..., k] * (np.hypot(xx - dst[k, 0], yy - dst[k, 1]) < 12)
        cen = np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()
        np.testing.assert_allclose(cen, dst[k], atol=0.05)


def test_warp_mask_nearest_keeps_labels_and_dtype():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 5:15] = 3
    mask[25:35, 20:30] = 6
    M = T.crop_transform([20, 20], 0.2, 40, rotation=30.0)
    out = T.warp_image(mask, M, 40, order=0)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 3, 6}
    assert (out == 3).sum() == pytest.approx(100, rel=0.15) and (out == 6).sum() == pytest.approx(100, rel=0.15)
    f = T.warp_image(mask, M, 40, order=1)
    assert f.dtype == np.float32
    with pytest.raises(ValueError, match="fill"):
        T.warp_image(mask, M, 40, fill="reflect")


def test_flips_are_involutions():
    rng = np.random.default_rng(1)
    img = rng.random((7, 9, 3))
    np.testing.assert_array_equal(T.flip_image(T.flip_image(img)), img)
    np.testing.assert_array_equal(T.flip_image(img)[:, 0], img[:, -1])
    batch = rng.random((2, 7, 9, 3))
    np.testing.assert_array_equal(T.flip_image(batch)[1], T.flip_image(batch[1]))
    pts = rng.random((16, 2)) * 9
    np.testing.assert_allclose(T.flip_points(T.flip_points(pts, 9, MPII_FLIP), 9, MPII_FLIP), pts, atol=1e-12)
    f = T.flip_points(pts, 9, MPII_FLIP)
    np.testing.assert_allclose(f[0], [8 - pts[5, 0], pts[5, 1]])


def test_flipped_landmarks_match_flipped_image():
    """Dots drawn at the landmarks, image mirrored: each mirrored landmark sits on its own dot."""
    rng = np.random.default_rng(2)
    H, W = 48, 57
    pts = rng.uniform([3, 3], [W - 4, H - 4], size=(16, 2))
    dots = _dots(pts, (H, W), sigma=1.5)                     # channel k holds landmark k's dot
    fimg = T.flip_image(dots)
    fpts = T.flip_points(pts, W, MPII_FLIP)
    # Label j of the flipped sample is old landmark MPII_FLIP[j]: its dot is in channel MPII_FLIP[j].
    found, _ = heatmaps.decode(fimg[..., MPII_FLIP])
    np.testing.assert_allclose(found, fpts, atol=heatmaps.DECODE_TOLERANCE + 1e-9)
    # Image and labels flip the same way as heatmaps do.
    np.testing.assert_array_equal(fimg[..., MPII_FLIP], heatmaps.flip_heatmaps(dots, MPII_FLIP))


# ---------------------------------------------------------------- augmentation

def test_augment_params_ranges_and_determinism():
    rng = np.random.default_rng(3)
    ps = [T.augment_params(rng, color=True) for _ in range(400)]
    rot = np.array([p["rotation"] for p in ps])
    sc = np.array([p["scale"] for p in ps])
    fl = np.array([p["flip"] for p in ps])
    assert rot.min() >= -40 and rot.max() <= 40 and rot.min() < -30 and rot.max() > 30
    assert sc.min() >= 0.7 and sc.max() <= 1.3
    assert 0.4 < fl.mean() < 0.6
    assert all(0.8 <= g <= 1.2 for p in ps for g in p["gain"])
    a = T.augment_params(np.random.default_rng(7), color=True)
    b = T.augment_params(np.random.default_rng(7), color=True)
    assert a["rotation"] == b["rotation"] and a["scale"] == b["scale"] and a["flip"] == b["flip"]
    np.testing.assert_array_equal(a["gain"], b["gain"])
    off = T.augment_params(rng, rotation=0, scale=(1, 1), flip=False)
    assert off == {"rotation": 0.0, "scale": 1.0, "flip": False}


def test_augment_without_randomness_is_the_plain_crop():
    rng = np.random.default_rng(4)
    img = rng.random((60, 80, 3)).astype(np.float32)
    pts = rng.uniform(10, 50, size=(16, 2))
    c, s = np.array([40.0, 30.0]), 0.3
    r = T.augment(img, pts, None, c, s, 32, rng, MPII_FLIP, rotation=0, scale_range=(1, 1), flip=False,
                  color=False)
    M = T.crop_transform(c, s, 32)
    np.testing.assert_array_equal(r["M"], M)
    np.testing.assert_array_equal(r["image"], T.warp_image(img, M, 32))
    np.testing.assert_allclose(r["points"], T.apply_affine(pts, M))
    assert r["image"].dtype == np.float32 and r["mask"] is None and r["visible"].all()


@pytest.mark.parametrize("seed", range(6))
def test_augment_moves_image_points_mask_and_labels_together(seed):
    rng = np.random.default_rng(seed)
    H, W, K = 80, 90, 16
    pts = rng.uniform([20, 20], [W - 20, H - 20], size=(K, 2))
    vis = rng.random(K) < 0.8
    dots = _dots(pts, (H, W), sigma=2.0)                     # (H, W, K): channel k = landmark k
    mask = np.zeros((H, W), np.int32)
    mask[int(pts[0, 1]) - 2:int(pts[0, 1]) + 3, int(pts[0, 0]) - 2:int(pts[0, 0]) + 3] = 5
    r = T.augment(dots, pts, vis, [W / 2, H / 2], 0.5, 64, rng, MPII_FLIP, flip=True, color=False,
                  mask=mask)
    perm = MPII_FLIP if r["params"]["flip"] else np.arange(K)
    np.testing.assert_array_equal(r["visible"], vis[perm])
    np.testing.assert_allclose(r["points"], T.apply_affine(pts, r["M"])[perm])
    # The dot of old landmark perm[j] lies on new landmark j.
    found, _ = heatmaps.decode(r["image"][..., perm])
    inside = r["in_crop"] & np.all((r["points"] > 2) & (r["points"] < 61), axis=1)
    assert inside.sum() > 8
    np.testing.assert_allclose(found[inside], r["points"][inside], atol=0.6)
    # The mask blob of landmark 0 followed the same map.
    j0 = int(np.flatnonzero(perm == 0)[0])
    x, y = np.round(r["points"][j0]).astype(int)
    if 0 <= x < 64 and 0 <= y < 64:
        assert r["mask"][y, x] == 5


def test_augment_in_crop_and_colour():
    rng = np.random.default_rng(5)
    img = np.full((50, 50, 3), 0.5, np.float32)
    pts = np.array([[25.0, 25.0], [-100.0, 25.0], [25.0, 300.0]])
    r = T.augment(img, pts, [1, 1, 0], [25, 25], 0.25, 32, rng, np.arange(3), rotation=0, scale_range=(1, 1),
                  flip=False, color=True)
    np.testing.assert_array_equal(r["in_crop"], [True, False, False])
    np.testing.assert_array_equal(r["visible"], [True, True, False])     # "annotated" is untouched
    assert 0 <= r["image"].min() and r["image"].max() <= 1
    assert not np.allclose(r["image"], 0.5)                              # jitter changed the colours
    with pytest.raises(ValueError, match="flip_perm"):
        T.augment(img, pts, None, [25, 25], 0.25, 32, rng, MPII_FLIP)


def test_center_scale_helpers():
    c, s = T.center_scale_from_box([10, 20, 110, 70])
    np.testing.assert_allclose(c, [60, 45])
    assert s == pytest.approx(0.5)
    c2, s2 = T.center_scale_from_points(np.array([[10, 20], [110, 70], [999, 999]]), [1, 1, 0], padding=1.0)
    np.testing.assert_allclose(c2, [60, 45])
    assert s2 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="zero size"):
        T.center_scale_from_box([5, 5, 5, 5])


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 40), st.integers(3, 40), st.floats(-3.2, 3.2), st.floats(0.25, 4.0),
       st.floats(-30, 30), st.floats(-30, 30), st.booleans(), st.sampled_from(["zero", "edge"]))
def test_numba_bilinear_warp_matches_scipy_reference(h, w, theta, scale, tx, ty, gray, fill):
    rng = np.random.default_rng(h * 100 + w)
    img = rng.random((h, w) if gray else (h, w, 3)).astype(np.float32)
    M = np.array([[scale * np.cos(theta), -scale * np.sin(theta), tx],
                  [scale * np.sin(theta), scale * np.cos(theta), ty]])
    fast = T.warp_image(img, M, (17, 23), fill=fill)
    ref = T.warp_image(img, M, (17, 23), fill=fill, impl="scipy")
    assert fast.shape == ref.shape and fast.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-6)


def test_warp_identity_and_translation_by_whole_pixels_are_exact():
    img = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    np.testing.assert_array_equal(T.warp_image(img, np.array([[1.0, 0, 0], [0, 1, 0]]), (5, 6)), img)
    shifted = T.warp_image(img, np.array([[1.0, 0, 2], [0, 1, 1]]), (5, 6))  # crop = source + (2, 1)
    np.testing.assert_array_equal(shifted[1:, 2:], img[:-1, :-2])
    assert not shifted[0].any() and not shifted[:, :2].any()  # zero fill
    edge = T.warp_image(img, np.array([[1.0, 0, 2], [0, 1, 1]]), (5, 6), fill="edge")
    np.testing.assert_array_equal(edge[0, 2:], img[0, :-2])
    with pytest.raises(ValueError, match="impl"):
        T.warp_image(img, np.eye(2, 3), 4, impl="torch")
