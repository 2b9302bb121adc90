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

Modules: ``render`` (the Numba rasterizer beside its NumPy reference), ``scenes`` (shared scene
helpers), ``synthetic`` (what both generators share), ``augment`` (augmentation defaults and crop
conventions), ``pose`` (``SyntheticPose``), ``face`` (``SyntheticFace``), ``segmentation``
(``SyntheticFaceParts``, the faces' part masks), ``loaders`` (the real formats and
``RecordDataset``) and ``kinds`` (``KINDS``: one row per data kind, its generator, landmark count,
flip permutation, default loss and metric). The repository root's
``datasets.py`` re-exports this package, so ``import datasets`` keeps working from a clone.

Rendering. Every synthetic image is one *display list* (rows of primitives: tapered capsules,
ellipses, rounded polygons, shaded ellipsoid heads) painted in order with analytic anti-aliasing
(coverage = clip(0.5 - signed distance in pixels, 0, 1)). ``render_list`` is the Numba kernel,
``render_list_ref`` its pure-NumPy reference; ``tests/test_datasets.py`` checks they agree.
"""

from .face import FACE_TEMPLATE_3D, SyntheticFace, balanced_yaw_subset
from .augment import AUGMENT, FACE_SCALE_DIVISOR, NO_AUGMENT
from .loaders import (Record, RecordDataset, load_300w, load_aflw2000, load_image, load_lsp,
                      load_mpii_json, load_mpii_mat, read_pts)
from .kinds import KINDS, Kind, get_kind, kind_for_landmarks, register_kind
from .pose import SyntheticPose
from .render import DisplayList, head_params, render_list, render_list_ref
from .segmentation import SyntheticFaceParts

__all__ = [
    "KINDS", "Kind", "get_kind", "kind_for_landmarks", "register_kind", "AUGMENT", "NO_AUGMENT",
    "SyntheticPose", "SyntheticFace", "SyntheticFaceParts", "balanced_yaw_subset", "RecordDataset", "Record", "FACE_TEMPLATE_3D", "FACE_SCALE_DIVISOR",
    "DisplayList", "head_params",
    "render_list", "render_list_ref", "load_image",
    "read_pts", "load_300w", "load_mpii_mat", "load_mpii_json", "load_lsp", "load_aflw2000",
]
