"""``SyntheticFaceParts``: the synthetic faces as a 7-class part-segmentation set (paper section 9).

The same images as ``SyntheticFace``; the targets are the part masks (``batch["mask"]``, labels in
``tinybin.skeletons.FACE_PARTS`` order) that every face sample carries. Augmentation warps the mask
with the image and flips it with the 68 landmarks' permutation.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .face import SyntheticFace


class SyntheticFaceParts:
    """View of a ``SyntheticFace`` set whose targets are the 7-class part masks.

    ``SyntheticFaceParts(n, resolution, seed, difficulty, split, yaw_range)`` takes
    ``SyntheticFace``'s arguments; ``ds[i]`` and ``ds.batch(...)`` are those of the face set (``mask`` (R, R) uint8).
    """

    kind = "segmentation"

    def __init__(self, n: int, resolution: int = 64, seed: int = 0, difficulty: float = 0.5,
                 split: str = "train", yaw_range: tuple[float, float] | None = None):
        self.faces = SyntheticFace(n, resolution=resolution, seed=seed, difficulty=difficulty, split=split,
                                   yaw_range=yaw_range)
        self.resolution = self.faces.resolution

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> dict:
        return self.faces[i]

    @property
    def flip_perm(self) -> np.ndarray:
        return self.faces.flip_perm

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None,
              **augment_kw) -> dict:
        """``SyntheticFace.batch``: stacked arrays including ``mask`` (N, R, R)."""
        return self.faces.batch(indices, augment=augment, rng=rng, **augment_kw)
