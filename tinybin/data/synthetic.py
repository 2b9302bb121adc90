"""What both synthetic generators share: argument checks, deterministic indexing, and batching
with optional augmentation."""

from __future__ import annotations

import math

import numpy as np

from ..transforms import augment as _augment
from .augment import AUGMENT
from .render import render_list
from .scenes import _sample_seed, _stack


# Largest data set (bytes, estimated) whose rendered samples `_Synthetic` keeps in memory.
CACHE_BYTES = 1 << 30


class _Synthetic:
    """What both generators share: argument checks, length, deterministic indexing, a render cache."""

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
        # Rendered samples, kept after their first use: a sample depends only on (seed, split, i),
        # so a training run renders each of its n images once instead of once per epoch (rendering
        # was ~20% of a downscaled training step). Arrays are read-only; batches copy them.
        self._cache: dict[int, dict] | None = {} if self._cache_fits() else None

    def _cache_fits(self) -> bool:
        return self.n * self.resolution ** 2 * 4 * 4 <= CACHE_BYTES  # image + mask / labels, float32

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not -self.n <= i < self.n:
            raise IndexError(f"{type(self).__name__}: index {i} out of range for {self.n} samples")
        i = int(i) % self.n
        cache = getattr(self, "_cache", None)
        if cache is not None and i in cache:
            return dict(cache[i])
        sample = self._render(_sample_seed(self.seed, self.split, i), impl=render_list)
        if cache is not None:
            for v in sample.values():
                if isinstance(v, np.ndarray):
                    v.setflags(write=False)
            cache[i] = sample
            return dict(sample)
        return sample

    def __getstate__(self) -> dict:  # worker processes get the settings, not the rendered images
        state = dict(self.__dict__)
        if state.get("_cache") is not None:
            state["_cache"] = {}
        return state

    def _render(self, rng, impl=render_list):  # pragma: no cover - interface
        raise NotImplementedError


def _batch(ds, indices, augment, rng, augment_kw) -> dict:
    indices = list(indices)
    if not indices:
        raise ValueError(f"{type(ds).__name__}.batch: no indices given")
    samples = [ds[i] for i in indices]
    if augment:
        if rng is None:
            raise ValueError(f"{type(ds).__name__}.batch: augment=True needs an explicit rng "
                             "(np.random.Generator), got None")
        kw = {**AUGMENT, **augment_kw}
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
