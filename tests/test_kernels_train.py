"""The training kernels (conv, batch norm, sign/STE) against their NumPy references, their
gradients against finite differences (float64), and their results at 1 and 2 threads."""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinybin.functional as F
from tinybin import Tensor
from tinybin.gradcheck import check_grads
from tinybin.kernels import batchnorm as BN
from tinybin.kernels import conv as C
from tinybin.kernels import elementwise as EW
from tinybin.kernels import im2col as IM
from tinybin.kernels import pieces

from strategies import array_with_zeros, conv_cases, seeds


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows and pieces of any size, so one small convolution runs many blocks
    whose input rows overlap, in several pieces."""
    monkeypatch.setattr(IM, "BLOCK_ROWS", 7)
    monkeypatch.setattr(pieces, "MIN_WORK", 1)


@pytest.fixture
def threads():
    """Run a function at a given Numba thread count (the pieces' pool follows it)."""
    old = numba.get_num_threads()

    def at(n, fn):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        try:
            return fn()
        finally:
            numba.set_num_threads(old)
    return at


def test_split_covers_the_range_in_order():
    for n in (1, 2, 3, 4, 5, 17):
        parts = pieces.split(n)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a < b for a, b in parts)
        assert all(parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))
    assert pieces.split(0) == [(0, 0)]
    assert len(pieces.split(100, work=pieces.MIN_WORK * 2)) == 2       # small work: fewer pieces
    assert pieces.split(100, work=1) == [(0, 100)]


def test_pieces_run_keeps_order(threads):
    out = threads(2, lambda: pieces.run(lambda p: p * p, list(range(9))))
    assert out == [p * p for p in range(9)]


# ---- convolution -------------------------------------------------------------------------------

@given(conv_cases(), seeds, st.booleans())
def test_conv_kernels_equal_reference(case, seed, blocks):
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    x = array_with_zeros(r, xs)
    w2 = r.standard_normal((ws[0], ws[1] * ws[2] * ws[3]))
    k = ws[1]
    scale, bias = r.standard_normal(ws[0]), r.standard_normal(ws[0])
    old = IM.BLOCK_ROWS, pieces.MIN_WORK
    IM.BLOCK_ROWS, pieces.MIN_WORK = (5, 1) if blocks else old
    try:
        out = C.conv_forward(x, w2, k, k, stride, pad, scale=scale, bias=bias)
        g2 = r.standard_normal(out.shape)
        dx, dw2 = C.conv_backward(x, g2, w2, k, k, stride, pad)
        dx_only, none = C.conv_backward(x, g2, w2, k, k, stride, pad, need_dw=False)
    finally:
        IM.BLOCK_ROWS, pieces.MIN_WORK = old
    np.testing.assert_allclose(out, C.conv_forward_ref(x, w2, k, k, stride, pad, scale, bias),
                               rtol=1e-12, atol=1e-12)
    rdx, rdw2 = C.conv_backward_ref(x, g2, w2, k, k, stride, pad)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw2, rdw2, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dx_only, dx)
    assert none is None


