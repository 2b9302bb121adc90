"""Scene helpers shared by the synthetic generators: rotations, colours, backgrounds, clutter,
occluders, post-processing (blur, noise, lighting) and stacking samples into a batch."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .render import OCCLUDE, PAINT


# ============================================================================================
# 2. Shared helpers: rotations, colours, backgrounds, post-processing
# ============================================================================================

def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _clip01(v):
    return np.clip(v, 0.0, 1.0)


def _clamp(v, lo, hi):
    return float(min(max(v, lo), hi))


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / (np.linalg.norm(v) + 1e-12)


def _hsv(h, s, v):
    """HSV in [0, 1] -> RGB (3,) float64."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _luma(rgb):
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


_SKIN_LIGHT = np.array([0.96, 0.80, 0.68])
_SKIN_DARK = np.array([0.33, 0.21, 0.14])
_HAIR = np.array([[0.07, 0.05, 0.04], [0.25, 0.16, 0.09], [0.45, 0.30, 0.15], [0.85, 0.70, 0.42],
                  [0.55, 0.22, 0.08], [0.70, 0.70, 0.70]])


def _skin(rng):
    t = rng.random() ** 0.8
    return np.clip(_SKIN_LIGHT * (1 - t) + _SKIN_DARK * t + rng.normal(0, 0.025, 3), 0, 1)


def _hair(rng):
    return np.clip(_HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.15) + rng.normal(0, 0.02, 3), 0, 1)


def _cloth(rng):
    if rng.random() < 0.25:                        # greys, black, white
        return np.full(3, rng.uniform(0.08, 0.92)) + rng.normal(0, 0.02, 3)
    return _hsv(rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.25, 0.95))


@lru_cache(maxsize=64)
def _interp_index(R: int, g: int):
    # Bilinear resampling of a g-point grid spanning the image onto R pixels: (i0, f) with
    # value = v[i0] (1 - f) + v[i0 + 1] f. Gathers, not matrix products: tiny BLAS calls stall
    # when the machine is busy.
    x = np.linspace(0, g - 1, R)
    i0 = np.clip(np.floor(x).astype(np.intp), 0, g - 2)
    return i0, (x - i0).astype(np.float32)


def _upsample(grid: np.ndarray, R: int) -> np.ndarray:
    """Bilinear upsampling of a (g, g[, C]) grid to (R, R[, C]) float32 (corners aligned)."""
    i0, f = _interp_index(R, grid.shape[0])
    grid = grid.astype(np.float32)
    fr = f.reshape((-1,) + (1,) * (grid.ndim - 1))
    rows = grid[i0] * (1 - fr) + grid[i0 + 1] * fr                     # (R, g[, C])
    fc = f.reshape((1, -1) + (1,) * (grid.ndim - 2))
    return rows[:, i0] * (1 - fc) + rows[:, i0 + 1] * fc


@lru_cache(maxsize=8)
def _grid(R: int):
    Y, X = np.mgrid[0:R, 0:R].astype(np.float32)
    return X, Y


