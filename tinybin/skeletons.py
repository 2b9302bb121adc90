"""Landmark layouts: MPII-16 body joints, iBUG-68 face points, 7-class face parts, LSP-14.

Constants only (plus one tiny LSP->MPII converter), shared by the data loaders, the metrics, the
augmentation (left/right flip permutations) and the plots. Everything is 0-based.

- MPII Human Pose, 16 joints (paper sections 5-6: PCKh on MPII validation).
- iBUG / 300W 68 points (paper section 6.3: face alignment on AFLW2000-3D, 300W-LP).
- Facial part segmentation, 7 classes drawn from the 68 points (paper section 9). The paper only
  says the landmarks are "joined together to fully enclose each facial component"; the polygons
  below are our reconstruction.
- LSP-14 -> MPII-16 mapping (LSP/LSPET loaders).

"Right"/"left" are the *subject's* sides: a person facing the camera has the right wrist on the
image's left. A horizontal flip of the image swaps the labels, which is what the ``*_FLIP``
permutations encode: after mirroring the x coordinates, new landmark ``j`` is old landmark
``FLIP[j]``. Each permutation is its own inverse.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------
# MPII-16
# --------------------------------------------------------------------------------------------

MPII_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
"""MPII joint names in MPII ``id`` order (0 r-ankle ... 15 l-wrist)."""

MPII_SHORT_NAMES: tuple[str, ...] = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)
"""The names used in the MPII evaluation ``.mat`` files (``dataset_joints``)."""

MPII_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))


def _perm_from_pairs(n: int, pairs) -> np.ndarray:
    perm = np.arange(n)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MPII_FLIP: np.ndarray = _perm_from_pairs(16, MPII_FLIP_PAIRS)
"""(16,) int: left/right swap for a horizontal flip, ``[5,4,3,2,1,0,6,7,8,9,15,14,13,12,11,10]``."""

MPII_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6),          # right leg up to the pelvis
    (5, 4), (4, 3), (3, 6),          # left leg
    (6, 7), (7, 8), (8, 9),          # spine, neck, head
    (10, 11), (11, 12), (12, 7),     # right arm to the thorax
    (15, 14), (14, 13), (13, 7),     # left arm
)
"""Skeleton edges (the usual Bulat/Newell drawing: shoulders connect to the thorax)."""

MPII_SIDE: np.ndarray = np.array([1, 1, 1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, -1, -1, -1])
"""(16,) int: +1 for the subject's right, -1 for the left, 0 on the midline.
``MPII_SIDE[MPII_FLIP] == -MPII_SIDE``."""

MPII_PARTS: dict[str, tuple[int, ...]] = {
    "Head": (9,),
    "Shoulder": (12, 13),
    "Elbow": (11, 14),
    "Wrist": (10, 15),
    "Hip": (2, 3),
    "Knee": (1, 4),
    "Ankle": (0, 5),
}
"""Columns of the MPII PCKh table. Head = head-top only (bearpaw/MATLAB evaluation); the other
parts average the right and left joint scores."""

MPII_PCKH_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15)
"""The 14 joints averaged into the PCKh "mean" (pelvis 6 and thorax 7 are left out)."""

# --------------------------------------------------------------------------------------------
# iBUG-68 face points
# --------------------------------------------------------------------------------------------

FACE68_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nostrils": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lip": tuple(range(48, 60)),
    "inner_lip": tuple(range(60, 68)),
}
"""Semantic groups of the 68 points, each listed in contour order."""

FACE68_CLOSED: frozenset[str] = frozenset({"right_eye", "left_eye", "outer_lip", "inner_lip"})
"""Groups drawn as closed contours; the others (jaw, brows, nose bridge, nostrils) are open."""

FACE68_FLIP: np.ndarray = np.array(
    list(range(16, -1, -1))                 # jaw
    + list(range(26, 16, -1))               # brows swap and reverse
    + [27, 28, 29, 30]                      # nose bridge is on the midline
    + [35, 34, 33, 32, 31]                  # nostrils reverse
    + [45, 44, 43, 42, 47, 46]              # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]              # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48]          # outer lip, upper part
    + [59, 58, 57, 56, 55]                  # outer lip, lower part
    + [64, 63, 62, 61, 60]                  # inner lip, upper part
    + [67, 66, 65]                          # inner lip, lower part
)
"""(68,) int: left/right swap for a horizontal flip (same as face_alignment's ``shuffle_lr``)."""


def _group_edges(groups: dict[str, tuple[int, ...]], closed: frozenset[str]) -> tuple[tuple[int, int], ...]:
    edges = []
    for name, idx in groups.items():
        edges += list(zip(idx[:-1], idx[1:]))
        if name in closed:
            edges.append((idx[-1], idx[0]))
    return tuple(edges)


FACE68_EDGES: tuple[tuple[int, int], ...] = _group_edges(FACE68_GROUPS, FACE68_CLOSED)
"""Polyline edges of every group, closing the eyes and lips (63 edges)."""

FACE68_OUTER_EYE_CORNERS: tuple[int, int] = (36, 45)
"""Points whose distance is the inter-ocular NME normaliser (300W)."""

# --------------------------------------------------------------------------------------------
# Facial part segmentation (paper section 9)
# --------------------------------------------------------------------------------------------

FACE_PARTS: tuple[str, ...] = ("background", "skin", "lower_lip", "upper_lip", "inner_mouth", "eyes", "nose")
"""The 7 class names; the class label is the index in this tuple."""

FACE_PART_POLYGONS: tuple[tuple[str, tuple[int, ...]], ...] = (
    # Fill in this order; later polygons overwrite earlier ones.
    ("skin", tuple(range(0, 17)) + tuple(range(26, 16, -1))),   # jaw closed over the brows
    ("nose", (27, 31, 32, 33, 34, 35)),                         # bridge top to the nostril line
    # Bridge top -> tip -> nostril wings: under yaw the tip (30) leaves the polygon above, and
    # beyond 30 degrees it leaves the face outline too; these two triangles keep it enclosed.
    ("nose", (27, 30, 31)),
    ("nose", (27, 35, 30)),
    ("eyes", tuple(range(36, 42))),
    ("eyes", tuple(range(42, 48))),
    ("upper_lip", (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)),
    ("lower_lip", (48, 60, 67, 66, 65, 64, 54, 55, 56, 57, 58, 59)),
    ("inner_mouth", tuple(range(60, 68))),
)
"""(class name, polygon as 0-based landmark indices) pairs, in fill order. Our reconstruction of the
paper's masks. Mirroring the 68 points with ``FACE68_FLIP`` maps
each polygon onto its mirror image, so masks flip by mirroring the pixels only (no class swap)."""

# --------------------------------------------------------------------------------------------
# LSP-14
# --------------------------------------------------------------------------------------------

LSP_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle",
    "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
    "neck", "head_top",
)
"""LSP / LSPET joint order (0-based)."""

