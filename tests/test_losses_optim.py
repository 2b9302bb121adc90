"""Losses against direct formulas and finite differences; optimizers against hand-computed steps."""
import numpy as np
import pytest

import tinybin as tb
from tinybin import Tensor
from tinybin.nn import Parameter
from tinybin.gradcheck import check_grads


def T(a):
    return Tensor(np.asarray(a, np.float64), requires_grad=True)


def test_sigmoid_bce_matches_eq2_and_gradcheck(rng):
    z = T(rng.standard_normal((2, 4, 5, 3)) * 3)
    p = rng.random((2, 4, 5, 3))
    w = np.array([[1, 0, 1], [1, 1, 0.5]])
    s = 1 / (1 + np.exp(-z.data))
    per = -(p * np.log(s) + (1 - p) * np.log(1 - s))
    expected = (per.sum(axis=(1, 2)) * w).sum() / 6
    np.testing.assert_allclose(tb.losses.sigmoid_bce(z, p, w).data, expected, rtol=1e-10)
    assert check_grads(lambda z: tb.losses.sigmoid_bce(z, p, w), [z]) < 1e-6


def test_sigmoid_bce_is_stable_for_huge_logits():
    z = T(np.array([-1e4, 1e4, -1e4, 1e4]).reshape(1, 1, 4, 1))
    p = np.array([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4, 1)
    loss = tb.losses.sigmoid_bce(z, p)
    np.testing.assert_allclose(loss.data, 2e4)
    loss.backward()
    np.testing.assert_allclose(z.grad.ravel(), [0, 0, -1, 1])


def test_unannotated_landmark_contributes_nothing(rng):
    z = T(rng.standard_normal((1, 3, 3, 2)))
    p = rng.random((1, 3, 3, 2))
    tb.losses.sigmoid_bce(z, p, weight=[1.0, 0.0]).backward()
    assert np.all(z.grad[..., 1] == 0) and np.any(z.grad[..., 0] != 0)


def test_mse_and_cross_entropy(rng):
    y = T(rng.standard_normal((2, 3, 3, 4)))
    t = rng.random((2, 3, 3, 4))
    np.testing.assert_allclose(tb.losses.mse(y, t).data, ((y.data - t) ** 2).sum() / 8)
    assert check_grads(lambda y: tb.losses.mse(y, t), [y]) < 1e-6
    labels = rng.integers(0, 4, (2, 3, 3))
    logp = y.data - np.log(np.exp(y.data).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, labels[..., None], -1).mean()
    np.testing.assert_allclose(tb.losses.cross_entropy(y, labels).data, expected, rtol=1e-10)
    assert check_grads(lambda y: tb.losses.cross_entropy(y, labels), [y]) < 1e-6


def test_loss_input_errors():
    z = Tensor(np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="target shape"):
        tb.losses.sigmoid_bce(z, np.zeros((1, 2, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        tb.losses.sigmoid_bce(Tensor(np.full((1, 2, 2, 3), np.nan, np.float32)), np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="integers"):
        tb.losses.cross_entropy(z, np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tb.losses.cross_entropy(z, np.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match="weight"):
        tb.losses.mse(z, np.zeros((1, 2, 2, 3)), weight=np.ones(2))


def _param(v):
    return tb.Parameter(np.array(v, np.float64))


def test_rmsprop_step_by_hand():
    p = _param([1.0, -2.0])
    opt = tb.optim.RMSprop([p], lr=0.1, alpha=0.9, eps=1e-8)
    p.grad = np.array([0.5, -1.0])
    opt.step()
    v = 0.1 * p.grad ** 2
    np.testing.assert_allclose(p.data, [1.0, -2.0] - 0.1 * p.grad / (np.sqrt(v) + 1e-8))


def test_sgd_momentum_and_adam_by_hand():
    p = _param([1.0])
    opt = tb.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(2):
        p.grad = np.array([1.0])
        opt.step()
    # step1: g=1+0.5*1=1.5, v=1.5, p=0.85; step2: g=1+0.425=1.425, v=1.35+1.425=2.775, p=0.5725
    np.testing.assert_allclose(p.data, [0.5725])
    q = _param([0.0])
    adam = tb.optim.Adam([q], lr=0.1)
    q.grad = np.array([2.0])
    adam.step()
    np.testing.assert_allclose(q.data, [-0.1], rtol=1e-6)  # first Adam step is lr * sign(g)


def test_clipping_latent_weights_and_state_round_trip():
    p = _param([0.95, -0.95])
    opt = tb.optim.SGD([p], lr=1.0, clip=1.0)
    p.grad = np.array([-1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(p.data, [1.0, -1.0])
    a = _param([1.0, 2.0])
    o1 = tb.optim.RMSprop([a], lr=0.1)
    a.grad = np.array([1.0, 1.0])
    o1.step()
    b = _param(a.data.copy())
    o2 = tb.optim.RMSprop([b], lr=0.5)
    o2.load_state_dict(o1.state_dict())
    a.grad = b.grad = np.array([0.3, -0.2])
    o1.step()
    o2.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_multistep_schedule_paper_drops_to_5e5():
    p = _param([0.0])
    opt = tb.optim.RMSprop([p])
    sched = tb.optim.MultiStepLR.paper(opt, total_steps=100)
    lrs = [sched.step(s) for s in range(100)]
    assert lrs[0] == 2.5e-4 and abs(lrs[-1] - 5e-5) < 1e-12
    assert len(set(lrs)) == 5 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ValueError):
        tb.optim.SGD([], lr=0.1)


def test_rmsprop_in_place_update_equals_the_formula_bit_for_bit(rng):
    p0 = rng.standard_normal((7, 5)).astype(np.float32)
    p = Parameter(p0.copy())
    opt = tb.optim.RMSprop([p], lr=2.5e-4, alpha=0.99, eps=1e-8)
    v = np.zeros_like(p0)
    ref = p0.copy()
    for _ in range(3):
        g = rng.standard_normal(p0.shape).astype(np.float32)
        p.grad = g.copy()
        opt.step()
        v = 0.99 * v + (1 - 0.99) * g * g
        ref = ref - 2.5e-4 * g / (np.sqrt(v) + 1e-8)
        np.testing.assert_array_equal(opt.state[0]["v"], v)
        np.testing.assert_array_equal(p.data, ref)
        np.testing.assert_array_equal(p.grad, g)  # the gradient is not overwritten