def test_binary_conv_with_blocks_is_exact_integer_conv_times_alpha(rng, small_blocks):
    # ±1 inputs and weights: every block's integer sums are exact, times alpha in one rounding
    x = F.sign(rng.standard_normal((5, 6, 7, 70)).astype(np.float32))
    w = rng.standard_normal((9, 3, 3, 70)).astype(np.float32)
    y = F.binary_conv2d(Tensor(x), Tensor(w), 1, 1).data
    ints = C.conv_forward_ref(x.astype(np.float64), F.sign(w).reshape(9, -1).astype(np.float64), 3, 3, 1, 1)
    np.testing.assert_array_equal(y.reshape(-1, 9), ints.astype(np.float32) * F.weight_alpha(w))


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (7, 2, 3)])
def test_conv2d_gradcheck_across_blocks_and_pieces(rng, small_blocks, k, stride, pad):
    x = Tensor(rng.standard_normal((5, 7, 6, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, k, k, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    proj = rng.standard_normal(F.conv2d(x, w, b, stride, pad).shape)
    assert check_grads(lambda x, w, b: (F.conv2d(x, w, b, stride, pad) * proj).sum(), [x, w, b]) < 1e-5


@pytest.mark.parametrize("n", [16, 3, 1])
@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (1, 1, 0)])
def test_conv_results_do_not_depend_on_the_thread_count(rng, threads, n, k, stride, pad):
    # n < NPIECES splits a batch by output rows (a single image uses every thread), else by images
    x = rng.standard_normal((n, 24, 24, 40)).astype(np.float32)
    w2 = rng.standard_normal((24, k * k * 40)).astype(np.float32)
    oh = IM.out_size(24, k, stride, pad)
    g2 = rng.standard_normal((n * oh * oh, 24)).astype(np.float32)

    def run():
        return (C.conv_forward(x, w2, k, k, stride, pad),) + C.conv_backward(x, g2, w2, k, k, stride, pad)
    one = threads(1, run)
    for a, b in zip(one, threads(2, run)):
        np.testing.assert_array_equal(a, b)
    ref = (C.conv_forward_ref(x, w2, k, k, stride, pad),) + C.conv_backward_ref(x, g2, w2, k, k, stride, pad)
    for a, b in zip(one, ref):
        np.testing.assert_allclose(a, b.reshape(a.shape), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("numba_pieces", [True, False])
def test_a_single_image_conv_runs_in_several_pieces(rng, monkeypatch, numba_pieces):
    seen = []
    run, bounds = pieces.run, C._bounds
    monkeypatch.setattr(pieces, "NUMBA_REGIONS", numba_pieces)
    monkeypatch.setattr(pieces, "run", lambda fn, ps, work=None: (seen.append(list(ps)), run(fn, ps, work))[1])
    monkeypatch.setattr(C, "_bounds", lambda ps: (seen.append(list(ps)), bounds(ps))[1])
    x = rng.standard_normal((1, 64, 64, 32)).astype(np.float32)
    w2 = rng.standard_normal((16, 9 * 32)).astype(np.float32)
    C.conv_forward(x, w2, 3, 3, 1, 1)
    assert len(seen[-1]) == pieces.NPIECES and seen[-1][0][0] == 0 and seen[-1][-1][1] == 64


CONV_CASES = [(16, 16, 16, 32, 16, 3, 1, 1, np.float32), (4, 32, 32, 3, 16, 7, 2, 3, np.float32),
              (2, 9, 7, 5, 6, 3, 1, 1, np.float32), (1, 16, 16, 8, 4, 3, 2, 1, np.float32),
              (3, 8, 8, 16, 16, 1, 1, 0, np.float32), (5, 12, 10, 4, 8, 3, 1, 1, np.float64),
              (7, 6, 6, 3, 5, 3, 1, 0, np.float32), (16, 2, 2, 8, 8, 3, 1, 1, np.float32)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_numba_piece_kernels_equal_the_python_pieces_bit_for_bit(rng, monkeypatch, case):
    """The whole-op Numba kernels run the same pieces, blocks and GEMMs as the Python-piece path."""
    N, H, W, Cin, Cout, k, st, pad, dt = case
    x = rng.standard_normal((N, H, W, Cin)).astype(dt)
    w2 = rng.standard_normal((Cout, k * k * Cin)).astype(dt)
    sc, b = rng.random(Cout).astype(dt), rng.standard_normal(Cout).astype(dt)
    OH, OW = (H + 2 * pad - k) // st + 1, (W + 2 * pad - k) // st + 1
    g2 = rng.standard_normal((N * OH * OW, Cout)).astype(dt)
    out = {}
    for flag in (True, False):
        monkeypatch.setattr(pieces, "NUMBA_REGIONS", flag)
        out[flag] = ([C.conv_forward(x, w2, k, k, st, pad, s_, b_) for s_, b_ in ((None, None), (sc, b))],
                     [C.conv_backward(x, g2, w2, k, k, st, pad, need_dx=d) for d in (True, False)])
    for u, v in zip(out[True][0], out[False][0]):
        np.testing.assert_array_equal(u, v)
    for (dx1, dw1), (dx2, dw2) in zip(out[True][1], out[False][1]):
        np.testing.assert_array_equal(dw1, dw2)
        assert (dx1 is None and dx2 is None) or np.array_equal(dx1, dx2)
    ref = C.conv_forward_ref(x, w2, k, k, st, pad, sc, b)
    np.testing.assert_allclose(out[True][0][1], ref, rtol=1e-4 if dt == np.float32 else 1e-10,
                               atol=1e-4 if dt == np.float32 else 1e-10)


# ---- batch norm ------------------------------------------------------------------------------

@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_batchnorm_stats_equal_reference_even_far_from_zero(rng, offset):
    x = (offset + rng.standard_normal((1000, 13)) * np.linspace(0.1, 3, 13)).astype(np.float32)
    mu, var = BN.stats(x)
    rmu, rvar = BN.stats_ref(x)
    np.testing.assert_allclose(mu, rmu, rtol=1e-12)
    np.testing.assert_allclose(var, rvar, rtol=1e-9)


def test_batchnorm_affine_and_backward_equal_reference(rng):
    x = rng.standard_normal((777, 9))
    g = rng.standard_normal((777, 9))
    gamma, beta = rng.standard_normal(9), rng.standard_normal(9)
    mu, var = BN.stats(x)
    inv_std = 1 / np.sqrt(var + 1e-5)
    for dt in (np.float64, np.float32):
        xd = x.astype(dt)
        np.testing.assert_array_equal(BN.normalize(xd, mu, inv_std, gamma, beta),
                                      BN.normalize_ref(xd, mu, inv_std, gamma, beta))
    for a, b in zip(BN.backward(g, x, mu, inv_std, gamma), BN.backward_ref(g, x, mu, inv_std, gamma)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_batchnorm_of_a_constant_channel_is_exactly_beta(rng):
    # x == mean must give exactly 0 * gamma + beta (= 0 at init), so sign() sees +1 and not noise
    x = rng.standard_normal((6, 5, 5, 4)).astype(np.float32)
    x[..., 1] = 0.3
    beta = np.zeros(4, np.float32)
    y = F.batch_norm(Tensor(x), Tensor(np.full(4, 0.7, np.float32)), Tensor(beta), None, None, True).data
    assert (y[..., 1] == 0).all()


def test_batchnorm_gradcheck_many_rows(rng, monkeypatch):
    monkeypatch.setattr(pieces, "MIN_WORK", 1)               # four pieces of partial sums
    x = Tensor(rng.standard_normal((4, 5, 3, 6)) * 2 + 1, requires_grad=True)
    gam = Tensor(rng.standard_normal(6), requires_grad=True)
    bet = Tensor(rng.standard_normal(6), requires_grad=True)
    proj = rng.standard_normal(x.shape)
    assert check_grads(lambda x, g, b: (F.batch_norm(x, g, b, None, None, True) * proj).sum(),
                       [x, gam, bet]) < 1e-5


def test_batchnorm_results_do_not_depend_on_the_thread_count(rng, threads):
    x = rng.standard_normal((5000, 32)).astype(np.float32)
    g = rng.standard_normal((5000, 32)).astype(np.float32)
    gamma = rng.standard_normal(32).astype(np.float32)

    def run():
        mu, var = BN.stats(x)
        inv_std = 1 / np.sqrt(var + 1e-5)
        return (mu, var, BN.normalize(x, mu, inv_std, gamma, gamma)) + BN.backward(g, x, mu, inv_std, gamma)
    for a, b in zip(threads(1, run), threads(2, run)):
        np.testing.assert_array_equal(a, b)


# ---- sign and STE ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sign_and_ste_equal_reference_bit_for_bit(rng, dtype, threads):
    x = array_with_zeros(rng, (3, 5, 7, 11), dtype)
    x.flat[:6] = [1, -1, 1.0000001, -1.0000001, -0.0, 0.0]        # the STE window's edges, signed zeros
    g = rng.standard_normal(x.shape).astype(dtype)
    for n in (1, 2):
        s = threads(n, lambda: EW.sign(x))
        assert s.dtype == dtype
        np.testing.assert_array_equal(s, EW.sign_ref(x))
        np.testing.assert_array_equal(threads(n, lambda: EW.ste_backward(g, x)), EW.ste_backward_ref(g, x))
    assert EW.sign(np.array([0.0, -0.0]))[1] == 1.0


def test_nested_runs_stay_serial_and_a_forked_child_gets_a_new_pool(threads):
    import multiprocessing as mp
    out = threads(2, lambda: pieces.run(lambda p: sum(pieces.run(lambda q: q, [p, p + 1])), [0, 10, 20, 30]))
    assert out == [1, 21, 41, 61]
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    ctx = mp.get_context("fork")
    want = _conv_in_child()                    # the parent has run the conv kernels' parallel region
    assert pieces._region_ran or not pieces.NUMBA_REGIONS
    with ctx.Pool(1) as pool:                  # the parent's pool threads exist; the child's do not
        res = pool.apply_async(_conv_in_child).get(timeout=60)
    np.testing.assert_array_equal(res, want)


def _conv_in_child():
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    r = np.random.default_rng(3)
    x = r.standard_normal((8, 6, 6, 5)).astype(np.float32)
    w2 = r.standard_normal((4, 45)).astype(np.float32)
    return C.conv_forward(x, w2, 3, 3, 1, 1)


def test_a_training_step_is_identical_at_1_and_2_threads(threads, monkeypatch):
    import tinybin as tb
    monkeypatch.setattr(pieces, "MIN_WORK", 1)              # a small net still runs every op in pieces
    r = np.random.default_rng(0)
    x = r.random((6, 32, 32, 3)).astype(np.float32)
    t = (r.random((6, 8, 8, 4)) > 0.9).astype(np.float32)

    def step():
        net = tb.HourGlass(num_landmarks=4, block="hpm", width=32, depth=2, resolution=32, seed=1)
        opt = tb.optim.RMSprop(net.parameters(), lr=1e-3)
        for _ in range(2):
            opt.zero_grad()
            tb.losses.sigmoid_bce(net(Tensor(x)), t).backward()
            opt.step()
        return [p.data.copy() for p in net.parameters()] + [p.grad for p in net.parameters()]
    for a, b in zip(threads(1, step), threads(2, step)):
        np.testing.assert_array_equal(a, b)


# ---- pooling and nearest upsampling ---------------------------------------------------------------

@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1)])
def test_maxpool_backward_kernel_equals_reference(rng, k, s):
    from tinybin.kernels import pool as PL
    x = rng.standard_normal((3, 9, 8, 5))
    out, idx = PL.maxpool(x, k, s)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(PL.maxpool_backward(g, idx, x.shape), PL.maxpool_backward_ref(g, idx, x.shape),
                               rtol=1e-13, atol=1e-13)
    if k <= s:  # one winner per input pixel at most: no sums, so exactly equal
        np.testing.assert_array_equal(PL.maxpool_backward(g, idx, x.shape), PL.maxpool_backward_ref(g, idx, x.shape))


@pytest.mark.parametrize("f", [2, 3])
def test_upsample_nearest_kernels_equal_reference(rng, f):
    from tinybin.kernels import pool as PL
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(PL.upsample_nearest(x, f), PL.upsample_nearest_ref(x, f))
    g = rng.standard_normal((2, 5 * f, 4 * f, 3))
    np.testing.assert_allclose(PL.upsample_nearest_backward(g, f), PL.upsample_nearest_backward_ref(g, f),
                               rtol=1e-13, atol=1e-13)
    xt = Tensor(rng.standard_normal((2, 3, 3, 2)), requires_grad=True)
    proj = rng.standard_normal((2, 3 * f, 3 * f, 2))
    assert check_grads(lambda x: (F.upsample(x, f, "nearest") * proj).sum(), [xt]) < 1e-5


# ---- adds, ReLU and concatenation in pieces ----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_relu_concat_kernels_equal_numpy_bit_for_bit(rng, dtype, threads, monkeypatch):
    monkeypatch.setattr(pieces, "MIN_WORK", 1)              # several pieces even for small arrays
    a = rng.standard_normal((3, 9, 7, 5)).astype(dtype)
    b = rng.standard_normal((3, 9, 7, 5)).astype(dtype)
    c = rng.standard_normal((3, 9, 7, 2)).astype(dtype)
    a.reshape(-1)[:4] = [0.0, -0.0, np.nan, -np.inf]       # zeros of both signs, NaN, infinity
    g = rng.standard_normal(a.shape).astype(dtype)
    for n in (1, 2):
        np.testing.assert_array_equal(threads(n, lambda: EW.add(a, b)), a + b)
        r = threads(n, lambda: EW.relu(a))
        np.testing.assert_array_equal(r, EW.relu_ref(a))
        assert not np.signbit(r).any()                      # max(-0.0, 0) is +0.0
        np.testing.assert_array_equal(threads(n, lambda: EW.relu_backward(g, a)), EW.relu_backward_ref(g, a))
        np.testing.assert_array_equal(threads(n, lambda: EW.concat_last([a, c, b])),
                                      np.concatenate([a, c, b], axis=-1))
    np.testing.assert_array_equal(EW.relu_ref(a[a == a]), np.maximum(a[a == a], 0))  # the same maxima
    np.testing.assert_array_equal(EW.add(a, b[0, 0, 0]), a + b[0, 0, 0])   # broadcasting: NumPy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_kernels_equal_reference_bit_for_bit(rng, dtype, threads, monkeypatch):
    monkeypatch.setattr(pieces, "MIN_WORK", 1)              # several pieces even for small arrays
    x = rng.standard_normal((3, 9, 7, 5)).astype(dtype)
    x.reshape(-1)[:5] = [0.0, -0.0, np.nan, -np.inf, np.inf]
    a = rng.uniform(-0.5, 1.5, 5).astype(dtype)
    g = (rng.standard_normal(x.shape) * 10.0 ** rng.uniform(-3, 3, x.shape)).astype(dtype)
    g.reshape(-1)[7] = np.inf                               # inf * x * 0 on the positive side: NaN in both
    for n in (1, 2):
        np.testing.assert_array_equal(threads(n, lambda: EW.prelu(x, a)), EW.prelu_ref(x, a))
        dx, da = threads(n, lambda: EW.prelu_backward(g, x, a))
        with np.errstate(invalid="ignore"):
            rdx, rda = EW.prelu_backward_ref(g, x, a)
        np.testing.assert_array_equal(dx, rdx)
        # the slope gradient: row after row from +0 (the order of the kernel), bit for bit ...
        seq = np.zeros(5, dtype)
        with np.errstate(invalid="ignore"):
            for row in (g * x * (x < 0)).reshape(-1, 5):
                seq += row
        np.testing.assert_array_equal(da, seq)
        assert da.dtype == dtype and dx.dtype == dtype
        # ... and NumPy's reduction of the reference to within rounding, whatever order it takes
        fin = np.isfinite(rda)
        np.testing.assert_array_equal(fin, np.isfinite(da))
        np.testing.assert_allclose(da[fin], rda[fin], rtol=1e-5 if dtype == np.float32 else 1e-12)
    xf = x[..., :4][np.isfinite(x[..., :4]).all(-1)]        # finite rows: the gradient check's input
    np.testing.assert_array_equal(EW.prelu(xf, a[:4]), np.maximum(xf, 0) + a[:4] * np.minimum(xf, 0))
    # other inputs (mixed dtypes) go to the reference
    np.testing.assert_array_equal(EW.prelu(x, a.astype(np.float16)), EW.prelu_ref(x, a.astype(np.float16)))


def test_relu_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 5, 5, 3)) + 0.05, requires_grad=True)
    x.data[np.abs(x.data) < 1e-3] = 0.5                     # away from the kink
    proj = rng.standard_normal(x.shape)
    assert check_grads(lambda x: (F.relu(x) * proj).sum(), [x]) < 1e-6


