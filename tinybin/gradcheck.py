"""Numerical gradients for checking analytic ones (CS231n's `gradient_check.py`, for tinybin).

`check_grads(f, inputs)` compares, for a scalar function of Tensors, the gradients from
`backward()` with central finite differences (f(x + h) - f(x - h)) / 2h, in float64. Use it in
tests and notebooks; a relative error below ~1e-6 in float64 means the backward is right.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(max |a|, max |b|): the worst error relative to the gradient's scale.

    Normalising by the largest entry (not entry by entry) keeps entries that are ~0 analytically,
    where finite differences only see rounding noise, from dominating the verdict."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-12)
    return float(np.abs(a - b).max() / scale)


def numerical_grad(f: Callable[[], float], x: np.ndarray, h: float = 1e-6,
                   max_entries: int | None = None, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of scalar f() w.r.t. the array x (modified in place and restored).

    Returns (grad, checked) where `checked` is a boolean mask of the entries evaluated (all of
    them, or a random subset of `max_entries` for big arrays)."""
    grad = np.zeros_like(x, dtype=np.float64)
    checked = np.zeros(x.shape, bool)
    idx = np.arange(x.size)
    if max_entries is not None and x.size > max_entries:
        idx = np.random.default_rng(rng).choice(x.size, max_entries, replace=False)
    flat = x.reshape(-1)
    for i in idx:
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        grad.reshape(-1)[i] = (fp - fm) / (2 * h)
        checked.reshape(-1)[i] = True
    return grad, checked


def check_grads(f: Callable[..., Tensor], inputs: Sequence[Tensor], h: float = 1e-6,
                max_entries: int | None = 200, rng=0) -> float:
    """Largest relative error between analytic and numerical gradients of scalar f(*inputs).

    Inputs should be float64 Tensors with requires_grad=True. Only the entries checked
    numerically (up to `max_entries` per input) are compared.
    """
    for t in inputs:
        t.grad = None
    out = f(*inputs)
    if out.data.size != 1:
        raise ValueError(f"check_grads needs a scalar function, got shape {out.shape}")
    out.backward()
    worst = 0.0
    for t in inputs:
        if not t.requires_grad:
            continue
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad
        num, mask = numerical_grad(lambda: float(f(*inputs).data), t.data, h, max_entries, rng)
        worst = max(worst, rel_error(analytic[mask], num[mask]))
    return worst
