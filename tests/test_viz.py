"""Smoke tests: every plotting helper draws without a display and writes a PNG (tinybin.viz)."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from tinybin import heatmaps, metrics, viz
from tinybin.skeletons import FACE_PARTS, MPII_EDGES, MPII_FLIP, MPII_SIDE

rng = np.random.default_rng(0)
IMG = rng.random((64, 64, 3)).astype(np.float32)
POSE = rng.uniform(5, 59, size=(16, 2))
FACE = rng.uniform(5, 59, size=(68, 2))


def _ax():
    fig = Figure(figsize=(3, 3))
    return fig, fig.add_subplot()


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pose_colours_follow_the_flip():
    side = {e: viz._edge_side(*e, MPII_SIDE) for e in MPII_EDGES}
    for (a, b), s in side.items():
        fa, fb = int(MPII_FLIP[a]), int(MPII_FLIP[b])
        flipped = side.get((fa, fb), side.get((fb, fa)))
        assert flipped == -s


def test_draw_pose_and_face(tmp_path):
    fig, ax = _ax()
    vis = np.ones(16, bool)
    vis[3] = False
    assert viz.draw_pose(ax, IMG, POSE, vis) is ax
    assert ax.get_xlim() == (-0.5, 63.5)                      # pixel centres at integers
    _save(fig, tmp_path, "pose")
    fig, ax = _ax()
    viz.draw_face(ax, IMG[..., 0], FACE)
    _save(fig, tmp_path, "face")
    with pytest.raises(ValueError, match="68"):
        viz.draw_face(ax, None, POSE)


def test_overlay_heatmaps_and_mask(tmp_path):
    hm, _ = heatmaps.render(heatmaps.image_to_heatmap(POSE), (16, 16))
    fig, ax = _ax()
    viz.overlay_heatmaps(ax, IMG, hm, stride=4)
    assert ax.images[-1].get_extent() == [-0.5, 63.5, 63.5, -0.5]
    _save(fig, tmp_path, "heatmaps")
    mask = rng.integers(0, len(FACE_PARTS), size=(64, 64))
    fig, ax = _ax()
    viz.draw_mask(ax, IMG, mask)
    assert len(ax.get_legend().get_texts()) == len(FACE_PARTS)
    _save(fig, tmp_path, "mask")


def test_curves(tmp_path):
    fig, ax = _ax()
    viz.plot_ced(ax, {"binary": rng.gamma(2, 0.02, 50), "real": rng.gamma(2, 0.015, 50)}, 0.08)
    assert "AUC@8" in ax.get_legend().get_texts()[0].get_text()
    _save(fig, tmp_path, "ced")
    gt = rng.uniform(0, 100, (5, 16, 2))
    curve = metrics.pckh_curve(gt + rng.normal(0, 3, gt.shape), gt, np.full(5, 20.0), None)
    fig, ax = _ax()
    viz.plot_pckh_curve(ax, {"net": curve, "other": (curve["thresholds"], curve["mean_weighted"])})
    _save(fig, tmp_path, "pckh")
    fig, ax = _ax()
    viz.plot_history(ax, {"step": [1, 2, 3], "loss": [1.0, 0.5, 0.3], "val_loss": [1.1, np.nan, 0.4]}, logy=True)
    viz.plot_history(ax, [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.7, "pckh": 40.0}])
    _save(fig, tmp_path, "history")


def test_contact_sheet_leaves_pyplot_alone(tmp_path):
    # Standalone figures: nothing piles up in pyplot's figure list in long notebook loops.
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    viz.contact_sheet(np.stack([IMG] * 2), np.stack([POSE] * 2), path=tmp_path / "s.png")
    assert plt.get_fignums() == before


def test_contact_sheet(tmp_path):
    imgs = np.stack([IMG] * 5)
    fig = viz.contact_sheet(imgs, np.stack([POSE] * 5), "pose", path=tmp_path / "sheet.png", titles=list("abcde"))
    assert isinstance(fig, Figure) and (tmp_path / "sheet.png").stat().st_size > 1000
    masks = rng.integers(0, 7, size=(3, 64, 64))
    viz.contact_sheet(imgs[:3], np.stack([FACE] * 3), "face", masks=masks, path=tmp_path / "faces.png")
    assert (tmp_path / "faces.png").exists()
    with pytest.raises(ValueError, match="kind"):
        viz.contact_sheet(imgs, None, "hand")
