"""Crop geometry and data augmentation (paper section 6.1).

One 2x3 affine matrix ``M`` carries everything: it maps *source-image* coordinates to *crop*
coordinates, ``[x', y'] = M @ [x, y, 1]``. Images are resampled with the inverse map, landmarks are
pushed through ``M`` itself, so pixels and points can never drift apart.

Coordinates: 0-based, continuous, pixel centres at integers. Pixel ``i``
covers ``[i - 0.5, i + 0.5)``, so an ``R``-pixel-wide crop spans ``[-0.5, R - 0.5)`` and its centre
is ``(R - 1) / 2``. Every map here is exact on continuous coordinates (no rounding anywhere).

The crop follows the MPII / Newell "200-pixel box": a person of ``scale`` s occupies a box of
``200 * s`` source pixels centred on ``center``, resized to ``out_size x out_size``::

    x' = (R / (200 s)) * Rot(theta) (x - c) + (R - 1) / 2,        flip: x' <- R - 1 - x'

Augmentation (paper section 6.1: "rotation (between -40 and 40 degrees), flipping and scale
jittering (between 0.7 and 1.3)"); the paper does not give the distributions, we use uniform ones
(see ``augment_params``).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import ndimage

__all__ = [
    "crop_transform", "invert_affine", "apply_affine", "compose_affine", "warp_image",
    "flip_points", "flip_image", "augment_params", "augment", "color_jitter",
    "center_scale_from_box", "center_scale_from_points",
]


def _as_matrix(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (2, 3):
        raise ValueError(f"expected a (2, 3) affine matrix, got shape {M.shape}")
    return M


def crop_transform(center, scale: float, out_size: int, rotation: float = 0.0, flip: bool = False) -> np.ndarray:
    """Affine map from source-image coordinates to an ``out_size`` x ``out_size`` crop.

    center: (2,) (cx, cy) in source pixels; scale: box side / 200 (MPII convention);
    rotation: degrees, positive = the image content turns counter-clockwise on screen (y points
    down, so a point to the right of the centre moves up); flip: mirror the crop horizontally
    afterwards (x' -> out_size - 1 - x').

    Returns M (2, 3) float64 with ``[x', y'] = M[:, :2] @ [x, y] + M[:, 2]``:

        k = out_size / (200 * scale)
        A = k * [[cos t, sin t], [-sin t, cos t]]
        [x', y'] = A @ ([x, y] - center) + (out_size - 1) / 2

    so ``center`` lands on the crop centre and the box edges ``center +- 100 * scale`` land on the
    crop's pixel edges -0.5 and out_size - 0.5.
    """
    c = np.asarray(center, dtype=np.float64).reshape(-1)
    if c.shape != (2,):
        raise ValueError(f"crop_transform: center must be (2,) (x, y), got shape {np.shape(center)}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"crop_transform: scale must be a positive number, got {scale!r}")
    if int(out_size) != out_size or out_size < 1:
        raise ValueError(f"crop_transform: out_size must be a positive integer, got {out_size!r}")
    k = out_size / (200.0 * scale)
    t = np.deg2rad(rotation)
    A = k * np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    mid = (out_size - 1) / 2.0
    b = mid - A @ c
    M = np.concatenate([A, b[:, None]], axis=1)
    if flip:
        F = np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])
        M = compose_affine(F, M)
    return M


def compose_affine(M2: np.ndarray, M1: np.ndarray) -> np.ndarray:
    """The affine ``M2 o M1`` (apply M1 first). Both (2, 3); returns (2, 3)."""
    M1, M2 = _as_matrix(M1), _as_matrix(M2)
    A = M2[:, :2] @ M1[:, :2]
    b = M2[:, :2] @ M1[:, 2] + M2[:, 2]
    return np.concatenate([A, b[:, None]], axis=1)


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine: ``[A | b]^-1 = [A^-1 | -A^-1 b]``. Raises ValueError if singular."""
    M = _as_matrix(M)
    A, b = M[:, :2], M[:, 2]
    det = np.linalg.det(A)
    if not np.isfinite(det) or abs(det) < 1e-12:
        raise ValueError(f"invert_affine: matrix is singular (det={det})")
    Ai = np.linalg.inv(A)
    return np.concatenate([Ai, (-Ai @ b)[:, None]], axis=1)