# ---- batch norm fused with sign / ReLU -------------------------------------------------------------

@pytest.mark.parametrize("act", ["sign", "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_bn_act_kernels_equal_reference_bit_for_bit(rng, act, dtype, threads, monkeypatch):
    monkeypatch.setattr(pieces, "MIN_WORK", 1)                     # several pieces of partial sums
    x = (rng.standard_normal((999, 7)) * 2 + 0.5).astype(dtype)
    x[:, 3] = 0.25                                                 # constant channel: h == beta exactly
    x[::5, 4] = 0.0
    g = rng.standard_normal(x.shape).astype(dtype)
    gamma = rng.standard_normal(7).astype(dtype)
    beta = rng.standard_normal(7).astype(dtype)
    beta[3] = 0.0                                                  # h = 0 exactly: sign +1, ReLU 0
    mu, var = BN.stats(x)
    inv_std = 1 / np.sqrt(var + 1e-5)
    h = BN.normalize(x, mu, inv_std, gamma, beta)
    assert (h[:, 3] == 0).all() and (np.abs(h) <= 1).any() and (np.abs(h) > 1).any()
    unfused_y = EW.sign(h) if act == "sign" else EW.relu(h)
    gm = EW.ste_backward(g, h) if act == "sign" else EW.relu_backward(g, h)
    unfused_b = BN.backward(gm, x, mu, inv_std, gamma)
    ref_b = BN.act_backward_ref(g, x, mu, inv_std, gamma, beta, act)
    for n in (1, 2):
        y = threads(n, lambda: BN.normalize_act(x, mu, inv_std, gamma, beta, act))
        np.testing.assert_array_equal(y, BN.normalize_act_ref(x, mu, inv_std, gamma, beta, act))
        np.testing.assert_array_equal(y, unfused_y)
        fused_b = threads(n, lambda: BN.act_backward(g, x, mu, inv_std, gamma, beta, act))
        for a, b, r in zip(fused_b, unfused_b, ref_b):
            np.testing.assert_array_equal(a, b)                    # the unfused kernels, bit for bit
            np.testing.assert_allclose(a, r, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5)
    with pytest.raises(ValueError, match="act must be"):
        BN.normalize_act(x, mu, inv_std, gamma, beta, "tanh")


def test_fused_bn_relu_gradcheck(rng, monkeypatch):
    monkeypatch.setattr(pieces, "MIN_WORK", 1)
    x = Tensor(rng.standard_normal((4, 5, 3, 6)) * 2 + 1, requires_grad=True)
    gam = Tensor(rng.standard_normal(6), requires_grad=True)
    bet = Tensor(rng.standard_normal(6), requires_grad=True)
    proj = rng.standard_normal(x.shape)
    assert check_grads(lambda x, g, b: (F.batch_norm_act(x, g, b, act="relu") * proj).sum(),
                       [x, gam, bet]) < 1e-5


def test_fused_bn_sign_gradient_is_the_ste_through_batchnorm(rng, monkeypatch):
    # sign's forward is flat (finite differences see 0): the fused backward must equal the clipped
    # STE mask followed by the finite-difference-checked BatchNorm backward, here in float64
    monkeypatch.setattr(pieces, "MIN_WORK", 1)
    x0 = rng.standard_normal((4, 5, 3, 6)) * 2 + 1
    gam0, bet0 = rng.standard_normal(6) * 0.8, rng.standard_normal(6) * 0.5
    proj = rng.standard_normal(x0.shape)
    grads = []
    for fused in (True, False):
        x, gam, bet = (Tensor(a.copy(), requires_grad=True) for a in (x0, gam0, bet0))
        y = (F.batch_norm_act(x, gam, bet, act="sign") if fused
             else F.sign_ste(F.batch_norm(x, gam, bet, None, None, True)))
        (y * proj).sum().backward()
        grads.append((y.data, x.grad, gam.grad, bet.grad))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    assert np.abs(grads[0][1]).max() > 0


def _two_steps_and_state(net, x, t, lr):
    """Two RMSprop steps of `net` on (x, t); returns both outputs, then an eval-mode output, the
    last gradients, the weights and the buffers (running statistics), as arrays to compare."""
    import tinybin as tb
    opt = tb.optim.RMSprop(net.parameters(), lr=lr)
    outs = []
    for _ in range(2):
        opt.zero_grad()
        y = net(Tensor(x))
        tb.losses.sigmoid_bce(y, t).backward()
        outs.append(y.data.copy())
        opt.step()
    net.eval()
    outs.append(net(Tensor(x)).data)
    return (outs + [p.grad for p in net.parameters()] + [p.data.copy() for p in net.parameters()]
            + [b.copy() for _, b in net.named_buffers()])


def _assert_all_equal(got, ref):
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("binary", [True, False])
def test_fused_network_equals_unfused_bit_for_bit(binary, threads, monkeypatch):
    import tinybin as tb
    import tinybin.nn as NN
    r = np.random.default_rng(0)
    x = r.random((4, 64, 64, 3)).astype(np.float32)
    t = (r.random((4, 16, 16, 16)) > 0.95).astype(np.float32)

    def step(fused):
        monkeypatch.setattr(NN, "FUSED_BN_ACT", fused)
        net = tb.HourGlass.downscaled(block="hpm", binary=binary, seed=0, resolution=64, depth=3)
        return _two_steps_and_state(net, x, t, 1e-3)
    ref = threads(1, lambda: step(False))
    for n in (1, 2):
        _assert_all_equal(threads(n, lambda: step(True)), ref)


@pytest.mark.parametrize("block", ["hpm", "bottleneck"])
def test_training_on_the_packed_forward_equals_the_float_gemm_bit_for_bit(block, threads, monkeypatch):
    # binary units run their forward conv on the XNOR kernel (F.PACKED_FORWARD): two training
    # steps give the same outputs, gradients, weights and running statistics as the float GEMM
    import tinybin as tb
    r = np.random.default_rng(1)
    x = r.random((3, 32, 32, 3)).astype(np.float32)
    t = (r.random((3, 8, 8, 16)) > 0.9).astype(np.float32)
    monkeypatch.setattr(F, "PACKED_MIN_K", 0)        # every XNOR unit on the packed kernel, however small
    monkeypatch.setattr(F, "PACKED_MIN_WORK", 0)

    def run(packed):
        monkeypatch.setattr(F, "PACKED_FORWARD", packed)
        net = tb.HourGlass.downscaled(block=block, binary=True, seed=0, resolution=32, depth=2, width=32)
        return _two_steps_and_state(net, x, t, 1e-2)
    for n in (1, 2):
        _assert_all_equal(threads(n, lambda: run(True)), threads(n, lambda: run(False)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_kernel_equals_numpy_form_bit_for_bit(dtype, monkeypatch):
    import tinybin.optim as O
    from tinybin.nn import Parameter
    r = np.random.default_rng(5)
    w0 = [r.standard_normal(s).astype(dtype) for s in ((7, 3, 3, 5), (11,), (4, 1, 1, 9))]
    grads = [[(r.standard_normal(w.shape) * 10.0 ** r.integers(-6, 2)).astype(dtype) for w in w0]
             for _ in range(4)]
    runs = []
    for kernel in (True, False):
        monkeypatch.setattr(O, "USE_KERNEL", kernel)
        ps = [Parameter(w.copy()) for w in w0]
        opt = O.RMSprop(ps, lr=2.5e-3)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = g
            opt.step()
        runs.append([p.data for p in ps] + [st["v"] for st in opt.state])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], w0[0])


@pytest.mark.parametrize("act", ["sign", "relu"])
def test_batchnorm_regions_equal_the_pool_path_bit_for_bit(threads, monkeypatch, act):
    """Statistics, fused normalize+activation and its backward: the Numba-region path (all pieces
    in one parallel region) and the pool path give the same numbers."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads")
    monkeypatch.setattr(pieces, "PARALLEL_WORK", 0)
    monkeypatch.setattr(pieces, "MIN_WORK", 1)
    r = np.random.default_rng(7)
    x2 = (r.standard_normal((999, 24)) * 2 + 0.5).astype(np.float32)
    g2 = r.standard_normal((999, 24)).astype(np.float32)
    gamma, beta = r.standard_normal(24).astype(np.float32), r.standard_normal(24).astype(np.float32)
    seen = []
    region = BN._region
    monkeypatch.setattr(BN, "_region", lambda work, b: (seen.append(region(work, b)), seen[-1])[1])
    out = {}
    for flag in (True, False):
        monkeypatch.setattr(pieces, "NUMBA_REGIONS", flag)

        def go():
            mean, var = BN.stats(x2)
            inv_std = 1.0 / np.sqrt(var + 1e-5)
            y = BN.normalize_act(x2, mean, inv_std, gamma, beta, act)
            return (mean, var, y) + BN.act_backward(g2, x2, mean, inv_std, gamma, beta, act)
        out[flag] = threads(2, go)
    assert any(seen) and not all(seen)  # both paths ran
    for a, b in zip(out[True], out[False]):
        np.testing.assert_array_equal(a, b)


def _vector_types(fn, *args) -> set:
    """The LLVM vector types (e.g. '<8 x float>') in a fresh, uncached compilation of `fn`'s Python
    source for the types of `args`."""
    import re
    f = numba.njit(fn.py_func)
    f(*args)
    return set(re.findall(r"<\d+ x (?:float|double)>", "".join(f.inspect_llvm().values())))


def test_batchnorm_activation_backward_loops_vectorize():
    """The fused BN -> activation backward loops must compile to vector code: with the gradient
    loaded under the mask's branch they ran scalar, 20-40x slower, about a third of a training
    step. A structural check (LLVM IR), not a timing: it holds on any x86-64 or ARM target."""
    M, Cn = 64, 32
    x = np.ones((M, Cn), np.float32)
    v32, v64 = np.ones(Cn, np.float32), np.ones(Cn)
    one, zero = np.float32(1), np.float32(0)
    for relu in (False, True):
        assert _vector_types(BN._act_dx_rows, x, x, 0, M, v32, v32, v32, v32, relu, one, zero,
                             v32, v32, v32, np.empty_like(x))
        assert _vector_types(BN._act_grad_stats_rows, x, x, 0, M, v32, v32, v32, v32, relu, one, zero,
                             v64, v64, np.zeros((2, Cn)))
    assert _vector_types(BN._normalize_sign_rows, x, 0, M, v32, v32, v32, v32, one, -one, np.empty_like(x))
    assert _vector_types(BN._stats_rows, x, 0, M, v64, np.zeros((2, Cn)))