LSP_TO_MPII: np.ndarray = np.array([0, 1, 2, 3, 4, 5, -1, -1, 12, 13, 6, 7, 8, 9, 10, 11])
"""(16,) int: MPII joint ``j`` is LSP joint ``LSP_TO_MPII[j]``; -1 marks pelvis and thorax, which
LSP lacks (``lsp_to_mpii`` synthesises them)."""


def lsp_to_mpii(points: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reorder LSP-14 joints into the MPII-16 layout.

    points: (..., 14, 2), visible: (..., 14) or None (all annotated).
    Returns (points (..., 16, 2), visible (..., 16) bool). Pelvis = mean of the two hips; thorax =
    mean of the two shoulders (MPII's thorax sits at the base of the neck, between the shoulders;
    bearpaw instead averages neck and head-top). Each is annotated only if both sources are.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2:] != (14, 2):
        raise ValueError(f"lsp_to_mpii: expected points (..., 14, 2), got {points.shape}")
    vis = np.ones(points.shape[:-1], bool) if visible is None else np.asarray(visible).astype(bool)
    if vis.shape != points.shape[:-1]:
        raise ValueError(f"lsp_to_mpii: visible shape {vis.shape} does not match points {points.shape}")
    src = np.where(LSP_TO_MPII < 0, 0, LSP_TO_MPII)
    out = points[..., src, :].copy()
    out_vis = vis[..., src].copy()
    out[..., 6, :] = 0.5 * (points[..., 2, :] + points[..., 3, :])
    out_vis[..., 6] = vis[..., 2] & vis[..., 3]
    out[..., 7, :] = 0.5 * (points[..., 8, :] + points[..., 9, :])
    out_vis[..., 7] = vis[..., 8] & vis[..., 9]
    return out, out_vis
