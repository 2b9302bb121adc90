"""Heatmap targets and decoding (paper sections 3 and 6.1; heatmap regression as in Newell et al.).

The network predicts one map per landmark at 1/stride of the input resolution (stride 4: a
256-pixel crop gives 64x64 maps). Layout is channels last, like every tinybin array:
(h, w, K) for one sample, (N, h, w, K) for a batch.

Coordinates (README, "Conventions"): 0-based, pixel centres at integers, in both spaces. Heatmap
pixel ``u`` covers input pixels ``[stride*u - 0.5, stride*(u+1) - 0.5)``, so its centre is

    x = stride * u + (stride - 1) / 2        u = (x - (stride - 1) / 2) / stride

(1.5 for stride 4). Targets are Gaussians at the *exact* sub-pixel location, decoding is argmax
plus a quarter-pixel step, and a horizontal flip is exactly ``u -> w - 1 - u`` in both spaces, so
flip testing needs no extra shift (unlike reference code that rounds target centres).
"""

from __future__ import annotations

import numpy as np

__all__ = ["render", "render_batch", "image_to_heatmap", "heatmap_to_image", "decode",
           "flip_heatmaps", "flip_test_combine", "DECODE_TOLERANCE"]

DECODE_TOLERANCE = 0.25
"""Per-axis error bound of ``decode(render(p))`` in heatmap pixels, for a landmark whose argmax
pixel is not on the map border and sigma >= 0.5: the argmax is the nearest pixel (|d| <= 0.5)
and the quarter step towards the larger neighbour leaves |d - 0.25 sign(d)| <= 0.25."""


def _gauss_1d(centres: np.ndarray, n: int, sigma: float) -> np.ndarray:
    """(..., n) windowed 1-D Gaussians exp(-(i - c)^2 / (2 sigma^2)) for |i - c| <= 3 sigma, else 0."""
    d = np.arange(n, dtype=np.float64) - centres[..., None]
    g = np.exp(-(d * d) / (2.0 * sigma * sigma))
    g[np.abs(d) > 3.0 * sigma] = 0.0
    return g


def render(points: np.ndarray, shape, sigma: float = 1.0, visible=None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian target maps for landmarks given in heatmap coordinates.

    points: (K, 2) (x, y) heatmap coordinates, or (N, K, 2) for a batch; shape: (h, w);
    visible: (K,) / (N, K) annotated flags, or None (all annotated; NaN points count as missing).

    For each landmark p (separable, peak 1 at the exact sub-pixel location, window +-3 sigma):

        T[y, x, k] = exp(-((x - px)^2 + (y - py)^2) / (2 sigma^2))   if |x - px| <= 3 sigma and |y - py| <= 3 sigma
                     0                                                 otherwise

    Returns (targets float32 (h, w, K) or (N, h, w, K), weights float32 (K,) or (N, K)). The weight
    is 1, or 0 (and the map all zero) when the landmark is unannotated or its window misses every
    pixel of the map; use it to mask the loss.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-1] != 2:
        raise ValueError(f"render: expected points (K, 2) or (N, K, 2), got shape {p.shape}")
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f"render: shape must be positive (h, w), got {shape!r}")
    if not sigma > 0:
        raise ValueError(f"render: sigma must be positive, got {sigma!r}")
    vis = np.ones(p.shape[:-1], bool) if visible is None else np.asarray(visible).astype(bool)
    if vis.shape != p.shape[:-1]:
        raise ValueError(f"render: visible shape {vis.shape} does not match points {p.shape[:-1]}")
    ok = vis & np.all(np.isfinite(p), axis=-1)
    px = np.where(ok, p[..., 0], -1e9)          # far away -> empty window, no NaN arithmetic
    py = np.where(ok, p[..., 1], -1e9)
    gx = _gauss_1d(px, w, sigma)                # (..., K, w)
    gy = _gauss_1d(py, h, sigma)                # (..., K, h)
    weights = ok & gx.any(-1) & gy.any(-1)
    if p.ndim == 2:
        targets = np.einsum("kh,kw->hwk", gy, gx)
    else:
        targets = np.einsum("nkh,nkw->nhwk", gy, gx)
    return targets.astype(np.float32), weights.astype(np.float32)


def render_batch(points: np.ndarray, shape, sigma: float = 1.0, visible=None) -> tuple[np.ndarray, np.ndarray]:
    """``render`` for a batch: points (N, K, 2) -> (targets (N, h, w, K), weights (N, K))."""
    p = np.asarray(points)
    if p.ndim != 3:
        raise ValueError(f"render_batch: expected points (N, K, 2), got shape {p.shape}")
    return render(p, shape, sigma, visible)


