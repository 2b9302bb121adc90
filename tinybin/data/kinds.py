"""``KINDS``: one row per kind of data, so that the trainer, the evaluator, the experiments and the
CLI look a kind up instead of branching on it.

    kind          generator            maps  flip permutation  default loss  metric
    pose          SyntheticPose          16  MPII_FLIP         bce           pckh     (paper §6.2)
    face          SyntheticFace          68  FACE68_FLIP       bce           nme      (paper §6.3)
    segmentation  SyntheticFaceParts      7  FACE68_FLIP       ce            mean_iu  (paper §9)
    face_yaw90    SyntheticFace          68  FACE68_FLIP       bce           nme      (paper Table 9)
                  with yaw_range=(-90, 90): yaw uniform over AFLW2000-3D's span

``generator(n, resolution=, seed=, difficulty=, split=)`` makes a dataset (``len``, ``kind``,
``batch(indices, augment=, rng=)``); ``num_landmarks`` is the number of output maps a network for
the kind has (landmarks, or classes for segmentation); ``loss`` is a key of
``tinybin.losses.LOSSES``; ``metric`` is a key of ``tinybin.train.METRICS`` and the name of the
headline score in the evaluation result. A new kind is one module with its generator plus one
``register_kind(Kind(...))``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from ..skeletons import FACE68_FLIP, MPII_FLIP
from .face import SyntheticFace
from .pose import SyntheticPose
from .segmentation import SyntheticFaceParts


@dataclass(frozen=True, eq=False)
class Kind:
    """One kind of data: its generator, output maps, flip permutation, default loss and metric."""
    name: str
    generator: Callable[..., Any]
    num_landmarks: int
    flip_perm: np.ndarray | None
    loss: str
    metric: str


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Add (or replace) the row ``KINDS[kind.name]``; returns it."""
    if not isinstance(kind, Kind):
        raise TypeError(f"register_kind: expected a Kind, got {type(kind).__name__}")
    if isinstance(kind.num_landmarks, bool) or not isinstance(kind.num_landmarks, int) or kind.num_landmarks < 1:
        raise ValueError(f"register_kind: {kind.name}: num_landmarks must be an integer >= 1, "
                         f"got {kind.num_landmarks!r}")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str, who: str = "data kind") -> Kind:
    """``KINDS[name]``, or a ValueError naming the kinds there are."""
    if not isinstance(name, str) or name not in KINDS:
        raise ValueError(f"unknown {who} {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def kind_for_landmarks(num_landmarks: int) -> Kind | None:
    """The first registered kind whose networks have ``num_landmarks`` output maps, or None."""
    return next((k for k in KINDS.values() if k.num_landmarks == num_landmarks), None)


register_kind(Kind("pose", SyntheticPose, 16, MPII_FLIP, loss="bce", metric="pckh"))
register_kind(Kind("face", SyntheticFace, 68, FACE68_FLIP, loss="bce", metric="nme"))
register_kind(Kind("segmentation", SyntheticFaceParts, 7, FACE68_FLIP, loss="ce", metric="mean_iu"))
register_kind(Kind("face_yaw90", partial(SyntheticFace, yaw_range=(-90.0, 90.0)), 68, FACE68_FLIP,
                   loss="bce", metric="nme"))
