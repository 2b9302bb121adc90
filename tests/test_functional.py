"""Every differentiable op: forward against a direct definition, backward against finite differences
(float64), and the Numba kernels against their NumPy references."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinybin.functional as F
from tinybin import Tensor, no_grad
from tinybin.gradcheck import check_grads
from tinybin.kernels import im2col as K
from tinybin.kernels import pool as P

from strategies import array_with_zeros, conv_cases, seeds

TOL = 1e-5  # relative error of analytic vs central-difference gradients in float64


def T(a, grad=True):
    return Tensor(np.asarray(a, np.float64), requires_grad=grad)


def conv_loop(x, w, b, stride, padding):
    """The definition, as loops: y[n,oy,ox,o] = b[o] + sum x_pad[n, oy*s+i, ox*s+j, c] w[o,i,j,c]."""
    N, H, W, C = x.shape
    Co, KH, KW, _ = w.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    y = np.zeros((N, OH, OW, Co))
    for oy in range(OH):
        for ox in range(OW):
            patch = xp[:, oy * stride:oy * stride + KH, ox * stride:ox * stride + KW, :]
            y[:, oy, ox, :] = np.einsum("nijc,oijc->no", patch, w)
    return y + (0 if b is None else b)


# ---- convolution ------------------------------------------------------------------------------

@given(conv_cases(), seeds)
def test_im2col_kernel_equals_reference(case, seed):
    xs, ws, stride, pad = case
    x = array_with_zeros(np.random.default_rng(seed), xs, np.float32)
    k = ws[1]
    ref = K.im2col_ref(x, k, k, stride, pad)
    np.testing.assert_array_equal(K.im2col(x, k, k, stride, pad), ref)
    cols = np.random.default_rng(seed + 1).standard_normal(ref.shape).astype(np.float32)
    np.testing.assert_allclose(K.col2im(cols, xs, k, k, stride, pad),
                               K.col2im_ref(cols, xs, k, k, stride, pad), rtol=1e-5, atol=1e-5)


@given(conv_cases(), seeds)
def test_col2im_is_the_adjoint_of_im2col(case, seed):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: the defining property of a backward
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    x = r.standard_normal(xs)
    k = ws[1]
    cols = r.standard_normal(K.im2col(x, k, k, stride, pad).shape)
    lhs = (K.im2col(x, k, k, stride, pad) * cols).sum()
    rhs = (x * K.col2im(cols, xs, k, k, stride, pad)).sum()
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


@given(conv_cases(), seeds, st.booleans())
def test_conv2d_forward_matches_loops_and_gradcheck(case, seed, with_bias):
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    x, w = T(r.standard_normal(xs)), T(r.standard_normal(ws) * 0.3)
    b = T(r.standard_normal(ws[0])) if with_bias else None
    y = F.conv2d(x, w, b, stride, pad)
    np.testing.assert_allclose(y.data, conv_loop(x.data, w.data, None if b is None else b.data, stride, pad),
                               rtol=1e-10, atol=1e-10)
    proj = r.standard_normal(y.shape)
    ins = [x, w] + ([b] if with_bias else [])
    err = check_grads(lambda *a: (F.conv2d(a[0], a[1], a[2] if with_bias else None, stride, pad) * proj).sum(),
                      ins, max_entries=40, rng=seed)
    assert err < TOL


def test_conv2d_float32_close_to_float64(rng):
    x = rng.standard_normal((2, 9, 8, 20)).astype(np.float32)
    w = rng.standard_normal((7, 3, 3, 20)).astype(np.float32)
    y = F.conv2d(Tensor(x), Tensor(w), None, 1, 1).data
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, conv_loop(x.astype(np.float64), w.astype(np.float64), None, 1, 1),
                               rtol=1e-4, atol=1e-4)


# ---- binary ops --------------------------------------------------------------------------------

def test_sign_of_zero_is_plus_one():
    x = np.array([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0], np.float32)
    np.testing.assert_array_equal(F.sign(x), [-1, 1, 1, 1, -1, 1])
    assert F.sign(x).dtype == np.float32


def test_sign_ste_forward_and_pseudo_gradient():
    x = T([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    y = F.sign_ste(x)
    np.testing.assert_array_equal(y.data, [-1, -1, -1, 1, 1, 1, 1])
    y.backward(np.arange(1.0, 8.0))
    # dL/dx = dL/dy * 1{|x| <= 1}: the ends (|x| > 1) get nothing, the boundary |x| = 1 passes
    np.testing.assert_array_equal(x.grad, [0, 2, 3, 4, 5, 6, 0])


def test_binarize_weights_is_sign_times_mean_abs_per_output_channel(rng):
    w = array_with_zeros(rng, (3, 3, 3, 5))
    wt = T(w)
    wb = F.binarize_weights(wt)
    for o in range(3):
        alpha = np.abs(w[o]).mean()
        np.testing.assert_allclose(wb.data[o], np.where(w[o] >= 0, alpha, -alpha))
    g = rng.standard_normal(w.shape)
    wb.backward(g)
    np.testing.assert_array_equal(wt.grad, g)  # straight-through


@given(conv_cases(kernels=(1, 3), max_c=70), seeds)
def test_binary_conv2d_is_exact_integer_conv_times_alpha(case, seed):
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    xsgn = F.sign(array_with_zeros(r, xs, np.float32))
    w = array_with_zeros(r, ws, np.float32)
    y = F.binary_conv2d(Tensor(xsgn), Tensor(w), stride, pad).data
    ints = conv_loop(xsgn.astype(np.float64), F.sign(w).astype(np.float64), None, stride, pad)
    assert np.array_equal(ints, np.round(ints))
    alpha = F.weight_alpha(w)
    np.testing.assert_array_equal(y, ints.astype(np.float32) * alpha)


@given(case=conv_cases(kernels=(1, 3, 7), max_c=140), seed=seeds)
def test_binary_conv2d_signed_forward_on_the_xnor_kernel_is_bit_identical(case, seed):
    # signed=True runs the forward on packed bits (here at any size: no cut-offs): the same
    # float32 numbers as the float GEMM, including zero padding, strides and channel tails past 64
    from tinybin.kernels import xnor
    if not xnor.HAVE_FAST_KERNEL:
        pytest.skip("no fast XNOR kernel on this code target: signed=True takes the float path")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "PACKED_MIN_K", 0)
        mp.setattr(F, "PACKED_MIN_WORK", 0)
        _signed_equals_float(case, seed)


def _signed_equals_float(case, seed, signed=True, alpha=True):
    """binary_conv2d(signed, alpha) against the float graph: binary_conv2d(x, w) (alpha) or
    conv2d(x, sign_weights(w)) (no alpha), forward and gradients bit for bit."""
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    xsgn = F.sign(array_with_zeros(r, xs, np.float32))
    w = array_with_zeros(r, ws, np.float32)
    x1, w1 = Tensor(xsgn, requires_grad=True), Tensor(w, requires_grad=True)
    x2, w2 = Tensor(xsgn.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
    y1 = F.binary_conv2d(x1, w1, stride, pad, signed=signed, alpha=alpha)
    y2 = F.binary_conv2d(x2, w2, stride, pad) if alpha else F.conv2d(x2, F.sign_weights(w2), None, stride, pad)
    assert y1.data.dtype == np.float32 and np.array_equal(y1.data, y2.data)
    if not alpha:
        assert np.array_equal(y1.data, np.round(y1.data))                   # integer sums
    g = r.standard_normal(y1.shape).astype(np.float32)
    y1.backward(g)
    y2.backward(g)
    assert np.array_equal(x1.grad, x2.grad) and np.array_equal(w1.grad, w2.grad)


@given(case=conv_cases(kernels=(1, 3), max_c=140), seed=seeds, signed=st.booleans())
def test_binary_conv2d_without_alpha_is_conv_of_sign_weights_bit_for_bit(case, seed, signed):
    # alpha=False (XNOR-Net++'s conv before its learned scale), on packed bits when signed: the
    # same numbers and gradients as the float graph conv2d(x, sign_weights(w)), bit for bit
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "PACKED_MIN_K", 0)
        mp.setattr(F, "PACKED_MIN_WORK", 0)
        _signed_equals_float(case, seed, signed=signed, alpha=False)


def test_binary_conv2d_signed_path_runs_only_when_asked_possible_and_large(monkeypatch):
    from tinybin.kernels import xnor
    calls, packed = [], F._packed_sign_conv
    monkeypatch.setattr(F, "_packed_sign_conv", lambda *a: calls.append(a[0].shape) or packed(*a))
    fast = xnor.HAVE_FAST_KERNEL
    small = Tensor(np.ones((1, 4, 4, 3), np.float32)), Tensor(np.ones((2, 3, 3, 3), np.float32))
    big = Tensor(np.ones((16, 16, 16, 64), np.float32)), Tensor(np.ones((64, 3, 3, 64), np.float32))
    F.binary_conv2d(*small, 1, 1, signed=True)    # 27 x 2 x 16 multiply-adds: the float GEMM
    F.binary_conv2d(*big, 1, 1)                   # large, but not promised to be ±1
    assert calls == []
    F.binary_conv2d(*big, 1, 1, signed=True)      # K = 576, 151M multiply-adds: packed
    assert calls == ([(16, 16, 16, 64)] if fast else [])
    monkeypatch.setattr(F, "PACKED_MIN_K", 0)
    monkeypatch.setattr(F, "PACKED_MIN_WORK", 0)
    F.binary_conv2d(*small, 1, 1, signed=True)    # no cut-offs: packed
    F.binary_conv2d(Tensor(np.ones((1, 4, 4, 3))), Tensor(np.ones((2, 3, 3, 3))), 1, 1, signed=True)  # float64
    assert calls == ([(16, 16, 16, 64), (1, 4, 4, 3)] if fast else [])
    monkeypatch.setattr(F, "PACKED_FORWARD", False)                               # switched off
    F.binary_conv2d(*big, 1, 1, signed=True)
    assert len(calls) == (2 if fast else 0)


@given(conv_cases(kernels=(1, 3), max_c=40), seeds)
def test_binary_conv2d_gradients_equal_conv_of_binarized_weights(case, seed):
    # the fused op must back-propagate exactly like conv2d(x, binarize_weights(w))
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    x1, w1 = T(r.standard_normal(xs)), T(r.standard_normal(ws))
    x2, w2 = T(x1.data.copy()), T(w1.data.copy())
    g = r.standard_normal(F.conv2d(x1, w1, None, stride, pad).shape)
    F.binary_conv2d(x1, w1, stride, pad).backward(g)
    F.conv2d(x2, F.binarize_weights(w2), None, stride, pad).backward(g)
    np.testing.assert_allclose(x1.grad, x2.grad, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(w1.grad, w2.grad, rtol=1e-10, atol=1e-10)


# ---- batch norm --------------------------------------------------------------------------------

@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 130), seeds)
def test_batch_norm_train_gradcheck_and_statistics(n, h, w, c, seed):
    if n * h * w < 3:  # with 1 or 2 samples per channel the normalised output is constant
        n = 3
    r = np.random.default_rng(seed)
    x = T(r.standard_normal((n, h, w, c)) * 3 + 1)
    g, b = T(r.standard_normal(c)), T(r.standard_normal(c))
    rm, rv = np.zeros(c), np.ones(c)
    y = F.batch_norm(x, g, b, rm, rv, training=True, momentum=0.1)
    xhat = (y.data - b.data) / g.data
    np.testing.assert_allclose(xhat.reshape(-1, c).mean(0), 0, atol=1e-9)
    m = n * h * w
    np.testing.assert_allclose(rm, 0.1 * x.data.reshape(-1, c).mean(0), rtol=1e-9)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.data.reshape(-1, c).var(0, ddof=1 if m > 1 else 0),
                               rtol=1e-9)
    proj = r.standard_normal(x.shape)
    err = check_grads(lambda x, g, b: (F.batch_norm(x, g, b, None, None, True) * proj).sum(),
                      [x, g, b], max_entries=30, rng=seed)
    assert err < TOL


def test_batch_norm_eval_uses_running_stats_and_gradcheck(rng):
    c = 5
    x = T(rng.standard_normal((2, 3, 4, c)))
    g, b = T(rng.standard_normal(c)), T(rng.standard_normal(c))
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    y = F.batch_norm(x, g, b, rm, rv, training=False, eps=1e-5)
    np.testing.assert_allclose(y.data, (x.data - rm) / np.sqrt(rv + 1e-5) * g.data + b.data, rtol=1e-12)
    proj = rng.standard_normal(x.shape)
    assert check_grads(lambda x, g, b: (F.batch_norm(x, g, b, rm, rv, False) * proj).sum(), [x, g, b]) < TOL


# ---- pooling, upsampling, concat, activations --------------------------------------------------

@st.composite
def pool_cases(draw):
    k = draw(st.sampled_from([2, 3]))
    s = draw(st.sampled_from([1, 2, 3]))
    return (draw(st.integers(1, 3)), draw(st.integers(k, 9)), draw(st.integers(k, 9)),
            draw(st.integers(1, 70)), k, s)


@given(pool_cases(), seeds)
def test_pool_kernels_equal_references_and_gradcheck(case, seed):
    n, h, w, c, k, s = case
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, h, w, c))  # continuous values: no ties, finite differences are valid
    out, idx = P.maxpool(x, k, s)
    ref, ridx = P.maxpool_ref(x, k, s)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_allclose(P.avgpool(x, k, s), P.avgpool_ref(x, k, s), rtol=1e-12)
    xt = T(x)
    proj = r.standard_normal(out.shape)
    assert check_grads(lambda x: (F.max_pool2d(x, k, s) * proj).sum(), [xt], max_entries=40, rng=seed) < TOL
    assert check_grads(lambda x: (F.avg_pool2d(x, k, s) * proj).sum(), [xt], max_entries=40, rng=seed) < TOL


def test_pool_odd_sizes_drop_the_last_row_and_column():
    x = np.arange(5 * 5, dtype=np.float32).reshape(1, 5, 5, 1)
    y = F.max_pool2d(Tensor(x)).data[0, :, :, 0]
    np.testing.assert_array_equal(y, [[6, 8], [16, 18]])
    y = F.avg_pool2d(Tensor(x)).data[0, :, :, 0]
    np.testing.assert_array_equal(y, [[3, 5], [13, 15]])


def test_bilinear_upsample_matches_align_corners_false_by_hand():
    # 1-D check by hand: input [0, 4] -> sample points -0.25, 0.25, 0.75, 1.25 (clamped)
    x = np.array([0.0, 4.0], np.float32).reshape(1, 1, 2, 1).repeat(2, axis=1)
    y = F.upsample(Tensor(x), 2, "bilinear").data[0, 0, :, 0]
    np.testing.assert_allclose(y, [0.0, 1.0, 3.0, 4.0])


@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 70), seeds,
       st.sampled_from(["nearest", "bilinear"]))
def test_upsample_kernel_and_gradcheck(n, h, w, c, seed, mode):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, h, w, c))
    if mode == "bilinear":
        np.testing.assert_allclose(P.upsample_bilinear(x), P.upsample_bilinear_ref(x), rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(P.upsample_nearest(x)[:, ::2, ::2], x)
    proj = r.standard_normal((n, 2 * h, 2 * w, c))
    assert check_grads(lambda x: (F.upsample(x, 2, mode) * proj).sum(), [T(x)], max_entries=40, rng=seed) < TOL


def test_concat_relu_sigmoid_log_softmax_gradcheck(rng):
    a, b = T(rng.standard_normal((2, 3, 3, 4))), T(rng.standard_normal((2, 3, 3, 2)))
    proj = rng.standard_normal((2, 3, 3, 6))
    assert check_grads(lambda a, b: (F.concat([a, b]) * proj).sum(), [a, b]) < TOL
    assert check_grads(lambda a: (F.relu(a) * a).sum(), [a]) < TOL
    assert check_grads(lambda a: (F.sigmoid(a) * a).sum(), [a]) < TOL
    assert check_grads(lambda a: (F.log_softmax(a) * proj[..., :4]).sum(), [a]) < TOL
    ls = F.log_softmax(a).data
    np.testing.assert_allclose(np.exp(ls).sum(-1), 1.0)
    assert np.isfinite(F.sigmoid(T([-1e4, 1e4])).data).all()


def test_elementwise_ops_broadcast_gradients(rng):
    a, b = T(rng.standard_normal((2, 3, 4))), T(rng.standard_normal((4,)))
    assert check_grads(lambda a, b: ((a + b) * (a - b) * b).mean(), [a, b]) < TOL
    assert check_grads(lambda a: (a.reshape(6, 4) * 2.0).sum(axis=0).sum(), [a]) < TOL


# ---- input errors ------------------------------------------------------------------------------

def test_bad_inputs_raise_value_errors_that_name_the_problem():
    x = Tensor(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="rank-4"):
        F.conv2d(Tensor(np.zeros((5, 5, 3), np.float32)), Tensor(np.zeros((2, 3, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="3 channels.*Cin=4"):
        F.conv2d(x, Tensor(np.zeros((2, 3, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="dtype"):
        F.conv2d(np.zeros((1, 5, 5, 3), np.int32), Tensor(np.zeros((2, 3, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="NaN"):
        F.check_input(np.array([np.nan], np.float32), "x", finite=True)
    with pytest.raises(ValueError, match="channels"):
        F.batch_norm(x, Tensor(np.ones(4, np.float32)), Tensor(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        F.conv2d(Tensor(np.zeros((1, 2, 2, 3), np.float32)), Tensor(np.zeros((2, 3, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="mode"):
        F.upsample(x, 2, "cubic")
    with pytest.raises(ValueError, match="incompatible"):
        F.concat([x, Tensor(np.zeros((1, 4, 5, 3), np.float32))])


def test_no_grad_records_no_graph(rng):
    x = Tensor(rng.standard_normal((1, 4, 4, 2)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 3, 3, 2)).astype(np.float32), requires_grad=True)
    with no_grad():
        y = F.conv2d(x, w, None, 1, 1)
    assert y._ctx is None and not y.requires_grad
