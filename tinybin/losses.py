"""Heatmap and segmentation losses (paper §5 "The Effect of Loss", §6.1 eq. 2, §9).

All three reduce the same way so their gradients can be compared (the paper reports that the
sigmoid loss gives 10-15x larger gradients than L2): **sum over the pixels of a map, mean over the
maps** (batch x landmarks), as eq. 2 reads. Maps whose weight is 0 (unannotated landmarks, or ones
off the crop) contribute nothing but still count in the mean, like the reference code.

Shapes (NHWC): logits/pred/target (N, H, W, K); weight (N, K), (K,) or None.

`LOSSES` is the registry the trainer (`TrainConfig.loss`) and the CLI (`--loss`) read: a loss
decorated with `@register_loss(name, target=...)` is usable by name. `target` says what the trainer
feeds it: "heatmaps" -> `fn(logits, heatmaps (N, H, W, K), weight (N, K))` (Gaussian targets of
the landmarks, weight 0 for unannotated ones); "labels" -> `fn(logits, labels (N, H, W))`
(segmentation masks at output resolution).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .functional import check_input, sigmoid_np
from .tensor import Function, Tensor


TARGETS = ("heatmaps", "labels")


@dataclass(frozen=True)
class Loss:
    """A registered loss: its name, the function, and which targets it takes ("heatmaps" | "labels")."""
    name: str
    fn: Callable[..., Tensor]
    target: str


LOSSES: dict[str, Loss] = {}


def register_loss(name: str, target: str = "heatmaps"):
    """Decorator: make a loss function available by `name` to the trainer and the CLI.

        @register_loss("l1")
        def l1(pred, target, weight=None): ...      # -> a scalar Tensor
    """
    if target not in TARGETS:
        raise ValueError(f"register_loss: target must be one of {TARGETS}, got {target!r}")

    def deco(fn):
        LOSSES[name] = Loss(name, fn, target)
        return fn
    return deco


def get_loss(name: str) -> Loss:
    """`LOSSES[name]`, or a ValueError naming the registered losses."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def _weights(weight, N: int, K: int, dtype) -> np.ndarray:
    if weight is None:
        return np.ones((N, 1, 1, K), dtype)
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if w.shape == (K,):
        w = np.broadcast_to(w, (N, K))
    if w.shape != (N, K):
        raise ValueError(f"loss weight must have shape ({N}, {K}) or ({K},), got {w.shape}")
    return w.reshape(N, 1, 1, K)


def _check_pair(a, b, name):
    check_input(a, f"{name} input", rank=4, finite=True)
    tb = b.data if isinstance(b, Tensor) else np.asarray(b)
    if tb.shape != a.shape:
        raise ValueError(f"{name}: target shape {tb.shape} differs from prediction shape {a.shape}")
    if not np.isfinite(tb).all():
        raise ValueError(f"{name}: target contains NaN or Inf")
    return tb.astype(a.data.dtype, copy=False)


class _SigmoidBCE(Function):
    @staticmethod
    def forward(ctx, z, p=None, w=None):
        # -[p log s(z) + (1-p) log(1-s(z))] = max(z, 0) - z p + log(1 + exp(-|z|)), stable for any |z|
        n_maps = z.shape[0] * z.shape[-1]
        per = np.maximum(z, 0) - z * p + np.log1p(np.exp(-np.abs(z)))
        ctx.save_for_backward(z, p, w)
        ctx.n_maps = n_maps
        return np.asarray((per * w).sum() / n_maps, dtype=z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, p, w = ctx.saved
        return (g * (sigmoid_np(z) - p) * w / ctx.n_maps).astype(z.dtype)


@register_loss("bce")
def sigmoid_bce(logits: Tensor, target, weight=None) -> Tensor:
    """Pixel-wise sigmoid binary cross-entropy on logits (paper eq. 2, with its minus sign):

        l = (1 / (N*K)) sum_{n,k} w_nk sum_{i,j} -[p log sigmoid(z) + (1 - p) log(1 - sigmoid(z))]

    Computed as max(z,0) - z*p + log1p(exp(-|z|)): finite for |z| up to 1e4 and beyond.
    Gradient: w * (sigmoid(z) - p) / (N*K).
    """
    p = _check_pair(logits, target, "sigmoid_bce")
    N, K = logits.shape[0], logits.shape[-1]
    return _SigmoidBCE.apply(logits, p=p, w=_weights(weight, N, K, logits.dtype))


class _MSE(Function):
    @staticmethod
    def forward(ctx, y, t=None, w=None):
        d = y - t
        ctx.save_for_backward(d, w)
        ctx.n_maps = y.shape[0] * y.shape[-1]
        return np.asarray((d * d * w).sum() / ctx.n_maps, dtype=y.dtype)

    @staticmethod
    def backward(ctx, g):
        d, w = ctx.saved
        return (g * 2 * d * w / ctx.n_maps).astype(d.dtype)


@register_loss("mse")
def mse(pred: Tensor, target, weight=None) -> Tensor:
    """Heatmap L2 loss (Newell et al.; paper Table 4 "L2 loss") on the raw network output:

        l = (1 / (N*K)) sum_{n,k} w_nk sum_{i,j} (y - p)^2
    """
    t = _check_pair(pred, target, "mse")
    N, K = pred.shape[0], pred.shape[-1]
    return _MSE.apply(pred, t=t, w=_weights(weight, N, K, pred.dtype))


class _CrossEntropy(Function):
    @staticmethod
    def forward(ctx, z, labels=None, valid=None):
        m = z.max(axis=-1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=-1, keepdims=True)
        logp = (z - m) - np.log(s)
        safe = np.where(valid, labels, 0)
        picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
        n = max(int(valid.sum()), 1)
        ctx.save_for_backward(e / s, safe, valid)
        ctx.n = n
        return np.asarray(-(picked * valid).sum() / n, dtype=z.dtype)

    @staticmethod
    def backward(ctx, g):
        prob, safe, valid = ctx.saved
        d = prob.copy()
        np.put_along_axis(d, safe[..., None], np.take_along_axis(d, safe[..., None], -1) - 1, -1)
        return (g * d * valid[..., None] / ctx.n).astype(prob.dtype)


@register_loss("ce", target="labels")
def cross_entropy(logits: Tensor, labels, ignore_index: int | None = None) -> Tensor:
    """Softmax cross-entropy over the channel axis (part segmentation, paper §9).

    logits (N, H, W, C), labels (N, H, W) integers in [0, C). Mean over labelled pixels of
    -log softmax(z)[label]; pixels equal to `ignore_index` are skipped. Gradient: softmax - onehot.
    """
    check_input(logits, "cross_entropy input", rank=4, finite=True)
    lab = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if lab.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels must be integers, got dtype {lab.dtype}")
    if lab.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: labels shape {lab.shape} must equal logits shape without "
                         f"the channel axis {logits.shape[:-1]}")
    C = logits.shape[-1]
    valid = np.ones(lab.shape, bool) if ignore_index is None else lab != ignore_index
    if ((lab[valid] < 0) | (lab[valid] >= C)).any():
        raise ValueError(f"cross_entropy: labels must lie in [0, {C}), got range "
                         f"[{lab[valid].min()}, {lab[valid].max()}]")
    return _CrossEntropy.apply(logits, labels=lab.astype(np.int64), valid=valid)