def _background(rng, R, d, avoid_luma=None):
    """A smooth colour field, optional noise texture and gratings: (R, R, 3) float32. ``avoid_luma`` keeps the base
    brightness away from the figure's so easy settings stay legible."""
    base = _hsv(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.15, 0.95))
    if avoid_luma is not None and abs(_luma(base) - avoid_luma) < 0.25 * (1 - d):
        base = np.clip(base + (0.3 if avoid_luma < 0.5 else -0.3), 0, 1)
    g = int(rng.integers(2, 7))
    grid = base + rng.normal(0, 0.06 + 0.14 * d, (g, g, 3)) * rng.uniform(0.3, 1.0)
    img = _upsample(grid, R)
    if rng.random() < 0.2 + 0.5 * d:                # a mid-frequency noise texture (foliage, carpet)
        g2 = max(4, R // int(rng.integers(2, 6)))
        tex = _upsample(rng.normal(0, 1, (g2, g2)), R)
        img *= (1 + np.float32(rng.uniform(0.04, 0.15)) * tex)[..., None]
    X, Y = _grid(R)
    for _ in range(rng.poisson(0.3 + 1.2 * d)):     # wallpaper-like gratings
        th, f = rng.uniform(0, np.pi), rng.uniform(1.5, 10) / R
        amp = rng.uniform(0.03, 0.12)
        img *= (1 + amp * np.sin(2 * np.pi * f * (np.cos(th) * X + np.sin(th) * Y) + rng.uniform(0, 6.3)))[..., None]
    return img


def _clutter(dl, rng, R, d, palette):
    """Random shapes and limb-like strokes behind the subject (hard negatives use its colours)."""
    for _ in range(rng.poisson(1.0 + 7.0 * d)):
        col = _cloth(rng) if rng.random() < 0.7 else palette[rng.integers(len(palette))]
        c = rng.uniform(-0.1, 1.1, 2) * R
        size = R * rng.uniform(0.05, 0.3)
        kw = dict(alpha=rng.uniform(0.6, 1.0), grad=tuple(rng.normal(0, 0.3 / R, 2)))
        if rng.random() < 0.5:
            dl.add(dl.ellipse(c, size, size * rng.uniform(0.3, 1.0), rng.uniform(0, np.pi), col,
                              shade=rng.uniform(0, 0.4), **kw))
        else:
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = size * rng.uniform(0.5, 1.0, n)
            pts = c + np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
            dl.add(dl.polygon(pts, col, rounding=rng.uniform(0, 0.05) * R, **kw))
    for _ in range(rng.poisson(0.3 + 5.0 * d)):    # limb-like distractor strokes
        col = palette[rng.integers(len(palette))] * rng.uniform(0.8, 1.2) if rng.random() < 0.7 else _cloth(rng)
        p0 = rng.uniform(-0.1, 1.1, 2) * R
        p1 = p0 + _unit(rng.normal(size=2)) * R * rng.uniform(0.08, 0.3)
        r = R * rng.uniform(0.015, 0.045)
        dl.add(dl.capsule(p0, p1, r, r * rng.uniform(0.7, 1.1), np.clip(col, 0, 1), shade=rng.uniform(0.2, 0.6)))
        if rng.random() < 0.4:                     # an articulated stroke, like a bent arm
            p2 = p1 + _unit(rng.normal(size=2)) * R * rng.uniform(0.08, 0.25)
            dl.add(dl.capsule(p1, p2, r, r * 0.8, np.clip(col, 0, 1), shade=0.4))


def _occluders(dl, rng, R, d, anchors, prob, scale_px):
    """Blobs drawn over the subject, recorded in the occlusion buffer."""
    if rng.random() >= prob:
        return
    for _ in range(1 + int(rng.random() < 0.3 * d)):
        c = anchors[rng.integers(len(anchors))] + rng.normal(0, 0.08, 2) * scale_px
        size = scale_px * rng.uniform(0.08, 0.22)
        col = _cloth(rng)
        kw = dict(target=PAINT | OCCLUDE, stripe=(1, 0, rng.uniform(0.5, 3) / size, rng.uniform(0, 0.2), 0))
        if rng.random() < 0.5:
            dl.add(dl.ellipse(c, size, size * rng.uniform(0.4, 1.0), rng.uniform(0, np.pi), col, shade=0.4, **kw))
        else:
            n = int(rng.integers(4, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            pts = c + np.stack([np.cos(ang), np.sin(ang)], 1) * size * rng.uniform(0.6, 1.0, (n, 1))
            dl.add(dl.polygon(pts, col, rounding=size * 0.1, **kw))


def _finish(img, rng, R, d):
    """Lighting, contrast, colour cast, blur and sensor noise; returns float32 in [0, 1]."""
    X, Y = _grid(R)
    gx, gy = (float(v) for v in rng.normal(0, 0.35 * d, 2) / R)
    light = (1 - gx * R / 2 - gy * R / 2) + gx * X + gy * Y                   # illumination gradient
    img *= light[..., None]
    img *= rng.uniform(1 - 0.15 * d, 1 + 0.15 * d, 3).astype(np.float32)    # colour cast
    m = float(img.mean())
    c, b = rng.uniform(1 - 0.5 * d, 1 + 0.15 * d), rng.uniform(1 - 0.35 * d, 1 + 0.25 * d)
    img = img * np.float32(c) + np.float32(m * (b - c))                      # contrast about the mean, brightness
    sigma = rng.uniform(0, 0.2 + 0.8 * d) * R / 64
    if sigma > 0.25:
        img = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="nearest", truncate=2.5)
    ns = rng.uniform(0, 0.01 + 0.05 * d)
    if ns > 0.005:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(ns)
    return np.clip(img, 0, 1, out=img)


def _sample_seed(seed, split, index):
    split_id = {"train": 0, "test": 1}[split]
    return np.random.default_rng(np.random.SeedSequence([int(seed), split_id, int(index)]))


def _convex_hull(P: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of (n, 2) points, counter-clockwise in y-up terms."""
    P = P[np.lexsort((P[:, 1], P[:, 0]))]
    if len(P) < 3:
        return P

    def half(points):
        h = []
        for p in points:
            while len(h) >= 2 and ((h[-1][0] - h[-2][0]) * (p[1] - h[-2][1])
                                   - (h[-1][1] - h[-2][1]) * (p[0] - h[-2][0])) <= 0:
                h.pop()
            h.append(p)
        return h

    lower, upper = half(P), half(P[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _stack(samples: list[dict]) -> dict:
    out = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        if vals[0] is None:
            continue
        out[k] = np.stack([np.asarray(v) for v in vals])
        if out[k].dtype == np.float64:
            out[k] = out[k].astype(np.float32)
    return out