def apply_affine(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Map points (..., 2) (x, y) through M (2, 3): ``p' = A p + b``. Returns float64 (..., 2)."""
    M = _as_matrix(M)
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"apply_affine: expected points (..., 2), got shape {p.shape}")
    return p @ M[:, :2].T + M[:, 2]


# The warp `augment` uses: "auto" (the Numba kernel for float images) or "scipy" (the reference;
# benchmarks/bench_data.py compares the two).
WARP_IMPL = "auto"


def warp_image(image: np.ndarray, M: np.ndarray, out_size, order: int = 1, fill: str = "zero",
               impl: str = "auto") -> np.ndarray:
    """Resample ``image`` into the crop defined by M (source -> crop).

    image: (H, W) or (H, W, C); out_size: int (square) or (out_h, out_w).
    Output pixel (u, v) (column u, row v) samples the source at ``invert_affine(M) @ [u, v, 1]``,
    exactly, with ``scipy.ndimage.map_coordinates`` (impl="scipy", the reference) or, for bilinear
    float32 images, its Numba twin ``_warp_bilinear`` (impl="auto"; equal to the reference within
    float32 rounding, tested; ~10x faster on a 64-px crop):

    - order=1: bilinear (float images); order=0: nearest (integer label masks, dtype kept).
    - fill="zero": outside the image counts as 0 (bilinear fades to 0 over the last half pixel,
      ``grid-constant`` mode); fill="edge": the border pixels extend outwards.

    Returns (out_h, out_w[, C]); float images keep their dtype, integer images with order >= 1
    come back float32, integer images with order 0 keep their dtype. There is no anti-aliasing:
    when shrinking by much more than 2x (a 1,000-px person into a 64-px crop), blur or downscale
    the source first.
    """
    M = _as_matrix(M)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"warp_image: expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    if fill not in ("zero", "edge"):
        raise ValueError(f"warp_image: fill must be 'zero' or 'edge', got {fill!r}")
    if order not in (0, 1, 3):
        raise ValueError(f"warp_image: order must be 0, 1 or 3, got {order!r}")
    if impl not in ("auto", "scipy"):
        raise ValueError(f"warp_image: impl must be 'auto' or 'scipy', got {impl!r}")
    oh, ow = (out_size, out_size) if np.isscalar(out_size) else tuple(out_size)
    oh, ow = int(oh), int(ow)
    Mi = invert_affine(M)
    if impl == "auto" and order == 1 and img.dtype == np.float32:
        src = img if img.ndim == 3 else img[..., None]
        out = np.empty((oh, ow, src.shape[2]), np.float32)
        _warp_bilinear(np.ascontiguousarray(src), np.ascontiguousarray(Mi, dtype=np.float64), fill == "edge", out)
        return out if img.ndim == 3 else out[..., 0]
    v, u = np.mgrid[0:oh, 0:ow].astype(np.float64)
    xs = Mi[0, 0] * u + Mi[0, 1] * v + Mi[0, 2]
    ys = Mi[1, 0] * u + Mi[1, 1] * v + Mi[1, 2]
    coords = np.stack([ys, xs])                                        # (2, oh, ow): row, col
    integer = not np.issubdtype(img.dtype, np.floating)
    if integer and order > 0:
        work, out_dtype = img.astype(np.float32), np.float32
    else:
        work, out_dtype = img, img.dtype
    mode = "grid-constant" if fill == "zero" else "nearest"
    chans = [work] if work.ndim == 2 else [work[..., c] for c in range(work.shape[2])]
    out = [ndimage.map_coordinates(ch, coords, order=order, mode=mode, cval=0, prefilter=order > 1)
           for ch in chans]
    res = out[0] if work.ndim == 2 else np.stack(out, axis=-1)
    return res.astype(out_dtype, copy=False)


