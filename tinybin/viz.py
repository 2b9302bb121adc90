"""Matplotlib helpers: skeletons, faces, heatmap overlays, part masks, CED / PCKh / loss curves.

Used by the notebooks and ``python -m tinybin demo`` (paper figures 4-6, 8, 13, 14 have this kind
of content). Safe under the Agg backend: nothing here calls ``plt.show``, selects a backend, or
touches pyplot's global figure list; helpers draw on an ``ax`` you pass and return it, and
``contact_sheet`` builds a standalone ``matplotlib.figure.Figure`` (displayed by Jupyter when it
is the cell's value, or saved with ``path=``).

Pixel convention: ``imshow``'s default extent ``(-0.5, W - 0.5, H - 0.5, -0.5)`` puts pixel
centres at integers, which is tinybin's landmark convention, so points plot as they are. A
heatmap of stride s is drawn over the same extent (its pixel u covers input pixels
``[s*u - 0.5, s*(u+1) - 0.5)``).

Colours: subject's right = blue, left = red, midline = purple (consistent with ``MPII_FLIP``:
a flip turns every blue limb into a red one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import metrics
from .skeletons import FACE68_CLOSED, FACE68_GROUPS, FACE_PARTS, MPII_EDGES, MPII_SIDE

__all__ = ["SIDE_COLORS", "FACE_GROUP_COLORS", "FACE_PART_COLORS", "draw_pose", "draw_face",
           "overlay_heatmaps", "draw_mask", "plot_ced", "plot_pckh_curve", "plot_history", "contact_sheet"]

SIDE_COLORS = {1: "tab:blue", -1: "tab:red", 0: "tab:purple"}
"""Subject's right (+1), left (-1), midline (0)."""

FACE_GROUP_COLORS = {
    "jaw": "tab:gray", "right_brow": "tab:blue", "left_brow": "tab:red", "nose_bridge": "tab:purple",
    "nostrils": "tab:purple", "right_eye": "tab:blue", "left_eye": "tab:red", "outer_lip": "tab:orange",
    "inner_lip": "tab:pink",
}

FACE_PART_COLORS = ("#000000", "#f2c9a0", "#b8242b", "#e8636b", "#4a0d12", "#2a7de1", "#39a845")
"""Fixed colour per class of ``FACE_PARTS`` (background, skin, lower lip, upper lip, inner mouth, eyes, nose)."""


def _show(ax, image):
    if image is not None:
        img = np.asarray(image)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(img, 0.0, 1.0)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_autoscale_on(False)          # points outside the image must not rescale the view
    ax.set_axis_off()


def _edge_side(a: int, b: int, side: np.ndarray) -> int:
    # An edge takes the side of its off-midline end (r-hip -> pelvis is a right edge).
    return int(side[a] if side[a] != 0 else side[b])


def draw_pose(ax, image, points: np.ndarray, visible=None, edges=MPII_EDGES, side=MPII_SIDE,
              linewidth: float = 2.0, markersize: float = 4.0):
    """Draw a body skeleton (MPII-16 by default) over an image.

    image: (H, W, 3) / (H, W) or None; points: (K, 2) pixel coordinates; visible: (K,) or None.
    Edges with an unannotated end are skipped. Right limbs blue, left red, midline purple.
    Returns ax.
    """
    _show(ax, image)
    p = np.asarray(points, dtype=np.float64)
    K = p.shape[0]
    vis = np.ones(K, bool) if visible is None else np.asarray(visible).astype(bool)
    side = np.asarray(side) if side is not None and len(side) == K else np.zeros(K, int)
    for a, b in edges:
        if a < K and b < K and vis[a] and vis[b]:
            ax.plot(p[[a, b], 0], p[[a, b], 1], "-", color=SIDE_COLORS[_edge_side(a, b, side)], lw=linewidth)
    for s, col in SIDE_COLORS.items():
        sel = vis & (side == s)
        if sel.any():
            ax.plot(p[sel, 0], p[sel, 1], "o", color=col, ms=markersize, mec="white", mew=0.5)
    return ax


def draw_face(ax, image, points: np.ndarray, markersize: float = 2.5, linewidth: float = 1.0):
    """Draw 68 iBUG face points with their group polylines (eyes and lips closed). Returns ax."""
    _show(ax, image)
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"draw_face: expected (68, 2) points, got shape {p.shape}")
    for name, idx in FACE68_GROUPS.items():
        idx = list(idx) + ([idx[0]] if name in FACE68_CLOSED else [])
        ax.plot(p[idx, 0], p[idx, 1], "-", color=FACE_GROUP_COLORS[name], lw=linewidth)
    ax.plot(p[:, 0], p[:, 1], "o", color="yellow", ms=markersize, mec="black", mew=0.3)
    return ax


