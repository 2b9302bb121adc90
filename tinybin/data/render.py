"""The display list and its renderer: every synthetic image is one display list.

A display list is rows of primitives (tapered capsules, ellipses, rounded polygons, shaded
ellipsoid heads) painted in order with analytic anti-aliasing (coverage = clip(0.5 - signed
distance in pixels, 0, 1)). ``render_list`` is the Numba kernel, ``render_list_ref`` its pure-NumPy
reference beside it; ``tests/test_datasets.py`` checks they agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