@njit(cache=True, nogil=True)
def _warp_bilinear(src, Mi, edge, out):  # pragma: no cover - compiled
    """Bilinear resampling as ``map_coordinates(order=1)``: mode "grid-constant" (neighbours outside
    the image count 0) or, with edge, "nearest" (neighbour indices clamped). float64 arithmetic,
    float32 output."""
    H, W, C = src.shape
    oh, ow = out.shape[0], out.shape[1]
    for v in range(oh):
        for u in range(ow):
            x = Mi[0, 0] * u + Mi[0, 1] * v + Mi[0, 2]
            y = Mi[1, 0] * u + Mi[1, 1] * v + Mi[1, 2]
            x0 = np.floor(x)
            y0 = np.floor(y)
            fx = x - x0
            fy = y - y0
            ix, iy = int(x0), int(y0)
            for c in range(C):
                acc = 0.0
                for dy in range(2):
                    wy = fy if dy else 1.0 - fy
                    yy = iy + dy
                    if yy < 0 or yy >= H:
                        if not edge:
                            continue
                        yy = 0 if yy < 0 else H - 1
                    for dx in range(2):
                        wx = fx if dx else 1.0 - fx
                        xx = ix + dx
                        if xx < 0 or xx >= W:
                            if not edge:
                                continue
                            xx = 0 if xx < 0 else W - 1
                        acc += wy * wx * src[yy, xx, c]
                out[v, u, c] = acc


def flip_points(points: np.ndarray, width: int, perm=None) -> np.ndarray:
    """Mirror landmarks for a horizontally flipped image of ``width`` pixels.

    points: (..., K, 2). ``x' = width - 1 - x`` (pixel centres at integers), then the landmark axis
    is permuted: ``out[..., j, :] = mirrored[..., perm[j], :]`` (e.g. ``MPII_FLIP``), so that label
    j still means "the subject's right ankle" etc. perm=None keeps the order.
    """
    p = np.array(points, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"flip_points: expected points (..., K, 2), got shape {p.shape}")
    p[..., 0] = (width - 1) - p[..., 0]
    if perm is not None:
        perm = np.asarray(perm)
        if p.ndim < 2 or perm.shape != (p.shape[-2],):
            raise ValueError(f"flip_points: perm shape {perm.shape} does not match {p.shape[-2]} landmarks")
        p = p[..., perm, :]
    return p


