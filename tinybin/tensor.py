"""Autograd-lite: a Tensor that remembers the op that made it, and reverse-mode backward.

The maths of every op lives in `functional.py` as a `Function` with a `forward(ctx, ...)` and a
`backward(ctx, grad)`; this module only does the bookkeeping that composes them (micrograd's
`engine.py` and tinygrad's 2020 `Function` are the models):

* a `Tensor` wraps a NumPy array `.data` (float32 by default; float64 kept for gradient checks),
  an accumulated `.grad`, and `_ctx`, the context of the `Function` call that produced it;
* `Tensor.backward()` sorts the graph topologically and walks it once in reverse, so a tensor that
  feeds several ops (a residual add, the concatenated branches of the hierarchical block of paper
  Fig. 7e) receives the *sum* of its consumers' gradients before it propagates its own.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, optimizer updates, evaluation)."""
    global _grad_enabled
    prev, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = prev


def is_grad_enabled() -> bool:
    return _grad_enabled


def _as_array(data: Any) -> np.ndarray:
    """float32 unless the caller explicitly hands us float64 (gradient checks run in float64)."""
    if isinstance(data, Tensor):
        return data.data
    arr = np.asarray(data)
    if arr.dtype == np.float64 or arr.dtype == np.float32:
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float32)
    raise ValueError(f"Tensor expects a real numeric array, got dtype {arr.dtype}")


class Tensor:
    """An ndarray with a gradient and a link to the op that made it.

    >>> x = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    array([[2., 2., 2.], [2., 2., 2.]], dtype=float32)
    """

    __array_priority__ = 100  # so `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = _as_array(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Context | None = None  # set by Function.apply

    # ---- bookkeeping -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """Same data, no history: gradients stop here."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{flag})"

    def __len__(self) -> int:
        return len(self.data)

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires it.

        `grad` defaults to 1 for a scalar. Walks the graph in reverse topological order, so each
        node's gradient is complete (summed over all its consumers) before it is propagated.
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.data.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"gradient shape {grad.shape} does not match tensor shape {self.shape}")

        order: list[Tensor] = []
        seen: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:  # iterative DFS post-order: deep hourglasses overflow Python's recursion
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                for parent in node._ctx.parents:
                    if id(parent) not in seen:
                        stack.append((parent, False))

        grads: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:  # a leaf
                if node.requires_grad:
                    node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            ctx = node._ctx
            in_grads = ctx.fn.backward(ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg in zip(ctx.parents, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(f"{ctx.fn.__name__}.backward returned shape {pg.shape} "
                                       f"for an input of shape {parent.shape}")
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

    # ---- operators (the few that blocks and losses need) ---------------------------------
    def __add__(self, other):
        from . import functional as F
        return F.add(self, _lift(other, self))

    __radd__ = __add__

    def __sub__(self, other):
        from . import functional as F
        return F.sub(self, _lift(other, self))

    def __rsub__(self, other):
        from . import functional as F
        return F.sub(_lift(other, self), self)

    def __mul__(self, other):
        from . import functional as F
        return F.mul(self, _lift(other, self))

    __rmul__ = __mul__

    def __neg__(self):
        from . import functional as F
        return F.mul(self, _lift(-1.0, self))

    def __truediv__(self, other):
        if isinstance(other, Tensor):
            raise TypeError("division by a Tensor is not supported; multiply by its inverse")
        return self * (1.0 / float(other))

    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        from . import functional as F
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        from . import functional as F
        return F.mean(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> "Tensor":
        from . import functional as F
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.reshape(self, shape)


def _lift(x, like: Tensor) -> Tensor:
    """Wrap Python scalars and arrays as constant tensors of `like`'s dtype."""
    if isinstance(x, Tensor):
        return x
    return Tensor(np.asarray(x, dtype=like.dtype))


class Context:
    """What a Function's forward leaves for its backward: inputs, saved arrays, attributes."""

    def __init__(self, fn: type, parents: tuple[Tensor, ...]):
        self.fn = fn
        self.parents = parents
        self.saved: tuple = ()
        self.needs_input_grad = tuple(p.requires_grad for p in parents)

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays


class Function:
    """One differentiable op: subclass and write `forward(ctx, *arrays, **kw)` returning an array
    and `backward(ctx, grad)` returning one gradient (or None) per tensor input.

    `apply` unwraps tensors to arrays, runs forward, and -- when a gradient is needed -- links the
    result to a Context so `Tensor.backward` can find its way back.
    """

    @staticmethod
    def forward(ctx: Context, *args, **kwargs) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *tensors: Tensor, **kwargs) -> Tensor:
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        ctx = Context(cls, tensors)
        out = cls.forward(ctx, *[t.data for t in tensors], **kwargs)
        result = Tensor(out)
        if _grad_enabled and any(t.requires_grad for t in tensors):
            result.requires_grad = True
            result._ctx = ctx
        return result
