"""Optimizers and learning-rate schedules (paper §6.1: RMSprop, lr 2.5e-4 dropped to 5e-5).

Each optimizer updates `Parameter.data` in place from `Parameter.grad`. Their state (moments,
step count) is exposed by `state_dict()` / `load_state_dict()` so a resumed run continues with
exactly the same numbers. Binary networks keep real-valued *latent* weights; `clip=c` clamps the
listed parameters to [-c, c] after each step (BinaryConnect/XNOR-Net practice: a latent weight far
beyond 1 can never flip sign again).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from numba import njit

from .nn import Parameter


class Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float, clip: float | None = None,
                 clip_params: Iterable[Parameter] | None = None):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.clip = clip
        ids = {id(p) for p in clip_params} if clip_params is not None else None
        self._clip_mask = [ids is None or id(p) in ids for p in self.params]
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        for i, p in enumerate(self.params):
            if p.grad is None or not p.requires_grad:
                continue
            g = p.grad.astype(p.data.dtype, copy=False)
            self._update(p, g, self.state[i])
            if self.clip is not None and self._clip_mask[i]:
                np.clip(p.data, -self.clip, self.clip, out=p.data)

    def _update(self, p, g, st):  # pragma: no cover - interface
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {"t": np.array(self.t), "lr": np.array(self.lr)}
        for i, st in enumerate(self.state):
            for k, v in st.items():
                out[f"{i}.{k}"] = v.copy()
        return out

    def load_state_dict(self, sd: dict) -> None:
        self.t = int(sd["t"])
        self.lr = float(sd["lr"])
        self.state = [{} for _ in self.params]
        for key, v in sd.items():
            if key in ("t", "lr"):
                continue
            i, name = key.split(".", 1)
            i = int(i)
            if i >= len(self.params) or np.shape(v) != self.params[i].shape:
                raise ValueError(f"optimizer state {key} does not fit parameter {i}")
            self.state[i][name] = np.array(v, dtype=self.params[i].data.dtype)


class SGD(Optimizer):
    """v = momentum * v + (g + wd * p);  p -= lr * v."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0, **kw):
        super().__init__(params, lr, **kw)
        self.momentum, self.weight_decay = momentum, weight_decay

    def _update(self, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            v = st.setdefault("v", np.zeros_like(p.data))
            v *= self.momentum
            v += g
            g = v
        p.data -= self.lr * g


class RMSprop(Optimizer):
    """Torch7 `optim.rmsprop` (the paper's optimizer): v = alpha*v + (1-alpha)*g^2;
    p -= lr * g / (sqrt(v) + eps), with alpha = 0.99, eps = 1e-8."""

    def __init__(self, params, lr: float = 2.5e-4, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, **kw):
        super().__init__(params, lr, **kw)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay

    def _update(self, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        v = st.setdefault("v", np.zeros_like(p.data))
        d = p.data
        if (USE_KERNEL and d.dtype in (np.float32, np.float64) and g.dtype == d.dtype
                and d.flags.c_contiguous and g.flags.c_contiguous and v.flags.c_contiguous):
            # one Numba pass instead of nine NumPy calls; the same operations and roundings
            t = d.dtype.type
            _rmsprop_update(d.reshape(-1), g.reshape(-1), v.reshape(-1), t(self.alpha),
                            t(1 - self.alpha), t(self.lr), t(self.eps))
            return
        self._update_ref(p, g, v)

    def _update_ref(self, p, g, v):
        """The NumPy form (the reference of `_rmsprop_update`)."""
        # in place, with the operations (and roundings) of
        # v = alpha*v + ((1-alpha)*g)*g;  p -= (lr*g) / (sqrt(v) + eps)
        t = np.multiply(g, 1 - self.alpha)
        t *= g
        v *= self.alpha
        v += t
        d = np.sqrt(v)
        d += self.eps
        np.multiply(g, self.lr, out=t)
        t /= d
        p.data -= t


# RMSprop updates with the Numba kernel below; False selects the NumPy form (tests compare them).
USE_KERNEL = True


@njit(cache=True, nogil=True)
def _rmsprop_update(p, g, v, alpha, one_minus_alpha, lr, eps):
    """v = alpha*v + ((1-alpha)*g)*g;  p -= (lr*g) / (sqrt(v) + eps), elementwise in p's dtype,
    in the order (and with the roundings) of `RMSprop._update_ref`."""
    for i in range(p.size):
        gi = g[i]
        vi = v[i] * alpha + (gi * one_minus_alpha) * gi
        v[i] = vi
        p[i] -= (gi * lr) / (np.sqrt(vi) + eps)


class Adam(Optimizer):
    """Kingma & Ba: bias-corrected first and second moments."""

    def __init__(self, params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, **kw):
        super().__init__(params, lr, **kw)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def _update(self, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        m = st.setdefault("m", np.zeros_like(p.data))
        v = st.setdefault("v", np.zeros_like(p.data))
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * g * g
        mhat = m / (1 - self.b1 ** self.t)
        vhat = v / (1 - self.b2 ** self.t)
        p.data -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


class MultiStepLR:
    """lr = base_lr * gamma ** (number of milestones <= step). The paper drops 2.5e-4 four times
    to 5e-5 over training; `MultiStepLR.paper(opt, total_steps)` spreads those drops."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 lrs: Sequence[float] | None = None):
        self.opt = optimizer
        self.base_lr = optimizer.lr
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        self.lrs = list(lrs) if lrs is not None else None
        if self.lrs is not None and len(self.lrs) != len(self.milestones) + 1:
            raise ValueError("lrs must have one more entry than milestones")

    def lr_at(self, step: int) -> float:
        k = sum(step >= m for m in self.milestones)
        return self.lrs[k] if self.lrs is not None else self.base_lr * self.gamma ** k

    def step(self, step: int) -> float:
        """Set the optimizer's lr for training step `step` (0-based) and return it."""
        self.opt.lr = self.lr_at(step)
        return self.opt.lr

    @classmethod
    def paper(cls, optimizer: Optimizer, total_steps: int, start: float = 2.5e-4, end: float = 5e-5):
        """Four geometric drops from `start` to `end` at 50, 65, 80 and 90% of training."""
        fr = (0.5, 0.65, 0.8, 0.9)
        ratio = (end / start) ** (1 / 4)
        optimizer.lr = start
        return cls(optimizer, [int(f * total_steps) for f in fr],
                   lrs=[start * ratio ** k for k in range(5)])