def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an image left-right: (H, W) and (H, W, C) flip axis 1, (N, H, W, C) flips axis 2."""
    img = np.asarray(image)
    if img.ndim in (2, 3):
        return img[:, ::-1].copy()
    if img.ndim == 4:
        return img[:, :, ::-1].copy()
    raise ValueError(f"flip_image: expected (H, W), (H, W, C) or (N, H, W, C), got shape {img.shape}")


def augment_params(rng: np.random.Generator, rotation: float = 40.0, scale=(0.7, 1.3), flip: bool = True,
                   color: bool = False, gain=(0.8, 1.2), contrast=(0.8, 1.2), brightness=(-0.1, 0.1)) -> dict:
    """Draw one set of augmentation parameters.

    Distributions (the paper gives only the ranges, section 6.1):
      rotation ~ U(-rotation, rotation) degrees (0 if rotation == 0)
      scale    ~ U(scale[0], scale[1]) -- multiplies the box side, so the person appears 1/scale as large
      flip     ~ Bernoulli(0.5) if flip else False
      colour (only if color): per-channel gain ~ U(gain) (3,), contrast ~ U(contrast) about the
      image mean, brightness ~ U(brightness) added. Colour jitter is our addition, not the paper's.

    Returns dict(rotation=float, scale=float, flip=bool[, gain=(3,), contrast=float, brightness=float]).
    The draw order is fixed, so a seed reproduces the same parameters.
    """
    lo, hi = scale
    if not (0 < lo <= hi):
        raise ValueError(f"augment_params: scale range must satisfy 0 < lo <= hi, got {scale!r}")
    out = {
        "rotation": float(rng.uniform(-rotation, rotation)) if rotation else 0.0,
        "scale": float(rng.uniform(lo, hi)),
        "flip": bool(rng.random() < 0.5) if flip else False,
    }
    if color:
        out["gain"] = rng.uniform(gain[0], gain[1], size=3)
        out["contrast"] = float(rng.uniform(*contrast))
        out["brightness"] = float(rng.uniform(*brightness))
    return out


def color_jitter(image: np.ndarray, gain, contrast: float = 1.0, brightness: float = 0.0) -> np.ndarray:
    """Photometric jitter of an (H, W, 3) float image in [0, 1].

    ``out = clip(contrast * (gain * x - m) + m + brightness, 0, 1)`` with m the mean of ``gain * x``.
    Returns float32.
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"color_jitter: expected an (H, W, 3) image, got shape {x.shape}")
    y = x * np.asarray(gain, dtype=np.float32)
    m = y.mean()
    y = contrast * (y - m) + m + brightness
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def augment(image: np.ndarray, points: np.ndarray, visible, center, scale: float, out_size: int,
            rng: np.random.Generator, flip_perm, rotation: float = 40.0, scale_range=(0.7, 1.3),
            flip: bool = True, color: bool = True, mask: np.ndarray | None = None) -> dict:
    """Crop one sample with random rotation, scale and flip (paper section 6.1), plus colour jitter.

    image: (H, W, 3) float in [0, 1]; points: (K, 2) source coordinates; visible: (K,) annotated
    flags or None (all annotated); center (2,), scale: the person box (200 * scale px);
    flip_perm: (K,) left/right permutation (``MPII_FLIP``, ``FACE68_FLIP``); mask: optional (H, W)
    integer label image, warped with the same map (nearest, background 0 outside).
    rotation=0, scale_range=(1, 1), flip=False, color=False gives the plain evaluation crop.

    One matrix ``M = crop_transform(center, scale * s, out_size, r, f)`` moves image, mask and
    points together; if flipped, landmark labels are permuted with ``flip_perm`` (see
    ``flip_points``).

    Returns dict:
      image (out, out, 3) float32; points (K, 2) float64 crop coordinates (kept even when outside);
      visible (K,) bool -- still means "annotated", permuted with the labels;
      in_crop (K,) bool -- the point lies inside the crop's pixel extent [-0.5, out - 0.5)^2;
      mask (out, out) or None; M (2, 3) source -> crop; params -- the drawn parameters.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"augment: expected points (K, 2), got shape {pts.shape}")
    K = pts.shape[0]
    vis = np.ones(K, bool) if visible is None else np.asarray(visible).astype(bool).reshape(-1)
    if vis.shape != (K,):
        raise ValueError(f"augment: visible must be ({K},), got shape {np.shape(visible)}")
    perm = np.asarray(flip_perm) if flip_perm is not None else np.arange(K)
    if perm.shape != (K,):
        raise ValueError(f"augment: flip_perm must be ({K},), got shape {perm.shape}")
    params = augment_params(rng, rotation=rotation, scale=scale_range, flip=flip, color=color)
    M = crop_transform(center, scale * params["scale"], out_size, params["rotation"], params["flip"])
    img = warp_image(np.asarray(image, dtype=np.float32), M, out_size, order=1, fill="zero", impl=WARP_IMPL)
    if color:
        img = color_jitter(img, params["gain"], params["contrast"], params["brightness"])
    out_mask = None
    if mask is not None:
        out_mask = warp_image(np.asarray(mask), M, out_size, order=0, fill="zero")
    new_pts = apply_affine(pts, M)
    if params["flip"]:
        # The crop is mirrored by M already; only the labels need swapping.
        new_pts, vis = new_pts[perm], vis[perm]
    in_crop = np.all((new_pts >= -0.5) & (new_pts < out_size - 0.5), axis=1)
    return {"image": img.astype(np.float32, copy=False), "points": new_pts, "visible": vis, "in_crop": in_crop,
            "mask": out_mask, "M": M, "params": params}


def center_scale_from_box(box, padding: float = 1.0) -> tuple[np.ndarray, float]:
    """Centre and MPII-style scale of a box (x1, y1, x2, y2): ``c = box centre``,
    ``scale = padding * max(w, h) / 200`` (so the crop just holds the padded box)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    w, h = x2 - x1, y2 - y1
    if not (w > 0 or h > 0):
        raise ValueError(f"center_scale_from_box: box has zero size: {(x1, y1, x2, y2)}")
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), padding * max(w, h) / 200.0


def center_scale_from_points(points: np.ndarray, visible=None, padding: float = 1.25) -> tuple[np.ndarray, float]:
    """Centre and scale of the tight box around the (annotated) landmarks, padded by ``padding``."""
    p = np.asarray(points, dtype=np.float64)
    if visible is not None:
        p = p[np.asarray(visible).astype(bool)]
    if p.size == 0:
        raise ValueError("center_scale_from_points: no annotated points")
    return center_scale_from_box([*p.min(0), *p.max(0)], padding)