def overlay_heatmaps(ax, image, heatmaps: np.ndarray, stride: int = 4, alpha: float = 0.6,
                     cmap: str = "jet", logits: bool = False):
    """Overlay the max over channels of (h, w, K) heatmaps on the input image.

    The map is drawn with extent ``(-0.5, s*w - 0.5, s*h - 0.5, -0.5)`` (s = stride) so heatmap
    pixel u sits over input pixels ``[s*u - 0.5, s*(u+1) - 0.5)``, centre ``s*u + (s-1)/2``.
    logits=True applies a sigmoid first. Returns ax.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    if hm.ndim == 2:
        hm = hm[..., None]
    if hm.ndim != 3:
        raise ValueError(f"overlay_heatmaps: expected (h, w, K) heatmaps, got shape {hm.shape}")
    if logits:
        hm = 1.0 / (1.0 + np.exp(-hm))
    h, w = hm.shape[:2]
    _show(ax, image)
    ax.imshow(hm.max(-1), extent=(-0.5, stride * w - 0.5, stride * h - 0.5, -0.5), alpha=alpha, cmap=cmap,
              interpolation="nearest", vmin=0.0, vmax=max(1.0, float(hm.max())))
    ax.set_xlim(-0.5, stride * w - 0.5)
    ax.set_ylim(stride * h - 0.5, -0.5)
    return ax


def draw_mask(ax, image, mask: np.ndarray, classes: Sequence[str] = FACE_PARTS, colors=FACE_PART_COLORS,
              alpha: float = 0.5, legend: bool = True):
    """Alpha-blend an (H, W) integer label mask over the image, one fixed colour per class.

    Class 0 (background) is left transparent when an image is given. A legend lists the classes.
    Returns ax.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"draw_mask: expected an (H, W) label mask, got shape {m.shape}")
    n = len(classes)
    _show(ax, image)
    shown = np.ma.masked_where(m == 0, m) if image is not None else m
    ax.imshow(shown, cmap=ListedColormap(list(colors)[:n]), vmin=0, vmax=n - 1, alpha=alpha,
              interpolation="nearest")
    if legend:
        handles = [Patch(color=colors[c], label=classes[c]) for c in range(n)]
        ax.legend(handles=handles, loc="upper right", fontsize="x-small", framealpha=0.7)
    return ax


def plot_ced(ax, errors_dict: Mapping[str, np.ndarray], threshold: float, n: int = 1000, percent: bool = True):
    """Cumulative error distribution curves, with AUC@threshold and failure rate in the legend.

    errors_dict: {label: (M,) per-image NME}. x runs from 0 to threshold (in % if percent).
    Returns ax.
    """
    scale = 100.0 if percent else 1.0
    for name, errs in errors_dict.items():
        x, y = metrics.ced(errs, threshold, n)
        a = metrics.auc(errs, threshold)
        fr = metrics.failure_rate(errs, threshold)
        unit = "%" if percent else ""
        ax.plot(x * scale, y, label=f"{name}  AUC@{threshold * scale:g}{unit}={a:.3f}  FR={100 * fr:.1f}%")
    ax.set_xlim(0, threshold * scale)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (%)" if percent else "NME")
    ax.set_ylabel("fraction of images")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_pckh_curve(ax, curves: Mapping, key: str = "mean"):
    """PCKh against the normalised-distance threshold.

    curves: {label: dict from ``metrics.pckh_curve``} (plots ``curve[key]``), or
    {label: (thresholds, values in %)}. Returns ax.
    """
    for name, c in curves.items():
        if isinstance(c, Mapping):
            t, v = c["thresholds"], c[key]
        else:
            t, v = c
        t, v = np.asarray(t), np.asarray(v)
        ax.plot(t, v, label=f"{name}  @{t[-1]:g}: {v[-1]:.1f}")
    ax.set_xlabel("normalised distance (head size)")
    ax.set_ylabel("PCKh (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_history(ax, history, keys: Sequence[str] | None = None, logy: bool = False):
    """Training curves.

    history: {name: sequence of values} (an optional "step" or "epoch" entry gives the x axis), or
    a list of per-step dicts such as ``[{"step": 1, "loss": 0.7}, ...]``. keys picks the series
    (default: every numeric one except the x axis). Returns ax.
    """
    if not isinstance(history, Mapping):
        recs = list(history)
        names = dict.fromkeys(k for r in recs for k in r)          # first-seen order
        history = {k: [r.get(k, np.nan) for r in recs] for k in names}
    xkey = next((k for k in ("step", "epoch", "iteration") if k in history), None)
    if keys is None:
        keys = [k for k, v in history.items() if k != xkey and np.asarray(v).dtype.kind in "biuf"]
    for k in keys:
        y = np.asarray(history[k], dtype=np.float64)
        x = np.asarray(history[xkey], dtype=np.float64) if xkey else np.arange(1, len(y) + 1)
        ok = np.isfinite(y)
        ax.plot(x[ok], y[ok], label=k)
    ax.set_xlabel(xkey or "step")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def contact_sheet(images, points=None, kind: str = "pose", masks=None, path=None, visible=None,
                  ncols: int | None = None, titles=None, panel_size: float = 2.2) -> Figure:
    """A grid of samples with their landmarks (and masks) drawn.

    images: (N, H, W, 3) or a list; points: (N, K, 2) or None; kind: "pose" (MPII skeleton) or
    "face" (68 points); masks: (N, H, W) labels or None; visible: (N, K) or None; titles: N strings.
    Saves a PNG if ``path`` is given. Returns the Figure (not registered with pyplot).
    """
    if kind not in ("pose", "face"):
        raise ValueError(f"contact_sheet: kind must be 'pose' or 'face', got {kind!r}")
    n = len(images)
    if n == 0:
        raise ValueError("contact_sheet: no images")
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(panel_size * ncols, panel_size * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_axis_off()
            continue
        img = images[i]
        if masks is not None:
            draw_mask(ax, img, masks[i], legend=False)
            img = None                                   # already drawn
        if points is not None:
            v = None if visible is None else visible[i]
            if kind == "pose":
                draw_pose(ax, img, points[i], v, linewidth=1.5, markersize=3)
            else:
                draw_face(ax, img, points[i], markersize=1.5)
        elif img is not None:
            _show(ax, img)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