def image_to_heatmap(points: np.ndarray, stride: int = 4) -> np.ndarray:
    """Input-pixel coordinates (..., 2) -> heatmap coordinates: ``u = (x - (stride - 1) / 2) / stride``."""
    return (np.asarray(points, dtype=np.float64) - (stride - 1) / 2.0) / stride


def heatmap_to_image(points: np.ndarray, stride: int = 4) -> np.ndarray:
    """Heatmap coordinates (..., 2) -> input-pixel coordinates: ``x = stride * u + (stride - 1) / 2``."""
    return np.asarray(points, dtype=np.float64) * stride + (stride - 1) / 2.0


def decode(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmark locations from heatmaps: argmax plus a quarter-pixel step.

    heatmaps: (h, w, K) or (N, h, w, K) (logits or probabilities: both steps only compare values,
    so any increasing map such as the sigmoid gives the same result).

        (x, y) = argmax_{x,y} H[y, x]                  (first maximum in row-major order)
        x += 0.25 * sign(H[y, x+1] - H[y, x-1])        only if 1 <= x <= w - 2
        y += 0.25 * sign(H[y+1, x] - H[y-1, x])        only if 1 <= y <= h - 2

    No -0.5 / +0.5 bookkeeping: with pixel centres at integers the result is already a continuous
    heatmap coordinate (map it back with ``heatmap_to_image`` and the inverse crop transform).
    Returns (points float64 (..., K, 2) as (x, y) heatmap coordinates, scores (..., K) = the maxima).
    """
    H = np.asarray(heatmaps)
    if H.ndim not in (3, 4):
        raise ValueError(f"decode: expected heatmaps (h, w, K) or (N, h, w, K), got shape {H.shape}")
    single = H.ndim == 3
    if single:
        H = H[None]
    N, h, w, K = H.shape
    if h == 0 or w == 0 or K == 0:
        raise ValueError(f"decode: empty heatmaps, shape {H.shape}")
    flat = H.reshape(N, h * w, K)
    idx = np.argmax(flat, axis=1)                                   # (N, K)
    scores = np.take_along_axis(flat, idx[:, None, :], axis=1)[:, 0, :]
    y, x = np.divmod(idx, w)
    n = np.arange(N)[:, None]
    k = np.arange(K)[None, :]
    dx = np.zeros((N, K))
    dy = np.zeros((N, K))
    ix = (x >= 1) & (x <= w - 2)
    if ix.any():
        xr, xl = np.minimum(x + 1, w - 1), np.maximum(x - 1, 0)
        diff = H[n, y, xr, k].astype(np.float64) - H[n, y, xl, k]
        dx = np.where(ix, 0.25 * np.sign(diff), 0.0)
    iy = (y >= 1) & (y <= h - 2)
    if iy.any():
        yd, yu = np.minimum(y + 1, h - 1), np.maximum(y - 1, 0)
        diff = H[n, yd, x, k].astype(np.float64) - H[n, yu, x, k]
        dy = np.where(iy, 0.25 * np.sign(diff), 0.0)
    pts = np.stack([x + dx, y + dy], axis=-1)                       # (N, K, 2)
    if single:
        return pts[0], scores[0]
    return pts, scores


def flip_heatmaps(heatmaps: np.ndarray, perm) -> np.ndarray:
    """Mirror heatmaps left-right and swap left/right channels.

    heatmaps: (h, w, K) or (N, h, w, K); perm: (K,) involution such as ``MPII_FLIP``.
    ``out[..., y, u, j] = in[..., y, w - 1 - u, perm[j]]``. Applying it twice is the identity.
    """
    H = np.asarray(heatmaps)
    perm = np.asarray(perm)
    if H.ndim not in (3, 4):
        raise ValueError(f"flip_heatmaps: expected (h, w, K) or (N, h, w, K), got shape {H.shape}")
    if perm.shape != (H.shape[-1],):
        raise ValueError(f"flip_heatmaps: perm shape {perm.shape} does not match {H.shape[-1]} channels")
    return H[..., ::-1, :][..., perm]


def flip_test_combine(out: np.ndarray, out_flipped: np.ndarray, perm) -> np.ndarray:
    """Flip-test average: ``(out + flip_heatmaps(out_flipped, perm)) / 2``.

    out: network output on the crop; out_flipped: output on ``flip_image(crop)``; both (.., h, w, K).
    Because a flip is exactly u -> w - 1 - u in heatmap space, no 1-pixel shift is needed.
    Averaging logits or probabilities both work; the argmax differs only in ties.
    """
    a = np.asarray(out)
    b = flip_heatmaps(out_flipped, perm)
    if a.shape != b.shape:
        raise ValueError(f"flip_test_combine: shapes differ: {a.shape} vs {b.shape}")
    return 0.5 * (a + b)
