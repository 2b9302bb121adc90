"""Augmentation defaults and crop conventions shared by the synthetic sets and the loaders.

``AUGMENT`` is the paper's training augmentation (section 6.1): rotation by up to +-40 degrees,
scaling by 0.7-1.3, left-right flipping (with the data kind's landmark permutation) and colour
jitter, applied by ``tinybin.transforms.augment``. ``NO_AUGMENT`` is the plain centred crop used
for evaluation. ``FACE_SCALE_DIVISOR`` fixes how a face's landmarks give its crop.
"""
from __future__ import annotations

import numpy as np

AUGMENT = dict(rotation=40.0, scale_range=(0.7, 1.3), flip=True, color=True)
NO_AUGMENT = dict(rotation=0.0, scale_range=(1.0, 1.0), flip=False, color=False)

FACE_SCALE_DIVISOR = 190.0
"""Faces: ``scale = (w + h) / 190`` of the tight landmark box (the FAN demo's rule), so the
200 * scale crop is about twice the face box."""


def _face_center_scale(pts):
    lo, hi = pts.min(0), pts.max(0)
    return (0.5 * (lo + hi)).astype(np.float32), np.float32((hi - lo).sum() / FACE_SCALE_DIVISOR)
