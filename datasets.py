"""Data for tinybin: synthetic pose and face sets, and loaders for MPII, LSP, 300W and AFLW2000-3D.

The paper trains on MPII (section 6.2, 16 body joints, PCKh), 300W-LP / AFLW2000-3D (section 6.3,
68 face points, NME by yaw) and 300W part masks (section 9, 7 classes). Those sets are large and
licence-bound, so the notebooks and the demo train on procedurally rendered stand-ins with the same
annotation layout; the loaders read the real formats into the same sample structure.

Sample dicts (both synthetic sets and the loaders):

- ``image``  (H, W, 3) float32 in [0, 1]
- ``points`` (K, 2) float32, 0-based pixel coordinates (x, y), pixel centres at integers
- ``visible`` (K,) float32
- ``center`` (2,) float32 and ``scale`` float: the 200-pixel-box crop convention of
  ``tinybin.transforms.crop_transform``. ``scale`` already includes MPII's usual 1.25 enlargement
  for bodies (so ``crop_transform(center, scale, R)`` frames the person like a training crop) and
  FAN's ``(w + h) / 190`` rule for faces.

What ``visible`` means. For the loaders it is *annotated* (MPII's ``1 - jnt_missing``, the flag
PCKh counts; ``tinybin.metrics`` uses the same meaning); the format's occlusion flag, where there is
one, is returned separately as ``is_visible``. For ``SyntheticPose`` it is "in the frame and not
hidden by an occluding blob", and ``occluded`` marks the in-frame joints an occluder hides, so
``visible + occluded`` is the annotated set.

This module lives at the repository root, not in the package (the name ``datasets`` belongs to a
popular package); tests and notebooks import it with the repo root on ``sys.path``.

Rendering. Every synthetic image is one *display list* (rows of primitives: tapered capsules,
ellipses, rounded polygons, shaded ellipsoid heads) painted in order with analytic anti-aliasing
(coverage = clip(0.5 - signed distance in pixels, 0, 1)). ``render_list`` is the Numba kernel,
``render_list_ref`` its pure-NumPy reference; ``tests/test_datasets.py`` checks they agree.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from numba import njit
from scipy import ndimage

from tinybin.metrics import head_size
from tinybin.skeletons import FACE68_FLIP, FACE_PART_POLYGONS, FACE_PARTS, MPII_FLIP, lsp_to_mpii
from tinybin.transforms import augment as _augment
from tinybin.transforms import center_scale_from_points

__all__ = [
    "SyntheticPose", "SyntheticFace", "RecordDataset", "Record", "FACE_TEMPLATE_3D", "FACE_SCALE_DIVISOR",
    "DisplayList", "head_params",
    "render_list", "render_list_ref", "load_image",
    "read_pts", "load_300w", "load_mpii_mat", "load_mpii_json", "load_lsp", "load_aflw2000",
]

# ============================================================================================
# 1. The display list and its renderer
# ============================================================================================
#
# One primitive per row of a float64 array ``prims`` (P, NF); variable-size data (polygon
# vertices, head parameters) lives in a flat float64 array ``data`` that rows index into.

CAPSULE, ELLIPSE, POLYGON, HEAD, SHADED_POLYGON = 0, 1, 2, 3, 4
F_TYPE = 0
F_GEO = 1           # 8 geometry slots, meaning depends on the type (see DisplayList)
F_RGB = 9           # 9, 10, 11
F_ALPHA = 12
F_SHADE = 13        # capsule: cylinder shading 1 - shade * q^2 (q = distance to the axis / radius)
F_STRIPE = 14       # dx, dy, freq (cycles / px), amp, phase: 1 + amp * sin(2 pi freq <p - ref, d> + phase)
F_GRAD = 19         # gx, gy: brightness 1 + gx (x - ref_x) + gy (y - ref_y)
F_TARGET = 21       # bit 1: paint colour; bit 2: max coverage into ``occ``; bit 4: label at covered pixel centres
F_LABEL = 22
NF = 23

PAINT, OCCLUDE, LABEL = 1, 2, 4

# Head parameter block (HEAD and SHADED_POLYGON): an ellipsoid x^T Q x <= 1 in camera coordinates
# (pixels; x right, y down, z away from the camera) centred on (cx, cy, 0).
H_C = 0             # cx, cy
H_S = 2             # S00, S01, S11: the silhouette x^T S x <= 1 (Schur complement of Q)
H_Q = 5             # Q, 3x3 row-major
H_T = 14            # T = D^-1 R^T, 3x3: camera offset -> unit-sphere head coordinates u
H_SKIN = 23
H_HAIR = 26
H_LINE = 29         # hair where u_y < h0 + h1 u_z + h2 u_z^2 (y down, z backwards)
H_SOFT = 32         # hairline softness (in u units)
H_LIGHT = 33        # unit vector towards the light
H_AMB = 36
H_DIF = 37
H_RAD = 38          # bounding radius in pixels
NH = 39


@njit(cache=True)
def _sd_capsule(px, py, x0, y0, x1, y1, r0, r1):
    # Tapered capsule: distance to the segment minus the radius interpolated at the closest point.
    vx = x1 - x0
    vy = y1 - y0
    wx = px - x0
    wy = py - y0
    L2 = vx * vx + vy * vy
    t = 0.0
    if L2 > 1e-12:
        t = (wx * vx + wy * vy) / L2
        t = min(max(t, 0.0), 1.0)
    dx = wx - t * vx
    dy = wy - t * vy
    d = math.sqrt(dx * dx + dy * dy)
    r = r0 + t * (r1 - r0)
    return d - r, d / max(r, 1e-6)


@njit(cache=True)
def _sd_ellipse(px, py, cx, cy, a, b, c, s):
    # First-order distance to an ellipse: (k - 1) / |grad k|, k = sqrt((u/a)^2 + (v/b)^2);
    # (c, s) = (cos, sin) of its rotation, hoisted out of the pixel loop.
    dx = px - cx
    dy = py - cy
    u = (c * dx + s * dy) / a
    v = (-s * dx + c * dy) / b
    k2 = u * u + v * v
    if k2 < 1e-18:
        return -min(a, b), 0.0
    k = math.sqrt(k2)
    ua = u / a
    vb = v / b
    g = math.sqrt(ua * ua + vb * vb) / k
    return (k - 1.0) / g, k


@njit(cache=True)
def _sd_polygon(px, py, data, start, n, inside_only):
    # Distance to the nearest edge, negative inside (non-zero winding rule, so self-intersecting
    # outlines of strongly rotated faces are still filled). inside_only: skip the distance and
    # return -1 / +1 (label-only rows need just the pixel-centre test).
    dmin = 1e30
    wn = 0
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        ax = data[start + 2 * i]
        ay = data[start + 2 * i + 1]
        bx = data[start + 2 * j]
        by = data[start + 2 * j + 1]
        vx = bx - ax
        vy = by - ay
        wx = px - ax
        wy = py - ay
        if not inside_only:
            L2 = vx * vx + vy * vy
            t = 0.0
            if L2 > 1e-12:
                t = min(max((wx * vx + wy * vy) / L2, 0.0), 1.0)
            ex = wx - t * vx
            ey = wy - t * vy
            d = ex * ex + ey * ey
            if d < dmin:
                dmin = d
        cr = vx * wy - wx * vy
        if ay <= py:
            if by > py and cr > 0:
                wn += 1
        elif by <= py and cr < 0:
            wn -= 1
    d = 1.0 if inside_only else math.sqrt(dmin)
    return -d if wn != 0 else d


@njit(cache=True)
def _sd_head(px, py, data, s):
    dx = px - data[s + H_C]
    dy = py - data[s + H_C + 1]
    S00 = data[s + H_S]
    S01 = data[s + H_S + 1]
    S11 = data[s + H_S + 2]
    f = S00 * dx * dx + 2.0 * S01 * dx * dy + S11 * dy * dy
    k = math.sqrt(max(f, 0.0))
    if k < 1e-9:
        return -1e3
    gx = (S00 * dx + S01 * dy) / k
    gy = (S01 * dx + S11 * dy) / k
    return (k - 1.0) / max(math.sqrt(gx * gx + gy * gy), 1e-9)


@njit(cache=True)
def _head_colour(px, py, data, s):
    # Front surface of the ellipsoid under the pixel (orthographic ray along +z), Lambert shading
    # by its normal, hair where the point lies above the (soft) hairline in head coordinates.
    dx = px - data[s + H_C]
    dy = py - data[s + H_C + 1]
    q = s + H_Q
    A = data[q + 8]
    B = data[q + 2] * dx + data[q + 5] * dy
    C = data[q + 0] * dx * dx + 2.0 * data[q + 1] * dx * dy + data[q + 4] * dy * dy
    disc = max(B * B - A * (C - 1.0), 0.0)      # clamped: anti-aliased rim pixels use the silhouette
    z = (-B - math.sqrt(disc)) / A
    nx = data[q + 0] * dx + data[q + 1] * dy + data[q + 2] * z
    ny = data[q + 3] * dx + data[q + 4] * dy + data[q + 5] * z
    nz = data[q + 6] * dx + data[q + 7] * dy + data[q + 8] * z
    nn = math.sqrt(nx * nx + ny * ny + nz * nz) + 1e-12
    lam = (nx * data[s + H_LIGHT] + ny * data[s + H_LIGHT + 1] + nz * data[s + H_LIGHT + 2]) / nn
    br = data[s + H_AMB] + data[s + H_DIF] * max(lam, 0.0)
    t = s + H_T
    uy = data[t + 3] * dx + data[t + 4] * dy + data[t + 5] * z
    uz = data[t + 6] * dx + data[t + 7] * dy + data[t + 8] * z
    line = data[s + H_LINE] + data[s + H_LINE + 1] * uz + data[s + H_LINE + 2] * uz * uz
    w = min(max((line - uy) / data[s + H_SOFT], 0.0), 1.0)
    r = (data[s + H_SKIN] * (1.0 - w) + data[s + H_HAIR] * w) * br
    g = (data[s + H_SKIN + 1] * (1.0 - w) + data[s + H_HAIR + 1] * w) * br
    b = (data[s + H_SKIN + 2] * (1.0 - w) + data[s + H_HAIR + 2] * w) * br
    return r, g, b


@njit(cache=True)
def _bbox(row, data):
    typ = int(row[F_TYPE])
    if typ == CAPSULE:
        r = max(row[F_GEO + 4], row[F_GEO + 5])
        return (min(row[F_GEO], row[F_GEO + 2]) - r, min(row[F_GEO + 1], row[F_GEO + 3]) - r,
                max(row[F_GEO], row[F_GEO + 2]) + r, max(row[F_GEO + 1], row[F_GEO + 3]) + r)
    if typ == ELLIPSE:
        a, b = row[F_GEO + 2], row[F_GEO + 3]
        c, s = math.cos(row[F_GEO + 4]), math.sin(row[F_GEO + 4])
        ex = math.sqrt(a * a * c * c + b * b * s * s)
        ey = math.sqrt(a * a * s * s + b * b * c * c)
        return row[F_GEO] - ex, row[F_GEO + 1] - ey, row[F_GEO] + ex, row[F_GEO + 1] + ey
    if typ == HEAD:
        s = int(row[F_GEO])
        r = data[s + H_RAD]
        return data[s + H_C] - r, data[s + H_C + 1] - r, data[s + H_C] + r, data[s + H_C + 1] + r
    st = int(row[F_GEO])
    n = int(row[F_GEO + 1])
    rr = row[F_GEO + 2]
    x0 = 1e30
    y0 = 1e30
    x1 = -1e30
    y1 = -1e30
    for i in range(n):
        x0 = min(x0, data[st + 2 * i])
        x1 = max(x1, data[st + 2 * i])
        y0 = min(y0, data[st + 2 * i + 1])
        y1 = max(y1, data[st + 2 * i + 1])
    return x0 - rr, y0 - rr, x1 + rr, y1 + rr


def _render_list(canvas, occ, labels, prims, data):
    """Paint the display list ``prims``/``data`` into canvas (H, W, 3), occ (H, W), labels (H, W).

    Optimizations: each primitive visits only its clipped bounding box (+1 px of anti-aliasing
    margin); pixels with zero coverage skip the colour maths.
    """
    H = canvas.shape[0]
    W = canvas.shape[1]
    for p in range(prims.shape[0]):
        row = prims[p]
        typ = int(row[F_TYPE])
        bx0, by0, bx1, by1 = _bbox(row, data)
        xa = max(int(math.floor(bx0)) - 1, 0)
        ya = max(int(math.floor(by0)) - 1, 0)
        xb = min(int(math.ceil(bx1)) + 2, W)
        yb = min(int(math.ceil(by1)) + 2, H)
        target = int(row[F_TARGET])
        label = int(row[F_LABEL])
        alpha = row[F_ALPHA]
        shade = row[F_SHADE]
        sdx = row[F_STRIPE]
        sdy = row[F_STRIPE + 1]
        sfreq = row[F_STRIPE + 2]
        samp = row[F_STRIPE + 3]
        sph = row[F_STRIPE + 4]
        gx = row[F_GRAD]
        gy = row[F_GRAD + 1]
        ec = math.cos(row[F_GEO + 4])
        es = math.sin(row[F_GEO + 4])
        inside_only = target == LABEL and row[F_GEO + 2] == 0.0
        if typ == CAPSULE or typ == ELLIPSE:
            refx = row[F_GEO]
            refy = row[F_GEO + 1]
        else:
            refx = row[F_GEO + 3] if typ == POLYGON else 0.0
            refy = row[F_GEO + 4] if typ == POLYGON else 0.0
        for y in range(ya, yb):
            for x in range(xa, xb):
                q = 0.0
                if typ == CAPSULE:
                    sd, q = _sd_capsule(x, y, row[F_GEO], row[F_GEO + 1], row[F_GEO + 2], row[F_GEO + 3],
                                        row[F_GEO + 4], row[F_GEO + 5])
                elif typ == ELLIPSE:
                    sd, q = _sd_ellipse(x, y, row[F_GEO], row[F_GEO + 1], row[F_GEO + 2], row[F_GEO + 3], ec, es)
                elif typ == HEAD:
                    sd = _sd_head(x, y, data, int(row[F_GEO]))
                else:
                    sd = _sd_polygon(x, y, data, int(row[F_GEO]), int(row[F_GEO + 1]), inside_only) - row[F_GEO + 2]
                cov = 0.5 - sd
                if cov <= 0.0:
                    continue
                if cov > 1.0:
                    cov = 1.0
                if (target & LABEL) and sd <= 0.0:
                    labels[y, x] = label
                if target & OCCLUDE:
                    if cov > occ[y, x]:
                        occ[y, x] = cov
                if target & PAINT:
                    if typ == HEAD:
                        r, g, b = _head_colour(x, y, data, int(row[F_GEO]))
                    elif typ == SHADED_POLYGON:
                        r, g, b = _head_colour(x, y, data, int(row[F_GEO + 3]))
                    else:
                        qq = min(q, 1.0)
                        br = (1.0 - shade * qq * qq) * (1.0 + gx * (x - refx) + gy * (y - refy))
                        if samp != 0.0:
                            br *= 1.0 + samp * math.sin(2.0 * math.pi * sfreq * ((x - refx) * sdx + (y - refy) * sdy)
                                                        + sph)
                        r = row[F_RGB] * br
                        g = row[F_RGB + 1] * br
                        b = row[F_RGB + 2] * br
                    a = cov * alpha
                    canvas[y, x, 0] = canvas[y, x, 0] * (1.0 - a) + r * a
                    canvas[y, x, 1] = canvas[y, x, 1] * (1.0 - a) + g * a
                    canvas[y, x, 2] = canvas[y, x, 2] * (1.0 - a) + b * a


_render_list_nb = njit(cache=True)(_render_list)


def _check_list(canvas, occ, labels, prims, data):
    if canvas.ndim != 3 or canvas.shape[2] != 3 or canvas.dtype != np.float32:
        raise ValueError(f"render_list: canvas must be float32 (H, W, 3), got {canvas.dtype} {canvas.shape}")
    if occ.shape != canvas.shape[:2] or labels.shape != canvas.shape[:2]:
        raise ValueError(f"render_list: occ {occ.shape} and labels {labels.shape} must be {canvas.shape[:2]}")
    if prims.ndim != 2 or prims.shape[1] != NF:
        raise ValueError(f"render_list: prims must be (P, {NF}), got {prims.shape}")


def render_list(canvas: np.ndarray, occ: np.ndarray, labels: np.ndarray, prims: np.ndarray,
                data: np.ndarray) -> None:
    """Paint a display list in place (Numba). canvas (H, W, 3) float32, occ (H, W) float32,
    labels (H, W) uint8, prims (P, NF) float64, data (D,) float64.

    Per pixel centre (x, y) and primitive: signed distance sd (pixels, < 0 inside),
    coverage c = clip(0.5 - sd, 0, 1), ``canvas = canvas (1 - c alpha) + colour c alpha``.
    """
    _check_list(canvas, occ, labels, prims, data)
    _render_list_nb(canvas, occ, labels, np.ascontiguousarray(prims, np.float64),
                    np.ascontiguousarray(data, np.float64))


# ---- pure-NumPy reference (vectorised over the whole pixel grid, one primitive at a time) ----

def _sd_ref(row, data, X, Y):
    typ = int(row[F_TYPE])
    g = row[F_GEO:F_GEO + 8]
    if typ == CAPSULE:
        x0, y0, x1, y1, r0, r1 = g[:6]
        v = np.array([x1 - x0, y1 - y0])
        L2 = v @ v
        wx, wy = X - x0, Y - y0
        t = np.clip((wx * v[0] + wy * v[1]) / L2, 0, 1) if L2 > 1e-12 else np.zeros_like(X)
        d = np.hypot(wx - t * v[0], wy - t * v[1])
        r = r0 + t * (r1 - r0)
        return d - r, d / np.maximum(r, 1e-6)
    if typ == ELLIPSE:
        cx, cy, a, b, th = g[:5]
        u = np.cos(th) * (X - cx) + np.sin(th) * (Y - cy)
        v = -np.sin(th) * (X - cx) + np.cos(th) * (Y - cy)
        k = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / k
            sd = np.where(k < 1e-9, -min(a, b), (k - 1) / grad)
        return sd, np.where(k < 1e-9, 0.0, k)
    if typ == HEAD:
        s = int(g[0])
        dx, dy = X - data[s + H_C], Y - data[s + H_C + 1]
        S00, S01, S11 = data[s + H_S:s + H_S + 3]
        k = np.sqrt(np.maximum(S00 * dx * dx + 2 * S01 * dx * dy + S11 * dy * dy, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            gn = np.hypot(S00 * dx + S01 * dy, S01 * dx + S11 * dy) / k
            sd = np.where(k < 1e-9, -1e3, (k - 1) / np.maximum(gn, 1e-9))
        return sd, np.zeros_like(X)
    st, n = int(g[0]), int(g[1])
    V = data[st:st + 2 * n].reshape(n, 2)
    dmin = np.full(X.shape, np.inf)
    wn = np.zeros(X.shape, np.int64)
    for i in range(n):
        (ax, ay), (bx, by) = V[i], V[(i + 1) % n]
        vx, vy = bx - ax, by - ay
        wx, wy = X - ax, Y - ay
        L2 = vx * vx + vy * vy
        t = np.clip((wx * vx + wy * vy) / L2, 0, 1) if L2 > 1e-12 else np.zeros_like(X)
        dmin = np.minimum(dmin, (wx - t * vx) ** 2 + (wy - t * vy) ** 2)
        cr = vx * wy - wx * vy
        wn += ((ay <= Y) & (by > Y) & (cr > 0)).astype(np.int64)
        wn -= ((ay > Y) & (by <= Y) & (cr < 0)).astype(np.int64)
    d = np.sqrt(dmin)
    return np.where(wn != 0, -d, d) - g[2], np.zeros_like(X)


def _head_colour_ref(data, s, X, Y):
    dx, dy = X - data[s + H_C], Y - data[s + H_C + 1]
    Q = data[s + H_Q:s + H_Q + 9].reshape(3, 3)
    A = Q[2, 2]
    B = Q[0, 2] * dx + Q[1, 2] * dy
    C = Q[0, 0] * dx * dx + 2 * Q[0, 1] * dx * dy + Q[1, 1] * dy * dy
    z = (-B - np.sqrt(np.maximum(B * B - A * (C - 1), 0))) / A
    P = np.stack([dx, dy, z], -1)                                   # (H, W, 3)
    n = P @ Q.T
    lam = (n @ data[s + H_LIGHT:s + H_LIGHT + 3]) / (np.linalg.norm(n, axis=-1) + 1e-12)
    br = data[s + H_AMB] + data[s + H_DIF] * np.maximum(lam, 0)
    u = P @ data[s + H_T:s + H_T + 9].reshape(3, 3).T
    h0, h1, h2 = data[s + H_LINE:s + H_LINE + 3]
    w = np.clip((h0 + h1 * u[..., 2] + h2 * u[..., 2] ** 2 - u[..., 1]) / data[s + H_SOFT], 0, 1)[..., None]
    return (data[s + H_SKIN:s + H_SKIN + 3] * (1 - w) + data[s + H_HAIR:s + H_HAIR + 3] * w) * br[..., None]


def render_list_ref(canvas: np.ndarray, occ: np.ndarray, labels: np.ndarray, prims: np.ndarray,
                    data: np.ndarray) -> None:
    """Pure-NumPy reference of ``render_list`` (same arguments, same result to float rounding)."""
    _check_list(canvas, occ, labels, prims, data)
    H, W = canvas.shape[:2]
    Y, X = np.mgrid[0:H, 0:W].astype(np.float64)
    for row in prims:
        typ, target = int(row[F_TYPE]), int(row[F_TARGET])
        sd, q = _sd_ref(row, data, X, Y)
        cov = np.clip(0.5 - sd, 0, 1)
        hit = cov > 0
        if target & LABEL:
            labels[hit & (sd <= 0)] = int(row[F_LABEL])
        if target & OCCLUDE:
            occ[...] = np.where(hit, np.maximum(occ, cov), occ)
        if target & PAINT:
            if typ in (HEAD, SHADED_POLYGON):
                col = _head_colour_ref(data, int(row[F_GEO] if typ == HEAD else row[F_GEO + 3]), X, Y)
            else:
                ref = row[F_GEO:F_GEO + 2] if typ in (CAPSULE, ELLIPSE) else row[F_GEO + 3:F_GEO + 5]
                qq = np.minimum(q, 1)
                br = (1 - row[F_SHADE] * qq * qq) * (1 + row[F_GRAD] * (X - ref[0]) + row[F_GRAD + 1] * (Y - ref[1]))
                dx, dy, fr, amp, ph = row[F_STRIPE:F_STRIPE + 5]
                if amp != 0:
                    br = br * (1 + amp * np.sin(2 * np.pi * fr * ((X - ref[0]) * dx + (Y - ref[1]) * dy) + ph))
                col = row[F_RGB:F_RGB + 3] * br[..., None]
            a = (cov * row[F_ALPHA])[..., None]
            canvas[...] = np.where(hit[..., None], canvas * (1 - a) + col * a, canvas)


class DisplayList:
    """Builder for a display list: ``capsule``, ``ellipse``, ``polygon``, ``head``, ``shaded_polygon``
    append rows; ``arrays()`` returns (prims (P, NF), data (D,)).

    Common keyword options: alpha, shade, stripe=(dx, dy, freq, amp, phase), grad=(gx, gy),
    target (PAINT | OCCLUDE | LABEL bits), label.
    """

    def __init__(self):
        self.rows: list[list[float]] = []
        self.data: list[float] = []

    def row(self, typ, geo, rgb, alpha=1.0, shade=0.0, stripe=None, grad=None, target=PAINT, label=0):
        geo = list(geo) + [0.0] * (8 - len(geo))
        st = list(stripe) if stripe is not None else [0.0] * 5
        gr = list(grad) if grad is not None else [0.0, 0.0]
        return [float(typ), *geo, float(rgb[0]), float(rgb[1]), float(rgb[2]), float(alpha), float(shade),
                *st, *gr, float(target), float(label)]

    def add(self, row):
        self.rows.append(row)

    def capsule(self, p0, p1, r0, r1, rgb, **kw):
        return self.row(CAPSULE, (p0[0], p0[1], p1[0], p1[1], max(r0, 1e-3), max(r1, 1e-3)), rgb, **kw)

    def ellipse(self, c, a, b, theta, rgb, **kw):
        return self.row(ELLIPSE, (c[0], c[1], max(a, 1e-3), max(b, 1e-3), theta), rgb, **kw)

    def polygon(self, pts, rgb, rounding=0.0, ref=None, **kw):
        pts = np.asarray(pts, np.float64)
        st = len(self.data)
        self.data.extend(pts.ravel().tolist())
        ref = pts[0] if ref is None else ref
        return self.row(POLYGON, (st, len(pts), rounding, ref[0], ref[1]), rgb, **kw)

    def head(self, params, **kw):
        st = len(self.data)
        self.data.extend(params)
        return self.row(HEAD, (st,), (0, 0, 0), **kw)

    def shaded_polygon(self, pts, params_start, rounding=0.0, **kw):
        pts = np.asarray(pts, np.float64)
        st = len(self.data)
        self.data.extend(pts.ravel().tolist())
        return self.row(SHADED_POLYGON, (st, len(pts), rounding, params_start), (0, 0, 0), **kw)

    def arrays(self):
        prims = np.array(self.rows, np.float64).reshape(-1, NF)
        return prims, np.array(self.data + [0.0], np.float64)


def head_params(center, R, radii, skin, hair, hairline=(-10.0, 0.0, 0.0), soft=0.12,
                light=(0.3, -0.5, -0.8), ambient=0.45, diffuse=0.6) -> list[float]:
    """Parameter block of a shaded ellipsoid head (HEAD / SHADED_POLYGON primitives).

    center: (cx, cy) pixels; R (3, 3): head frame -> camera (columns: the head's own left, down and
    backward axes); radii (a, b, c) pixels along those axes. The ellipsoid is
    ``x^T Q x <= 1`` with ``Q = R diag(radii)^-2 R^T``; its silhouette ``d^T S d <= 1`` uses the
    Schur complement ``S = Q_xy - q q^T / Q_zz``; ``T = diag(radii)^-1 R^T`` maps a camera offset to
    unit-sphere coordinates u, where hair covers ``u_y < h0 + h1 u_z + h2 u_z^2`` (y down, z back).
    """
    R = np.asarray(R, np.float64)
    D = np.asarray(radii, np.float64)
    Q = R @ np.diag(1.0 / D**2) @ R.T
    m = Q[:2, 2]
    S = Q[:2, :2] - np.outer(m, m) / Q[2, 2]
    T = np.diag(1.0 / D) @ R.T
    L = np.asarray(light, np.float64)
    L = L / np.linalg.norm(L)
    out = [center[0], center[1], S[0, 0], S[0, 1], S[1, 1], *Q.ravel(), *T.ravel(), *skin, *hair,
           *hairline, soft, *L, ambient, diffuse, float(D.max()) + 1.0]
    assert len(out) == NH
    return [float(v) for v in out]


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
    split_id = {"train": 0, "test": 1, "val": 2}[split]
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


# ============================================================================================
# 3. SyntheticPose: articulated figures with the 16 MPII joints
# ============================================================================================
#
# Body frame (units of standing height H): origin at the pelvis, x = the person's LEFT, y = down,
# z = backwards (away from the camera when the figure faces it). Camera: x right, y down, z away.
# A figure with yaw 0 faces the camera, so its left side is on the image's right.

_BODY = dict(hip=0.055, thigh=0.245, shin=0.245, spine=0.29, neck=0.05, head=0.13, shoulder=0.115,
             upper_arm=0.175, forearm=0.15, hand=0.06, foot=0.075)
_FWD = np.array([0.0, -0.25, -1.0])            # preferred elbow bend direction (forward, slightly up)

# Full joint-angle ranges (degrees): everything the sampler may produce after jitter.
_ARM_RANGE = ((0, 180), (-70, 160), (0, 155))          # elevation, azimuth, elbow flexion
_LEG_RANGE = ((-35, 125), (-20, 70), (0, 155))         # hip flexion, abduction, knee flexion
_TORSO_RANGE = ((-25, 75), (-35, 35), (-45, 45))       # lean forward, side bend, twist


def _sample_pose(rng, d):
    """Joint angles (degrees) for one figure; ``d`` widens the ranges and raises the share of
    unusual families (crossed arms, crouching, kicks, random limbs, rolled or upside-down bodies)."""
    U = rng.uniform
    fams = ("stand", "walk", "raise", "cross", "crouch", "kick", "random")
    p = np.array([0.32 - 0.16 * d, 0.2, 0.12, 0.06 + 0.06 * d, 0.08 + 0.06 * d, 0.05 + 0.05 * d, 0.02 + 0.3 * d])
    fam = fams[rng.choice(len(fams), p=p / p.sum())]
    arm, leg = {}, {}
    torso = [rng.normal(0, 4), rng.normal(0, 4), rng.normal(0, 8)]
    for s in (-1, 1):
        arm[s] = [U(0, 35), U(-40, 70), U(0, 50), _FWD]
        leg[s] = [U(-8, 12), U(-3, 15), U(0, 15)]
    if fam == "walk":
        sw, k0 = U(15, 55), rng.choice((-1, 1))
        for s in (-1, 1):
            k = k0 * s
            arm[s] = [sw * U(0.6, 1.2), 90 if k > 0 else -90, U(10, 100) if k > 0 else U(0, 40), _FWD]
            leg[s] = [-k * sw * U(0.6, 1.2), U(0, 8), U(5, 30) if k > 0 else U(20, 100)]
        torso[0] = U(-5, 20)
    elif fam == "raise":
        for s in (-1, 1):
            arm[s] = [U(80, 178), U(-20, 90), U(0, 80), _unit(_FWD + rng.normal(0, 0.6, 3))]
    elif fam == "cross":
        for s in (-1, 1):
            arm[s] = [U(15, 60), U(80, 130), U(85, 145), np.array([-s * 1.0, -0.3, -0.4])]
    elif fam == "crouch":
        for s in (-1, 1):
            leg[s] = [U(50, 120), U(0, 35), U(60, 150)]
            arm[s] = [U(10, 90), U(20, 120), U(10, 120), _FWD]
        torso[0] = U(10, 60)
    elif fam == "kick":
        s0 = rng.choice((-1, 1))
        leg[s0] = [U(40, 115), U(-5, 35), U(0, 70)]
        leg[-s0] = [U(-10, 10), U(0, 15), U(0, 30)]
        for s in (-1, 1):
            arm[s] = [U(30, 150), U(-30, 60), U(0, 90), _FWD]
    elif fam == "random":
        for s in (-1, 1):
            arm[s] = [U(*r) for r in _ARM_RANGE] + [_unit(rng.normal(size=3))]
            leg[s] = [U(*r) for r in _LEG_RANGE]
        torso = [U(*r) for r in _TORSO_RANGE]
    j = 14.0 * d                                        # difficulty jitter on every angle
    noise = rng.normal(0, 1, 15)
    for k, s in enumerate((-1, 1)):
        arm[s][:3] = [_clamp(v + j * e, *r) for v, e, r in zip(arm[s][:3], noise[6 * k:6 * k + 3], _ARM_RANGE)]
        leg[s] = [_clamp(v + j * e, *r) for v, e, r in zip(leg[s], noise[6 * k + 3:6 * k + 6], _LEG_RANGE)]
    torso = [_clamp(v + 0.5 * j * e, *r) for v, e, r in zip(torso, noise[12:], _TORSO_RANGE)]
    yaw = (rng.normal(0, 30 + 80 * d) + 180) % 360 - 180
    roll = rng.uniform(-180, 180) if rng.random() < 0.13 * d else rng.normal(0, 3 + 8 * d)
    head = [_clamp(rng.normal(0, 15 + 20 * d), -75, 75), rng.normal(0, 8 + 10 * d), rng.normal(0, 5 + 8 * d)]
    return dict(family=fam, arm=arm, leg=leg, torso=torso, head=head, yaw=float(yaw), roll=float(roll))


def _sample_look(rng):
    """Clothing, skin, hair and build: symmetric, so colour never tells left from right."""
    skin = _skin(rng)
    shirt, pants = _cloth(rng), _cloth(rng)
    return dict(skin=skin, shirt=shirt, pants=pants, shoes=_cloth(rng) * 0.6, hair=_hair(rng),
                long_sleeves=rng.random() < 0.5, long_pants=rng.random() < 0.75,
                build=rng.uniform(0.8, 1.25), lengths=rng.normal(1.0, 0.05, 6).clip(0.85, 1.15),
                shirt_stripes=(rng.uniform(0.1, 0.35), rng.uniform(14, 30), rng.uniform(0, 6.3))
                if rng.random() < 0.3 else None,
                front_mark=int(rng.integers(3)),    # 0 V-neck, 1 chest logo, 2 buttons
                mark_col=_cloth(rng),
                hairline=(rng.uniform(-0.2, 0.0), rng.uniform(0.5, 0.7), 0.12) if rng.random() > 0.06
                else (-10.0, 0.0, 0.0))


def _skeleton3d(pose, look):
    """Joint positions (16, 3) in the body frame plus the frames the renderer needs."""
    B = dict(_BODY)
    la, lf, lt, ls, lsp, lh = look["lengths"]
    B["upper_arm"] *= la
    B["forearm"] *= lf
    B["thigh"] *= lt
    B["shin"] *= ls
    B["spine"] *= lsp
    B["head"] *= lh
    rad = np.deg2rad
    J = np.zeros((16, 3))
    pitch, bend, twist = rad(np.array(pose["torso"]))
    Rt = _rx(pitch) @ _rz(bend) @ _ry(twist)            # torso frame in the body frame
    J[6] = 0.0                                          # pelvis
    J[7] = Rt @ np.array([0, -B["spine"], 0])           # thorax
    hy, hp, hr = rad(np.array(pose["head"]))
    Rn = Rt @ _rx(hp * 0.5)
    J[8] = J[7] + Rn @ np.array([0, -B["neck"], 0])     # upper neck
    Rh = Rn @ _rx(hp * 0.5) @ _ry(hy) @ _rz(hr)
    J[9] = J[8] + Rh @ np.array([0, -B["head"], 0])     # head top
    extra = {}
    for s, (sho, elb, wri) in ((1, (13, 14, 15)), (-1, (12, 11, 10))):
        e, phi, beta, pref = pose["arm"][s]
        e, phi, beta = rad(e), rad(phi), rad(beta)
        J[sho] = J[7] + Rt @ np.array([s * B["shoulder"], 0.012, 0])
        du = np.array([s * math.sin(e) * math.cos(phi), math.cos(e), -math.sin(e) * math.sin(phi)])
        n = np.asarray(pref, np.float64) - (np.asarray(pref) @ du) * du
        if np.linalg.norm(n) < 1e-3:
            n = np.array([0, -1.0, 0]) - (-du[1]) * du
        n = _unit(n)
        df = math.cos(beta) * du + math.sin(beta) * n
        J[elb] = J[sho] + Rt @ du * B["upper_arm"]
        J[wri] = J[elb] + Rt @ df * B["forearm"]
        extra[("hand", s)] = J[wri] + Rt @ df * B["hand"]
    for s, (hip, kne, ank) in ((1, (3, 4, 5)), (-1, (2, 1, 0))):
        f, ab, kappa = rad(np.array(pose["leg"][s]))
        J[hip] = np.array([s * B["hip"], 0.0, 0.0])
        ca = math.cos(ab)
        dt = np.array([s * math.sin(ab), ca * math.cos(f), -ca * math.sin(f)])
        g = f - kappa
        ds = _unit(np.array([s * math.sin(ab), ca * math.cos(g), -ca * math.sin(g)]))
        J[kne] = J[hip] + dt * B["thigh"]
        J[ank] = J[kne] + ds * B["shin"]
        extra[("toe", s)] = J[ank] + np.array([0, -math.sin(g) + 0.35, -math.cos(g)]) * B["foot"]
    extra["Rt"], extra["Rh"] = Rt, Rh
    return J, extra


def _body_rotation(pose):
    """Body frame -> camera: yaw about the vertical (positive turns the figure's front towards the
    image right, as for faces), then roll in the image plane."""
    return _rz(math.radians(pose["roll"])) @ _ry(-math.radians(pose["yaw"]))


def _figure(dl, out, pose, look, size, offset, rng, light, with_details=True, skeleton=None):
    """Append the figure's primitives to ``out`` as (depth, row) pairs (rows built with ``dl``, whose
    data array they index); return joints (16, 2), their depths (16,), the head silhouette box
    [[x1, y1], [x2, y2]] and the chest yaw (degrees, ``SyntheticPose.facing``)."""
    J, ex = _skeleton3d(pose, look) if skeleton is None else skeleton
    Rg = _body_rotation(pose)

    def proj(p):
        c = np.asarray(p, np.float64) @ Rg.T
        return c[..., :2] * size + offset, c[..., 2]

    J2, Jz = proj(J)
    bld = look["build"] * size
    skin, shirt, pants = look["skin"], look["shirt"], look["pants"]

    # Project every 3D point the limbs use at once (joints, hands, toes).
    keys = [("hand", 1), ("hand", -1), ("toe", 1), ("toe", -1)]
    P2, Pz = proj(np.concatenate([J, np.array([ex[k] for k in keys])]))
    idx = {k: 16 + n for n, k in enumerate(keys)}

    def limb(a, b, r0, r1, col, shade=0.55, stripe=None, bias=0.0):
        a, b = idx.get(a, a), idx.get(b, b)
        pa, za, pb, zb = P2[a], Pz[a], P2[b], Pz[b]
        st = None
        if stripe is not None:
            v = _unit(pb - pa)
            st = (v[0], v[1], stripe[1] / (size * 1.0), stripe[0], stripe[2])
        out.append((0.5 * (za + zb) + bias, dl.capsule(pa, pb, r0 * bld, r1 * bld, col, shade=shade, stripe=st)))

    sleeve = shirt if look["long_sleeves"] else skin
    leg_lo = pants if look["long_pants"] else skin
    stripes = look["shirt_stripes"]
    for s, (sho, elb, wri) in ((1, (13, 14, 15)), (-1, (12, 11, 10))):
        limb(sho, elb, 0.036, 0.029, shirt, stripe=stripes)
        limb(elb, wri, 0.028, 0.022, sleeve, stripe=stripes if look["long_sleeves"] else None)
        limb(wri, ("hand", s), 0.02, 0.017, skin, shade=0.3, bias=-1e-3)
    for s, (hip, kne, ank) in ((1, (3, 4, 5)), (-1, (2, 1, 0))):
        limb(hip, kne, 0.062, 0.045, pants)
        limb(kne, ank, 0.042, 0.029, leg_lo)
        limb(ank, ("toe", s), 0.024, 0.02, look["shoes"], shade=0.3, bias=-1e-3)
    limb(7, 8, 0.027, 0.025, skin * 0.9, shade=0.3, bias=0.03)
    # Torso: convex hulls of projected 3D corners (shirt over pants) and shoulder/pelvis bars.
    Rt = ex["Rt"]
    sx = np.array([-1, 1, -1, 1])
    sz = np.array([-1, -1, 1, 1])
    chest = J[7] + (np.stack([0.12 * sx, np.full(4, 0.015), 0.06 * sz], 1) * [look["build"] ** 0.5, 1, 1]) @ Rt.T
    waist = J[7] + (np.stack([0.1 * sx, np.full(4, 0.62 * _BODY["spine"]), 0.055 * sz], 1)
                    * [look["build"] ** 0.5, 1, 1]) @ Rt.T
    hips = np.stack([0.11 * sx * look["build"] ** 0.5, np.full(4, 0.045), 0.07 * sz], 1)
    tz = 0.5 * (Jz[6] + Jz[7])
    pts, _ = proj(np.concatenate([waist, hips]))
    out.append((tz + 2e-3, dl.polygon(_convex_hull(pts), pants, rounding=0.02 * bld,
                                      grad=tuple(rng.normal(0, 0.4, 2) / size))))
    pts, _ = proj(np.concatenate([chest, waist]))
    out.append((tz + 1e-3, dl.polygon(_convex_hull(pts), shirt, rounding=0.025 * bld,
                                      grad=tuple(rng.normal(0, 0.4, 2) / size))))
    limb(12, 13, 0.04, 0.04, shirt, shade=0.35, bias=1e-3)
    # Front cue on the chest, drawn only when the chest faces the camera.
    front = Rg @ Rt @ np.array([0, 0, -1.0])
    if with_details and front[2] < -0.25:
        if look["front_mark"] == 0:
            v = J[7] + np.array([[-0.045, -0.004, -0.064], [0.045, -0.004, -0.064], [0, 0.07, -0.068]]) @ Rt.T
            pts, _ = proj(v)
            out.append((tz - 1e-3, dl.polygon(pts, skin, rounding=0.004 * size)))
        elif look["front_mark"] == 1:
            (c,), _ = proj((J[7] + Rt @ np.array([0.0, 0.09, -0.068]))[None])
            out.append((tz - 1e-3, dl.ellipse(c, 0.035 * size, 0.035 * size * max(-front[2], 0.2), 0.0,
                                               look["mark_col"])))
        else:
            for t in (0.04, 0.09, 0.14):
                (c,), _ = proj((J[7] + Rt @ np.array([0.0, t, -0.068]))[None])
                out.append((tz - 1e-3, dl.ellipse(c, 0.011 * size, 0.011 * size, 0.0, look["mark_col"])))
    # Head: a shaded ellipsoid, hair over the back and top, so the face side reads as skin.
    Rh = ex["Rh"]
    Rhc = Rg @ Rh
    hc3 = 0.5 * (J[8] + J[9]) + Rh @ np.array([0, 0, -0.004])
    (hc,), hz = proj(hc3[None])
    radii = np.array([0.049, 0.5 * np.linalg.norm(J[9] - J[8]), 0.056]) * size
    hp = head_params(hc, Rhc, radii, skin, look["hair"], hairline=look["hairline"], light=light)
    out.append((float(hz[0]), dl.head(hp)))
    if with_details:
        for ex_, ey_ in ((-0.36, -0.02), (0.36, -0.02)):       # eyes, where the face points at us
            u = _unit([ex_, ey_, -0.93])
            if (Rhc @ u)[2] < -0.2 and 0.012 * size > 0.3:
                c = hc + (Rhc @ (u * radii))[:2]
                out.append((float(hz[0]) - 1e-3, dl.ellipse(c, 0.009 * size, 0.009 * size, 0.0, (0.1, 0.07, 0.06),
                                                            alpha=0.8)))
    S = np.array([[hp[H_S], hp[H_S + 1]], [hp[H_S + 1], hp[H_S + 2]]])
    ext = np.sqrt(np.diag(np.linalg.inv(S)))
    headbox = np.array([hc - ext, hc + ext])
    chest_yaw = (pose["yaw"] - pose["torso"][2] + 180.0) % 360.0 - 180.0
    return J2, Jz, headbox, float(chest_yaw)


class _Synthetic:
    """What both generators share: argument checks, length, deterministic indexing."""

    def __init__(self, n: int, resolution: int = 64, seed: int = 0, difficulty: float = 0.5, split: str = "train"):
        name = type(self).__name__
        if split not in ("train", "val", "test"):
            raise ValueError(f"{name}: split must be 'train', 'val' or 'test', got {split!r}")
        if not 0.0 <= difficulty <= 1.0:
            raise ValueError(f"{name}: difficulty must be in [0, 1], got {difficulty!r}")
        if int(resolution) != resolution or resolution < 16:
            raise ValueError(f"{name}: resolution must be an integer >= 16, got {resolution!r}")
        if int(n) != n or n < 0:
            raise ValueError(f"{name}: n must be a non-negative integer, got {n!r}")
        self.n, self.resolution, self.seed = int(n), int(resolution), int(seed)
        self.difficulty, self.split = float(difficulty), split

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not -self.n <= i < self.n:
            raise IndexError(f"{type(self).__name__}: index {i} out of range for {self.n} samples")
        i = int(i) % self.n
        return self._render(_sample_seed(self.seed, self.split, i), impl=render_list)

    def _render(self, rng, impl=render_list):  # pragma: no cover - interface
        raise NotImplementedError


class SyntheticPose(_Synthetic):
    """Procedurally rendered people with the 16 MPII joints (stand-in for MPII, paper section 6.2).

    ``ds[i]`` is a dict, deterministic per (seed, split, i):
      image (R, R, 3) float32 in [0, 1]; points (16, 2) float32 (MPII order, the *person's*
      left/right); visible (16,) float32 (in the frame and not behind an occluding blob);
      occluded (16,) float32 (in the frame but hidden by an occluder; coordinates still exact);
      head_size float32 (PCKh normaliser 0.6 x head-box diagonal; the head box is the head
      silhouette's bounding box enlarged 1.25x, which matches MPII's head-size / height ratio);
      center (2,) float32, scale float32 (box side / 200 with MPII's 1.25 padding, so
      ``crop_transform(center, scale, R)`` frames the person); facing float32 (chest yaw in
      degrees: 0 = facing the camera, +90 = the chest turned to the image right (the person turned
      to their left), +-180 = seen from the back; the same sign convention as the faces' yaw).

    Figures: a kinematic skeleton with adult proportions and per-person jitter, pose families
    (standing, walking, raised or crossed arms, crouching, kicks, random limbs; rare rolled or
    upside-down bodies), 3D rotation about the vertical, painter's-order rendering with anti-aliased
    tapered limbs. Left and right limbs share clothing, so only geometry and the facing cues (face vs
    hair on the head, a chest mark, feet pointing forwards) tell them apart.

    ``difficulty`` in [0, 1] widens pose and yaw ranges and raises clutter, distractor strokes, a
    second partial person, occluders, truncation at the border, blur, noise and lighting changes.
    """

    kind = "pose"
    num_points = 16

    @property
    def flip_perm(self) -> np.ndarray:
        return MPII_FLIP

    def _render(self, rng, impl=render_list):
        R, d = self.resolution, self.difficulty
        pose, look = _sample_pose(rng, d), _sample_look(rng)
        light = (rng.normal(0, 0.5), rng.normal(-0.5, 0.3), -1.0)
        size = R / 1.25 * rng.uniform(0.85, 1.1)
        # Place the joints' box centre near the image centre, then maybe push part of the figure
        # out of the frame (truncation) or zoom in.
        skel = _skeleton3d(pose, look)
        J = skel[0]
        Rg = _body_rotation(pose)
        j2 = (J @ Rg.T)[:, :2]
        mid = 0.5 * (j2.min(0) + j2.max(0))
        target = np.full(2, (R - 1) / 2) + rng.normal(0, 0.04 * R, 2)
        if rng.random() < 0.3 * d:
            if rng.random() < 0.5:
                target += _unit(rng.normal(size=2)) * R * rng.uniform(0.15, 0.4)
            else:
                size *= rng.uniform(1.1, 1.4)
        offset = target - mid * size
        palette = [look["skin"], look["shirt"], look["pants"]]
        bg = _background(rng, R, d, avoid_luma=_luma(look["shirt"]))
        dl = DisplayList()
        _clutter(dl, rng, R, d, palette)
        if rng.random() < 0.35 * d:                        # a second, partial person behind
            p2, l2 = _sample_pose(rng, d), _sample_look(rng)
            parts = []
            off2 = target + np.array([rng.choice((-1, 1)) * rng.uniform(0.45, 0.8) * R, rng.normal(0, 0.1 * R)])
            _figure(dl, parts, p2, l2, size * rng.uniform(0.7, 1.1), off2, rng, light, with_details=False)
            for _, row in sorted(parts, key=lambda t: -t[0]):
                dl.add(row)
        parts = []
        pts, _, headbox, facing = _figure(dl, parts, pose, look, size, offset, rng, light, skeleton=skel)
        for _, row in sorted(parts, key=lambda t: -t[0]):   # painter's order: far parts first
            dl.add(row)
        _occluders(dl, rng, R, d, pts, 0.55 * d, size)
        prims, data = dl.arrays()
        occ = np.zeros((R, R), np.float32)
        labels = np.zeros((R, R), np.uint8)
        impl(bg, occ, labels, prims, data)
        img = _finish(bg, rng, R, d)
        inside = np.all((pts >= 0) & (pts <= R - 1), axis=1)
        ij = np.clip(np.rint(pts).astype(int), 0, R - 1)
        hidden = inside & (occ[ij[:, 1], ij[:, 0]] > 0.5)
        hb = headbox.mean(0) + 1.25 * (headbox - headbox.mean(0))
        return dict(image=img, points=pts.astype(np.float32), visible=(inside & ~hidden).astype(np.float32),
                    occluded=hidden.astype(np.float32), head_size=np.float32(head_size(hb)),
                    center=target.astype(np.float32), scale=np.float32(1.25 * size / 200.0),
                    facing=np.float32(facing))

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None,
              **augment_kw) -> dict:
        """Stack samples into arrays (image (N, R, R, 3), points (N, 16, 2), ...).

        augment=True crops each sample through ``tinybin.transforms.augment`` (rotation +-40 deg,
        scale 0.7-1.3, flip with ``MPII_FLIP``, colour jitter; override with ``augment_kw``) using
        ``rng`` (required). Joints leaving the crop become invisible; head_size, center and scale
        follow the crop.
        """
        return _batch(self, indices, augment, rng, augment_kw)


def _batch(ds, indices, augment, rng, augment_kw) -> dict:
    indices = list(indices)
    if not indices:
        raise ValueError(f"{type(ds).__name__}.batch: no indices given")
    samples = [ds[i] for i in indices]
    if augment:
        if rng is None:
            raise ValueError(f"{type(ds).__name__}.batch: augment=True needs an explicit rng "
                             "(np.random.Generator), got None")
        kw = dict(rotation=40.0, scale_range=(0.7, 1.3), flip=True, color=True)
        kw.update(augment_kw)
        for s in samples:
            out = _augment(s["image"], s["points"], s["visible"] > 0, s["center"], float(s["scale"]),
                           s["image"].shape[0], rng, ds.flip_perm, mask=s.get("mask"), **kw)
            s["image"] = out["image"]
            s["points"] = out["points"].astype(np.float32)
            s["visible"] = (out["visible"] & out["in_crop"]).astype(np.float32)
            if out["mask"] is not None:
                s["mask"] = out["mask"]
            M = out["M"]
            k = math.sqrt(abs(np.linalg.det(M[:, :2])))       # pixel scale of the crop
            if "head_size" in s:
                s["head_size"] = np.float32(s["head_size"] * k)
            if out["params"]["flip"]:
                # Mirroring swaps the per-landmark flags with the labels and negates the angles
                # about the vertical axis and in the image plane (the augmentation's rotation is
                # not added to roll).
                for key in ("occluded", "self_occluded"):
                    if key in s:
                        s[key] = s[key][ds.flip_perm]
                for key in ("yaw", "facing", "roll"):
                    if key in s:
                        s[key] = np.float32(-s[key])
            if "occluded" in s:
                s["occluded"] = (s["occluded"] * out["in_crop"]).astype(np.float32)
            s["center"] = (M[:, :2] @ s["center"] + M[:, 2]).astype(np.float32)
            s["scale"] = np.float32(s["scale"] * k)
            s["M"] = M.astype(np.float32)
    return _stack(samples)


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


def _face_pose(rng, d):
    ymax = 30.0 + 60.0 * d
    yaw = rng.uniform(-ymax, ymax) if rng.random() < 0.7 else rng.normal(0, ymax / 2.5)
    yaw = _clamp(yaw, -ymax, ymax)                  # |yaw| <= 30 + 60 difficulty <= 90
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

    A 3D template (``FACE_TEMPLATE_3D``) gets random identity (face, jaw, eye, nose and mouth
    proportions) and expression (mouth open, smile, brows, blinks), is rotated by yaw (range
    +-(30 + 60 difficulty) degrees), pitch and roll and projected orthographically (weak
    perspective). It is painted over a shaded ellipsoid cranium with hair, ears, neck and
    shoulders: skin shaded by the surface normal, eyes, brows, nose shading and nostrils, lips,
    inner mouth and teeth; hidden features (the far eye and brow under large yaw) are skipped.
    """

    kind = "face"
    num_points = 68

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
        yaw, pitch, roll = _face_pose(rng, d)
        Rot = _face_rotation(yaw, pitch, roll)
        cam = P @ Rot.T                                                 # (68, 3) unit face coords
        lo, hi = cam[:, :2].min(0), cam[:, :2].max(0)
        unit = 0.475 * R * rng.uniform(0.9, 1.1) / (0.5 * ((hi - lo).sum()))  # pixels per face unit
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


# ============================================================================================
# 5. Loaders for the real formats
# ============================================================================================
#
# Every loader returns a list of ``Record`` dicts with the sample keys above; ``record["image"]``
# is read with Pillow on first access (from ``image_path``) and then kept. All coordinates are
# converted from MATLAB / .pts 1-based pixels to tinybin's 0-based ones on load (x - 1, y - 1).

FACE_SCALE_DIVISOR = 190.0
"""Faces: ``scale = (w + h) / 190`` of the tight landmark box (the FAN demo's rule), so the
200 * scale crop is about twice the face box."""


class Record(dict):
    """A sample dict whose ``"image"`` is loaded lazily from ``"image_path"`` on first access.

    ``"image" in rec`` is False until it has been loaded; ``rec["image"]`` loads it (float32
    (H, W, 3) in [0, 1]); a record without an image path raises KeyError.
    """

    def __missing__(self, key):
        if key == "image" and self.get("image_path"):
            img = load_image(self["image_path"])
            self["image"] = img
            return img
        raise KeyError(key)


def load_image(path) -> np.ndarray:
    """Read an image file with Pillow: (H, W, 3) float32 RGB in [0, 1]. Unreadable -> ValueError."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise ValueError(f"load_image: cannot read image {os.fspath(path)!r}: {e}") from e
    return arr.astype(np.float32) / 255.0


def _face_center_scale(pts):
    lo, hi = pts.min(0), pts.max(0)
    return (0.5 * (lo + hi)).astype(np.float32), np.float32((hi - lo).sum() / FACE_SCALE_DIVISOR)


def read_pts(path) -> np.ndarray:
    """Read an iBUG / 300W ``.pts`` file: (K, 2) float32 0-based (x, y) (the file is 1-based).

    Format: header lines (``version: 1``, ``n_points:  68``; spacing varies), a line starting with
    ``{``, one ``x y`` pair per line, a line starting with ``}`` (a trailing newline is optional).
    Any point count is accepted; if the header states ``n_points`` the count must agree.
    Raises ValueError naming the file for: no ``{``, no ``}``, a line without two numbers,
    non-numeric or non-finite values, a bad ``n_points`` header, a count that disagrees with it.
    """
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"read_pts: cannot read {p!r}: {e}") from e
    n_expected = None
    i = 0
    while i < len(lines) and not lines[i].lstrip().startswith("{"):
        ln = lines[i].strip()
        if ln.lower().startswith("n_points"):
            try:
                n_expected = int(ln.split(":", 1)[1])
            except (IndexError, ValueError):
                raise ValueError(f"read_pts: {p!r} line {i + 1}: bad n_points header {ln!r}") from None
        i += 1
    if i == len(lines):
        raise ValueError(f"read_pts: {p!r}: no line starting with '{{' (not a .pts file?)")
    pts, closed = [], False
    for j in range(i + 1, len(lines)):
        ln = lines[j].strip()
        if not ln:
            continue
        if ln.startswith("}"):
            closed = True
            break
        parts = ln.split()
        if len(parts) < 2:
            raise ValueError(f"read_pts: {p!r} line {j + 1}: expected two numbers 'x y', got {ln!r}")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"read_pts: {p!r} line {j + 1}: non-numeric value in {ln!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"read_pts: {p!r} line {j + 1}: non-finite value in {ln!r}")
        pts.append((x, y))
    if not closed:
        raise ValueError(f"read_pts: {p!r}: missing closing '}}' after {len(pts)} points (truncated file?)")
    if n_expected is not None and len(pts) != n_expected:
        raise ValueError(f"read_pts: {p!r}: header says n_points {n_expected} but the file has {len(pts)} points")
    return np.asarray(pts, np.float32).reshape(-1, 2) - 1.0


_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG", ".BMP")


def load_300w(folder, expect_points: int | None = 68) -> list[Record]:
    """All ``.pts`` files under ``folder`` (recursively, sorted), each paired with the image of the
    same stem (.jpg/.jpeg/.png/.bmp) beside it.

    Record keys: points (K, 2) float32 0-based, visible (K,) ones, center, scale (FAN face box rule,
    ``FACE_SCALE_DIVISOR``), image_path, name (path relative to ``folder`` without extension).
    Raises ValueError for: no .pts files, a .pts without its image (naming both), a point count
    other than ``expect_points`` (None accepts any), and any ``read_pts`` error.
    """
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise ValueError(f"load_300w: {root!r} is not a directory")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(".pts"))
    if not files:
        raise ValueError(f"load_300w: no .pts files under {root!r}")
    out = []
    for f in files:
        pts = read_pts(f)
        if expect_points is not None and len(pts) != expect_points:
            raise ValueError(f"load_300w: {f!r} has {len(pts)} points, expected {expect_points}")
        stem = os.path.splitext(f)[0]
        img = next((stem + e for e in _IMAGE_EXTS if os.path.isfile(stem + e)), None)
        if img is None:
            raise ValueError(f"load_300w: missing image for {f!r} (looked for {os.path.basename(stem)}"
                             f"{{{','.join(_IMAGE_EXTS[:4])}}})")
        c, s = _face_center_scale(pts)
        out.append(Record(points=pts, visible=np.ones(len(pts), np.float32), center=c, scale=s,
                          image_path=img, name=os.path.relpath(stem, root)))
    return out


def _loadmat(path, who, squeeze=True):
    from scipy.io import loadmat
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ValueError(f"{who}: no such file {p!r}")
    try:
        return loadmat(p, struct_as_record=False, squeeze_me=squeeze)
    except Exception as e:       # scipy raises several types for truncated / foreign files
        raise ValueError(f"{who}: cannot read MATLAB file {p!r} ({type(e).__name__}: {e})") from e


def _is_empty(v) -> bool:
    return v is None or (isinstance(v, np.ndarray) and v.size == 0)


def _scalar(v, default=None):
    """A MATLAB scalar (possibly a 0-d / 1-element array, a string) as float, else ``default``."""
    if _is_empty(v):
        return default
    if isinstance(v, np.ndarray):
        v = v.ravel()[0]
    if isinstance(v, (bytes, np.bytes_)):
        v = v.decode(errors="replace")
    if isinstance(v, str):
        v = v.strip()
        try:
            return float(v)
        except ValueError:
            return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _structs(v) -> list:
    """A squeezed MATLAB struct array as a list (empty, one struct or an array of them)."""
    if _is_empty(v):
        return []
    return list(np.atleast_1d(v).ravel())


def _image_path(image_dir, name, who):
    if image_dir is None:
        return None
    p = os.path.join(os.fspath(image_dir), name)
    if not os.path.isfile(p):
        raise ValueError(f"{who}: missing image {p!r}")
    return p


def _mpii_crop(objpos, scale):
    # MPII's objpos/scale -> the crop convention used everywhere (HRNet, bearpaw, Newell):
    # centre moved down 15 * scale, box enlarged 1.25x; objpos is 1-based.
    c = np.array([objpos[0], objpos[1] + 15.0 * scale], np.float32) - 1.0
    return c, np.float32(1.25 * scale)


def load_mpii_mat(path, image_dir=None, annotated_only: bool = True) -> list[Record]:
    """Read the official MPII ``mpii_human_pose_v1_u12_1.mat`` (struct ``RELEASE``).

    One record per person (``annolist(i).annorect(r)``) with keys: points (16, 2) float32 0-based
    (0 where missing); visible (16,) float32 = annotated; is_visible (16,) float32 (MPII's
    ``is_visible``; missing, empty or unparsable values count as 1, strings '0'/'1' are read);
    head_size float32 (0.6 x head-box diagonal, NaN without a box) and headbox (2, 2) 0-based;
    center (2,), scale: the crop convention (``objpos`` 0-based with y + 15 scale, scale x 1.25);
    mpii_center, mpii_scale (the raw values, centre 0-based); image_name, image_path (when
    ``image_dir`` is given; every image must exist), is_train (``img_train``), annolist_index,
    person_index. annotated_only=True skips people without joints (e.g. the test set).
    People without ``objpos``/``scale`` are skipped. Malformed files raise ValueError.
    """
    who = "load_mpii_mat"
    p = os.fspath(path)
    m = _loadmat(p, who)
    if "RELEASE" not in m:
        raise ValueError(f"{who}: {p!r} has no 'RELEASE' struct (keys: {sorted(k for k in m if not k.startswith('__'))})")
    rel = m["RELEASE"]
    if not hasattr(rel, "annolist"):
        raise ValueError(f"{who}: {p!r}: RELEASE has no 'annolist' field")
    annolist = _structs(rel.annolist)
    train = np.atleast_1d(getattr(rel, "img_train", np.ones(len(annolist)))).ravel()
    out = []
    for i, ann in enumerate(annolist):
        image = getattr(ann, "image", None)
        name = getattr(image, "name", None) if image is not None else None
        if not isinstance(name, str):
            raise ValueError(f"{who}: {p!r}: annolist({i + 1}).image.name is missing")
        for r, rect in enumerate(_structs(getattr(ann, "annorect", None))):
            objpos = getattr(rect, "objpos", None)
            scale = _scalar(getattr(rect, "scale", None))
            ox = _scalar(getattr(objpos, "x", None)) if not _is_empty(objpos) else None
            oy = _scalar(getattr(objpos, "y", None)) if not _is_empty(objpos) else None
            if scale is None or ox is None or oy is None:
                continue
            pts = np.zeros((16, 2), np.float32)
            vis = np.zeros(16, np.float32)
            isv = np.zeros(16, np.float32)
            ap = getattr(rect, "annopoints", None)
            for pt in _structs(getattr(ap, "point", None) if not _is_empty(ap) else None):
                jid, x, y = (_scalar(getattr(pt, k, None)) for k in ("id", "x", "y"))
                if jid is None or x is None or y is None:
                    raise ValueError(f"{who}: {p!r}: annolist({i + 1}).annorect({r + 1}) has a point "
                                     "without numeric id/x/y")
                if not (0 <= jid <= 15 and jid == int(jid)):
                    raise ValueError(f"{who}: {p!r}: annolist({i + 1}).annorect({r + 1}): joint id {jid} "
                                     "is not in 0..15")
                j = int(jid)
                pts[j] = (x - 1.0, y - 1.0)
                vis[j] = 1.0
                isv[j] = 1.0 if _scalar(getattr(pt, "is_visible", None), 1.0) != 0 else 0.0
            if annotated_only and not vis.any():
                continue
            box = [_scalar(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
            if None in box:
                hb, hs = np.full((2, 2), np.nan, np.float32), np.float32(np.nan)
            else:
                hb = np.array(box, np.float32).reshape(2, 2) - 1.0
                try:
                    hs = np.float32(head_size(hb))
                except ValueError:
                    hs = np.float32(np.nan)
            c, s = _mpii_crop((ox, oy), scale)
            out.append(Record(points=pts, visible=vis, is_visible=isv, head_size=hs, headbox=hb, center=c,
                              scale=s, mpii_center=np.array([ox - 1, oy - 1], np.float32),
                              mpii_scale=np.float32(scale), image_name=name,
                              image_path=_image_path(image_dir, name, who),
                              is_train=int(train[i]) if i < len(train) else -1,
                              annolist_index=i, person_index=r))
    return out


def load_mpii_json(path, image_dir=None) -> list[Record]:
    """Read an MPII annotation JSON of the HRNet / mmpose layout: a list of
    ``{"image", "center", "scale", "joints" (16 x [x, y]), "joints_vis" (16)}`` (1-based pixels;
    missing joints are ``[-1, -1]`` with vis 0; test files may lack joints).

    Record keys: points (16, 2) float32 0-based (joints - 1, kept for missing joints), visible
    (16,) = joints_vis, head_size NaN (the JSON has no head boxes), center/scale in the crop
    convention (y + 15 scale, x 1.25, then - 1, as HRNet does on load), mpii_center, mpii_scale,
    image_name, image_path (when ``image_dir`` is given). Malformed files raise ValueError.
    """
    import json
    who = "load_mpii_json"
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{who}: cannot read JSON {p!r}: {e}") from e
    if not isinstance(data, list):
        raise ValueError(f"{who}: {p!r}: expected a JSON list of records, got {type(data).__name__}")
    out = []
    for k, rec in enumerate(data):
        if not isinstance(rec, dict) or not {"image", "center", "scale"} <= rec.keys():
            raise ValueError(f"{who}: {p!r}: record {k} lacks 'image', 'center' or 'scale'")
        try:
            c = np.asarray(rec["center"], np.float64).reshape(2)
            s = float(rec["scale"])
            pts = np.asarray(rec.get("joints", np.zeros((16, 2))), np.float64)
            vis = np.asarray(rec.get("joints_vis", np.zeros(16)), np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: {p!r}: record {k} has non-numeric center/scale/joints ({e})") from None
        if pts.shape != (16, 2) or vis.shape != (16,):
            raise ValueError(f"{who}: {p!r}: record {k}: expected joints (16, 2) and joints_vis (16,), "
                             f"got {pts.shape} and {vis.shape}")
        if not (np.all(np.isfinite(pts)) and np.isfinite(s) and s > 0):
            raise ValueError(f"{who}: {p!r}: record {k}: non-finite joints or non-positive scale")
        cc, ss = _mpii_crop(c, s)
        out.append(Record(points=(pts - 1.0).astype(np.float32), visible=(vis > 0).astype(np.float32),
                          head_size=np.float32(np.nan), center=cc, scale=ss,
                          mpii_center=(c - 1.0).astype(np.float32), mpii_scale=np.float32(s),
                          image_name=str(rec["image"]),
                          image_path=_image_path(image_dir, str(rec["image"]), who)))
    return out


def load_lsp(joints_mat, image_dir=None, lsp_flag_means_occluded: bool = True) -> list[Record]:
    """Read LSP (``joints`` 3 x 14 x N) or LSP-extended (14 x 3 x N, detected by the shape) and map
    the 14 joints to MPII-16 with ``tinybin.skeletons.lsp_to_mpii`` (pelvis = mean of the hips,
    thorax = mean of the shoulders there).

    The third row/column is an occlusion flag whose sense differs: for LSP we follow bearpaw/CPM,
    which use ``1 - flag`` (a stored 1 means occluded; ``lsp_flag_means_occluded=False`` reads it
    as visible instead); for LSPET a stored 1 means visible. It is returned as ``is_visible``.
    ``visible`` (annotated) is 1 for every joint except those with non-finite coordinates or
    x <= 0 and y <= 0 in the 1-based file (unlabelled).

    Record keys: points (16, 2) float32 0-based, visible, is_visible, center/scale from the padded
    joint box (``center_scale_from_points``, padding 1.25; LSP has no person box), head_size NaN,
    image_name (``im0001.jpg`` / ``im00001.jpg``), image_path (when ``image_dir`` is given), index.
    """
    who = "load_lsp"
    p = os.fspath(joints_mat)
    m = _loadmat(p, who, squeeze=False)
    if "joints" not in m:
        raise ValueError(f"{who}: {p!r} has no 'joints' array (keys: {sorted(k for k in m if not k.startswith('__'))})")
    J = np.asarray(m["joints"])
    if J.ndim == 2:
        J = J[..., None]
    if not np.issubdtype(J.dtype, np.number) or J.ndim != 3:
        raise ValueError(f"{who}: {p!r}: 'joints' must be a numeric 3-D array, got {J.dtype} {J.shape}")
    J = J.astype(np.float64)
    if J.shape[:2] == (3, 14):                                  # LSP
        xy, flag, fmt = J[:2].transpose(2, 1, 0), J[2].T, "im{:04d}.jpg"
        isv = 1.0 - flag if lsp_flag_means_occluded else flag
    elif J.shape[:2] == (14, 3):                                # LSP-extended
        xy, flag, fmt = J[:, :2].transpose(2, 0, 1), J[:, 2].T, "im{:05d}.jpg"
        isv = flag
    else:
        raise ValueError(f"{who}: {p!r}: 'joints' has shape {J.shape}; expected 3 x 14 x N (LSP) "
                         "or 14 x 3 x N (LSPET)")
    ann = np.all(np.isfinite(xy), -1) & ~np.all(xy <= 0, -1)
    xy = np.where(np.isfinite(xy), xy, 0.0) - 1.0
    pts16, vis16 = lsp_to_mpii(xy, ann)
    _, isv16 = lsp_to_mpii(xy, (isv > 0.5) & ann)
    out = []
    for n in range(xy.shape[0]):
        name = fmt.format(n + 1)
        try:
            c, s = center_scale_from_points(pts16[n], vis16[n], padding=1.25)
        except ValueError:
            raise ValueError(f"{who}: {p!r}: person {n + 1} has no annotated joints") from None
        out.append(Record(points=pts16[n].astype(np.float32), visible=vis16[n].astype(np.float32),
                          is_visible=isv16[n].astype(np.float32), center=np.asarray(c, np.float32),
                          scale=np.float32(s), head_size=np.float32(np.nan), image_name=name,
                          image_path=_image_path(image_dir, name, who), index=n))
    return out


def load_aflw2000(folder_or_files) -> list[Record]:
    """Read AFLW2000-3D annotations: one ``.mat`` per image with ``pt3d_68`` (3 x 68: x, y in
    1-based image pixels, z) and ``Pose_Para`` (1 x 7: pitch, yaw, roll in radians, tx, ty, tz,
    scale). ``folder_or_files``: a folder (every ``*.mat`` in it, sorted) or a list of paths.

    Record keys: points = pt3d_68[:2].T - 1 (68, 2) float32; pt3d (68, 3) (x, y 0-based, z as
    stored); visible (68,) ones (AFLW2000-3D annotates occluded points too); yaw, pitch, roll
    float32 degrees (as stored, not re-signed); center/scale (face box rule); image_path (the
    ``.jpg`` of the same stem when present, else None); name. Malformed files (unreadable,
    missing keys, wrong shapes, non-finite values) raise ValueError naming the file.
    """
    who = "load_aflw2000"
    if isinstance(folder_or_files, (str, os.PathLike)):
        root = os.fspath(folder_or_files)
        if not os.path.isdir(root):
            raise ValueError(f"{who}: {root!r} is not a directory (pass a folder or a list of .mat files)")
        files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.lower().endswith(".mat"))
        if not files:
            raise ValueError(f"{who}: no .mat files in {root!r}")
    else:
        files = [os.fspath(f) for f in folder_or_files]
    out = []
    for f in files:
        m = _loadmat(f, who, squeeze=False)
        for key in ("pt3d_68", "Pose_Para"):
            if key not in m:
                raise ValueError(f"{who}: {f!r} has no {key!r} (keys: {sorted(k for k in m if not k.startswith('__'))})")
        P = np.asarray(m["pt3d_68"])
        pose = np.asarray(m["Pose_Para"]).ravel()
        if not np.issubdtype(P.dtype, np.number) or P.shape != (3, 68):
            raise ValueError(f"{who}: {f!r}: pt3d_68 must be numeric 3 x 68, got {P.dtype} {P.shape}")
        if not np.issubdtype(pose.dtype, np.number) or pose.size < 3:
            raise ValueError(f"{who}: {f!r}: Pose_Para must hold at least (pitch, yaw, roll), got {pose.shape}")
        P = P.astype(np.float64)
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(pose[:3]))):
            raise ValueError(f"{who}: {f!r}: non-finite values in pt3d_68 or Pose_Para")
        pts = (P[:2].T - 1.0).astype(np.float32)
        pt3d = P.T.copy()
        pt3d[:, :2] -= 1.0
        pitch, yaw, roll = np.degrees(pose[:3].astype(np.float64))
        stem = os.path.splitext(f)[0]
        img = next((stem + e for e in _IMAGE_EXTS if os.path.isfile(stem + e)), None)
        c, s = _face_center_scale(pts)
        out.append(Record(points=pts, pt3d=pt3d.astype(np.float32), visible=np.ones(68, np.float32),
                          yaw=np.float32(yaw), pitch=np.float32(pitch), roll=np.float32(roll), center=c, scale=s,
                          image_path=img, name=os.path.basename(stem)))
    return out


class RecordDataset:
    """Loader records as a dataset of fixed-size crops, with the synthetic sets' interface.

    ``ds[i]``: the record cropped with ``crop_transform(center, scale, resolution)``: image
    (R, R, 3), points in crop coordinates, visible (annotated and inside the crop), head_size scaled
    with the crop, center/scale of the crop (the crop's own frame), mask if the record has one, M.
    ``batch(indices, augment=False, rng=None)`` crops with ``tinybin.transforms.augment`` from the
    full image when augment=True.
    """

    def __init__(self, records: Sequence[dict], resolution: int = 64, flip_perm=None, kind: str = "pose"):
        if kind not in ("pose", "face"):
            raise ValueError(f"RecordDataset: kind must be 'pose' or 'face', got {kind!r}")
        self.records, self.resolution, self.kind = list(records), int(resolution), kind
        self._perm = flip_perm

    def __len__(self) -> int:
        return len(self.records)

    @property
    def flip_perm(self) -> np.ndarray:
        if self._perm is not None:
            return np.asarray(self._perm)
        return MPII_FLIP if self.kind == "pose" else FACE68_FLIP

    def _crop(self, rec, rng):
        R = self.resolution
        kw = (dict(rotation=40.0, scale_range=(0.7, 1.3), flip=True, color=True) if rng is not None else
              dict(rotation=0.0, scale_range=(1.0, 1.0), flip=False, color=False))
        out = _augment(rec["image"], rec["points"], np.asarray(rec["visible"]) > 0, rec["center"],
                       float(rec["scale"]), R, rng if rng is not None else np.random.default_rng(0),
                       self.flip_perm, mask=rec.get("mask"), **kw)
        M = out["M"]
        k = math.sqrt(abs(np.linalg.det(M[:, :2])))
        s = dict(image=out["image"], points=out["points"].astype(np.float32),
                 visible=(out["visible"] & out["in_crop"]).astype(np.float32),
                 center=np.full(2, (R - 1) / 2, np.float32), scale=np.float32(R / 200.0), M=M.astype(np.float32))
        if "head_size" in rec:
            s["head_size"] = np.float32(rec["head_size"] * k)
        if out["mask"] is not None:
            s["mask"] = out["mask"]
        return s

    def __getitem__(self, i: int) -> dict:
        return self._crop(self.records[i], None)

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None) -> dict:
        indices = list(indices)
        if augment and rng is None:
            raise ValueError("RecordDataset.batch: augment=True needs an explicit rng (np.random.Generator), got None")
        return _stack([self._crop(self.records[i], rng if augment else None) for i in indices])
