"""Gaussian targets, decoding and flips (tinybin.heatmaps), and the full crop round trip."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybin import heatmaps as hm
from tinybin import transforms as T
from tinybin.skeletons import MPII_FLIP

TOL = hm.DECODE_TOLERANCE + 1e-6     # per axis, heatmap pixels (see DECODE_TOLERANCE's docstring)


def test_render_hand_values_layout_and_window():
    t, w = hm.render(np.array([[3.0, 2.0], [5.5, 4.0]]), (8, 10), sigma=1.0)
    assert t.shape == (8, 10, 2) and t.dtype == np.float32 and w.dtype == np.float32
    np.testing.assert_array_equal(w, [1, 1])
    assert t[2, 3, 0] == 1.0                                            # peak 1 at an integer point
    assert t[2, 4, 0] == pytest.approx(np.exp(-0.5))
    assert t[3, 4, 0] == pytest.approx(np.exp(-1.0))
    assert t[2, 6, 0] == pytest.approx(np.exp(-4.5))                    # |dx| = 3 sigma: inside the window
    assert t[2, 7, 0] == 0 and t[6, 3, 0] == 0                          # beyond 3 sigma: cut
    assert t[4, 5, 1] == t[4, 6, 1] == pytest.approx(np.exp(-0.125))    # symmetric about x = 5.5
    assert t[..., 1].max() < 1


def test_render_weights_for_missing_and_off_map_landmarks():
    pts = np.array([[2.0, 2.0], [2.0, 2.0], [-3.5, 2.0], [-2.9, 2.0], [np.nan, 1.0], [9.0, 12.0]])
    t, w = hm.render(pts, (8, 10), sigma=1.0, visible=[1, 0, 1, 1, 1, 1])
    # annotated; unannotated; window [-6.5, -0.5] misses pixel 0; window reaches pixel 0; NaN;
    # y window [9, 15] misses rows 0..7.
    np.testing.assert_array_equal(w, [1, 0, 0, 1, 0, 0])
    assert np.all(t[..., [1, 2, 4, 5]] == 0)
    assert t[2, 0, 3] == pytest.approx(np.exp(-2.9 ** 2 / 2), rel=1e-6)
    with pytest.raises(ValueError, match="visible"):
        hm.render(pts, (8, 10), visible=[1, 1])
    with pytest.raises(ValueError, match="points"):
        hm.render(np.zeros((3, 3)), (8, 10))


def test_render_batch_equals_per_sample():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-2, 17, size=(3, 5, 2))
    vis = rng.random((3, 5)) < 0.7
    tb, wb = hm.render_batch(pts, (16, 12), 1.5, vis)
    assert tb.shape == (3, 16, 12, 5) and wb.shape == (3, 5)
    for n in range(3):
        t, w = hm.render(pts[n], (16, 12), 1.5, vis[n])
        np.testing.assert_array_equal(tb[n], t)
        np.testing.assert_array_equal(wb[n], w)


def test_stride_mapping():
    assert hm.heatmap_to_image(np.array([0.0, 0.0]))[0] == 1.5
    np.testing.assert_allclose(hm.image_to_heatmap(np.array([[1.5, 5.5], [-0.5, 255.5]])), [[0, 1], [-0.5, 63.5]])
    # The 256-pixel crop's pixel extent maps onto the 64-pixel map's pixel extent.
    p = np.random.default_rng(1).uniform(-10, 300, (7, 2))
    np.testing.assert_allclose(hm.heatmap_to_image(hm.image_to_heatmap(p, 4), 4), p)
    np.testing.assert_allclose(hm.image_to_heatmap(p, 1), p)


def test_decode_hand_cases():
    H = np.zeros((5, 6, 4), np.float32)
    H[2, 3, 0] = 1.0
    H[2, 4, 0] = 0.5                          # larger right neighbour -> x + 0.25
    H[1, 3, 0] = 0.2                          # larger upper neighbour -> y - 0.25
    H[0, 0, 1] = 1.0
    H[0, 1, 1] = 0.9                          # border: no shift even with a neighbour
    H[3, 2, 2] = 1.0                          # equal neighbours: no shift
    H[..., 3] = -5.0
    H[1, 4, 3] = -1.0                         # negative logits decode too
    pts, sc = hm.decode(H)
    np.testing.assert_array_equal(pts, [[3.25, 1.75], [0, 0], [2, 3], [4, 1]])
    np.testing.assert_array_equal(sc, [1.0, 1.0, 1.0, -1.0])
    pb, sb = hm.decode(np.stack([H, H[:, :, ::-1]]))
    assert pb.shape == (2, 4, 2) and sb.shape == (2, 4)
    np.testing.assert_array_equal(pb[0], pts)
    np.testing.assert_array_equal(pb[1], pts[::-1])
    # A monotone map (sigmoid) gives the same locations.
    np.testing.assert_array_equal(hm.decode(1 / (1 + np.exp(-H)))[0], pts)
    with pytest.raises(ValueError, match="heatmaps"):
        hm.decode(np.zeros((4, 4)))


def test_render_decode_integer_points_exact():
    ys, xs = np.mgrid[0:9, 0:11]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)      # every pixel, borders included
    t, _ = hm.render(pts, (9, 11), sigma=1.0)
    got, sc = hm.decode(t)
    np.testing.assert_array_equal(got, pts)
    np.testing.assert_array_equal(sc, 1.0)


@settings(deadline=None)
@given(x=st.floats(1.0, 30.0), y=st.floats(1.0, 22.0), sigma=st.sampled_from([0.5, 1.0, 1.75, 3.0]))
def test_render_decode_subpixel_within_tolerance(x, y, sigma):
    """Interior points (argmax not on the border): |error| <= 0.25 per axis."""
    t, w = hm.render(np.array([[x, y]]), (24, 32), sigma)
    got, _ = hm.decode(t)
    assert w[0] == 1
    assert abs(got[0, 0] - x) <= TOL and abs(got[0, 1] - y) <= TOL


def test_flip_heatmaps_twice_is_identity_and_matches_flipped_points():
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 15, size=(16, 2))
    t, w = hm.render(pts, (16, 16), 1.0)
    f = hm.flip_heatmaps(t, MPII_FLIP)
    np.testing.assert_array_equal(hm.flip_heatmaps(f, MPII_FLIP), t)
    tf, wf = hm.render(T.flip_points(pts, 16, MPII_FLIP), (16, 16), 1.0)
    np.testing.assert_allclose(f, tf, atol=1e-6)
    np.testing.assert_array_equal(wf, w[MPII_FLIP])
    batch = np.stack([t, t * 0.5])
    np.testing.assert_array_equal(hm.flip_heatmaps(batch, MPII_FLIP)[1], f * 0.5)


def test_flip_test_combine_needs_no_shift():
    """The output of a flipped crop, flipped back, lands exactly on the plain output."""
    rng = np.random.default_rng(3)
    pts = rng.uniform(1, 14, size=(16, 2))
    out, _ = hm.render(pts, (16, 16))                                       # "network" on the crop
    out_f, _ = hm.render(T.flip_points(pts, 16, MPII_FLIP), (16, 16))       # "network" on flip_image(crop)
    comb = hm.flip_test_combine(out, out_f, MPII_FLIP)
    np.testing.assert_allclose(comb, out, atol=1e-6)
    np.testing.assert_allclose(hm.decode(comb)[0], hm.decode(out)[0])


@settings(deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stride=st.sampled_from([1, 2, 4]))
def test_round_trip_crop_augment_render_decode_uncrop(seed, stride):
    """crop -> augment -> render -> decode -> heatmap_to_image -> inverse affine recovers landmarks.

    Tolerance: decoding is exact to 0.25 heatmap px per axis, i.e. 0.25 * sqrt(2) * stride crop px,
    i.e. that times 200 * scale * s / R source px (s the sampled scale jitter); checked for landmarks
    whose argmax pixel is off the map border.
    """
    rng = np.random.default_rng(seed)
    R, K = 64, 16
    hw = R // stride
    c = rng.uniform(100, 400, size=2)
    s = rng.uniform(0.5, 3.0)
    pts = c + rng.uniform(-80, 80, size=(K, 2)) * s
    vis = rng.random(K) < 0.9
    img = np.zeros((8, 8, 3), np.float32)                 # the image does not matter here
    r = T.augment(img, pts, vis, c, s, R, rng, MPII_FLIP, color=False)
    u = hm.image_to_heatmap(r["points"], stride)
    t, w = hm.render(u, (hw, hw), sigma=1.0, visible=r["visible"])
    dec, _ = hm.decode(t)
    back = T.apply_affine(hm.heatmap_to_image(dec, stride), T.invert_affine(r["M"]))
    perm = MPII_FLIP if r["params"]["flip"] else np.arange(K)
    expect = pts[perm]
    interior = (w > 0) & np.all((u >= 1) & (u <= hw - 2), axis=1)
    tol = (hm.DECODE_TOLERANCE * np.sqrt(2) * stride) * (200 * s * r["params"]["scale"] / R) + 1e-6
    err = np.linalg.norm(back - expect, axis=1)
    assert interior.any()
    assert np.all(err[interior] <= tol)
    # Weight 1 iff annotated and the +-3 sigma window touches a pixel of the map.
    np.testing.assert_array_equal(w > 0, r["visible"] & np.all((u >= -3) & (u <= hw + 2), axis=1))
