"""The autograd core: topological backward on DAGs, accumulation, no_grad, detach."""
import numpy as np
import pytest

import tinybin.functional as F
from tinybin import Tensor, no_grad
from tinybin.gradcheck import check_grads, numerical_grad, rel_error


def T(a):
    return Tensor(np.asarray(a, np.float64), requires_grad=True)


def test_scalar_chain_by_hand():
    # f = (a*b + a)^2 summed; df/da = 2(ab+a)(b+1), df/db = 2(ab+a)a
    a, b = T([2.0]), T([3.0])
    y = a * b + a
    (y * y).sum().backward()
    assert a.grad[0] == 2 * 8 * 4 and b.grad[0] == 2 * 8 * 2


def test_one_tensor_feeding_many_ops_gets_the_sum_of_gradients():
    x = T([1.0, -2.0])
    y = x + x * x + x * 3.0  # x used three times
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 1 + 2 * x.data + 3)


def test_hierarchical_block_graph_residual_plus_concat_of_chained_branches(rng):
    """Paper Fig. 7e's shape: x1 = f(x), x2 = g(x1), x3 = h(x2); y = concat(x1, x2, x3) + x.
    x feeds two ops, x1 and x2 feed two ops each: every shared node must sum its consumers."""
    x = Tensor(rng.standard_normal((2, 5, 5, 6)), requires_grad=True)
    w1 = Tensor(rng.standard_normal((3, 3, 3, 6)) * 0.3, requires_grad=True)
    w2 = Tensor(rng.standard_normal((2, 3, 3, 3)) * 0.3, requires_grad=True)
    w3 = Tensor(rng.standard_normal((1, 3, 3, 2)) * 0.3, requires_grad=True)
    g = Tensor(rng.standard_normal(6) + 2, requires_grad=True)
    b = Tensor(rng.standard_normal(6), requires_grad=True)
    proj = rng.standard_normal((2, 5, 5, 6))

    def block(x, w1, w2, w3, g, b):
        h = F.batch_norm(x, g, b, None, None, training=True)
        x1 = F.conv2d(F.relu(h), w1, None, 1, 1)
        x2 = F.conv2d(F.sigmoid(x1), w2, None, 1, 1)
        x3 = F.conv2d(F.sigmoid(x2), w3, None, 1, 1)
        y = F.concat([x1, x2, x3]) + x
        return (y * y * proj).sum()

    assert check_grads(block, [x, w1, w2, w3, g, b], max_entries=60) < 1e-5


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = T([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [5, 5])
    x.zero_grad()
    assert x.grad is None


def test_no_grad_and_detach_cut_the_graph():
    x = T([1.0, 2.0])
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad
    z = (x.detach() * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad, x.data)  # only the non-detached factor contributes


def test_backward_needs_scalar_or_matching_gradient():
    x = T([1.0, 2.0])
    with pytest.raises(ValueError, match="scalar"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = T([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad[0] == 1.0


def test_numerical_grad_helper_on_a_known_function():
    x = np.array([1.0, 2.0, 3.0])
    g, mask = numerical_grad(lambda: float((x ** 3).sum()), x)
    assert mask.all()
    assert rel_error(g, 3 * x ** 2) < 1e-8


def test_tensor_rejects_non_numeric_data():
    with pytest.raises(ValueError, match="dtype"):
        Tensor(np.array(["a"]))
    assert Tensor(np.arange(3)).dtype == np.float32
