"""Blocks of paper §4 / §7 (Figs. 7, 9, 10): widths and hand-counted weights, the shortcut rule,
forward passes composed by hand from functional ops, error messages, and gradients — finite
differences for real blocks, the straight-through definition for binary ones (`ste_check`)."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import tinybin.functional as F
from tinybin import Tensor, count_parameters, nn
from tinybin.blocks import BLOCKS, HPM, hpm_widths, make_block
from tinybin.gradcheck import check_grads, numerical_grad
from tinybin.kernels import pool as pool_kernels

# ---- STE gradient check (also imported by test_models.py) -------------------------------------
#
# Finite differences of a binary network are meaningless (sign is flat, with jumps), so the gradient
# of a binary block is *defined* by the straight-through estimators (paper §4.1):
#     activations  d sign(x)/dx := 1{|x| <= 1};     weights  d(sign(W) alpha)/dW := I  (alpha constant).
# At a base point (x0, W0) these are the exact derivatives of the smooth first-order surrogates
#     s(x)  = sign(x0) + 1{|x0| <= 1} (x - x0),     Wb(W) = sign(W0) alpha(W0) + (W - W0),
# which equal the binary layers at the base point. `ste_check` takes the analytic (STE) gradients of
# the real binary module, then central differences of the same module with every sign and binary
# conv swapped for its surrogate frozen at the base point. They agree only if every backward of the
# module (BN, concat, add, pooling, upsampling, the STE masks, the XNOR weight gradient) is right.
# ReLUs are frozen the same way, r(x) = relu(x0) + 1{x0 > 0} (x - x0): a binary conv sums integers,
# so with "+ReLU" exact zeros sit on the kink, where finite differences see slope 1/2, backward 0;
# and max-pooling keeps the winners it picked at the base point (binary features tie often).


class _Frozen:
    def __init__(self):
        self.points: list[np.ndarray] = []
        self.recording, self.i = True, 0

    def _point(self, a: np.ndarray) -> np.ndarray:
        if self.recording:
            self.points.append(a.copy())
            return self.points[-1]
        self.i += 1
        return self.points[self.i - 1]

    def sign(self, x: Tensor) -> Tensor:
        x0 = self._point(x.data)
        mask = (np.abs(x0) <= 1).astype(x0.dtype)
        return F.add(Tensor(F.sign(x0)), F.mul(F.sub(x, Tensor(x0)), Tensor(mask)))

    def relu(self, x: Tensor) -> Tensor:
        x0 = self._point(x.data)
        mask = (x0 > 0).astype(x0.dtype)
        return F.add(Tensor(x0 * mask), F.mul(F.sub(x, Tensor(x0)), Tensor(mask)))

    def max_pool(self, x: Tensor, kernel_size: int = 2, stride: int | None = None) -> Tensor:
        x0 = self._point(x.data)
        k = kernel_size
        assert stride in (None, k)
        _, idx = pool_kernels.maxpool(x0, k, k)               # the winners the real op picks
        N, H, W, C = x0.shape
        onehot = np.zeros((N, H * W, C), x0.dtype)
        np.put_along_axis(onehot, idx.reshape(N, -1, C), 1.0, axis=1)
        # the sum over each window of x * onehot = x at the frozen winner (linear in x)
        return F.mul(F.avg_pool2d(F.mul(x, Tensor(onehot.reshape(x0.shape))), k, k), float(k * k))

    def conv(self, x: Tensor, w: Tensor, stride: int = 1, padding: int = 0, signed: bool = False) -> Tensor:
        w0 = self._point(w.data)
        # conv(x, sign(W0)) * alpha0 + conv(x, W - W0): at the base point exactly the binary conv's
        # numbers (integer sums times alpha), so exact zeros in front of a "+ReLU" stay exact
        base = F.mul(F.conv2d(x, Tensor(F.sign(w0)), None, stride, padding), Tensor(F.weight_alpha(w0)))
        return F.add(base, F.conv2d(x, F.sub(w, Tensor(w0)), None, stride, padding))


@contextlib.contextmanager
def _surrogates(frozen: _Frozen):
    """Swap the piecewise ops for their frozen surrogates. The units' fused BN -> activation op
    never calls F.sign_ste / F.relu, so it is switched off meanwhile: the analytic gradients
    (computed before, with the fused op) are checked against differences of the separate ops,
    which the fused op equals bit for bit (tests/test_kernels_train.py)."""
    names = ("sign_ste", "binary_conv2d", "relu", "max_pool2d")  # nn's layers look these up per call
    saved = [getattr(F, n) for n in names]
    fused = nn.FUSED_BN_ACT
    nn.FUSED_BN_ACT = False
    for n, f in zip(names, (frozen.sign, frozen.conv, frozen.relu, frozen.max_pool)):
        setattr(F, n, f)
    try:
        yield
    finally:
        nn.FUSED_BN_ACT = fused
        for n, f in zip(names, saved):
            setattr(F, n, f)


def _worst(f, inputs, h, max_entries, rng) -> float:
    """Largest |analytic - numeric| over the checked entries of each input, relative to the largest
    gradient entry of that input, floored at 1e-3. (Elementwise relative errors fail on gradients
    that are 0 up to rounding, e.g. the bias of a conv followed by a training-mode BN, where the
    differences are noise of ~1e-9; the floor keeps that noise under ~1e-5.)"""
    worst = 0.0
    for t in inputs:
        num, mask = numerical_grad(f, t.data, h, max_entries, rng)
        ana = np.zeros_like(t.data) if t.grad is None else t.grad
        scale = max(np.abs(num[mask]).max(), np.abs(ana[mask]).max(), 1e-3)
        worst = max(worst, float(np.abs(num[mask] - ana[mask]).max() / scale))
    return worst


def fd_check(loss_fn, inputs, h: float = 1e-6, max_entries: int = 12, rng=0) -> float:
    """Backward of scalar `loss_fn()` against central differences (real-valued modules, float64)."""
    for t in inputs:
        t.grad = None
    loss_fn().backward()
    return _worst(lambda: float(loss_fn().data), inputs, h, max_entries, rng)


def ste_check(loss_fn, inputs, h: float = 1e-6, max_entries: int = 12, rng=0) -> float:
    """STE gradients of scalar `loss_fn()` w.r.t. `inputs` (float64 Tensors it reads) against
    central differences of its surrogate frozen at the current point (see above)."""
    for t in inputs:
        t.grad = None
    base = loss_fn()
    base.backward()
    frozen = _Frozen()
    with _surrogates(frozen):
        assert np.isclose(float(loss_fn().data), float(base.data), rtol=1e-12, atol=1e-12)
        frozen.recording = False

        def f() -> float:
            frozen.i = 0
            return float(loss_fn().data)

        return _worst(f, inputs, h, max_entries, rng)


# ---- widths and counts ------------------------------------------------------------------------

def conv_weights(m: nn.Module) -> int:
    return sum(p.data.size for name, p in m.named_parameters() if name.endswith("conv.weight"))


# Hand counts for one 256 -> 256 block of the paper
PAPER_BLOCK_WEIGHTS = {
    "bottleneck": 256 * 128 + 9 * 128 * 128 + 128 * 256,                        # 212,992
    "wide": 256 * 256 + 9 * 256 * 256 + 256 * 256,                              # 720,896
    "multiscale": 256 * 64 + 9 * 64 * 64 + 2 * 9 * 256 * 32 + 9 * 32 * 32 + 128 * 256,   # 242,688
    "multiscale_no1x1": 9 * 256 * 128 + 2 * 9 * 256 * 64 + 9 * 64 * 64,        # 626,688
    "wide_no1x1": 9 * 256 * 80 + 9 * 80 * 256,                                  # 368,640
    "hpm": 9 * (256 * 128 + 128 * 64 + 64 * 64),                                # 405,504
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_paper_block_weight_counts(name):
    b = make_block(name, 256, 256, rng=0)
    assert conv_weights(b) == PAPER_BLOCK_WEIGHTS[name]
    assert b.shortcut_kind == "identity"


def test_hand_counts_spelled_out():
    assert PAPER_BLOCK_WEIGHTS["bottleneck"] == 212_992
    assert PAPER_BLOCK_WEIGHTS["multiscale"] == 242_688
    assert PAPER_BLOCK_WEIGHTS["multiscale_no1x1"] == 626_688
    assert PAPER_BLOCK_WEIGHTS["hpm"] == 405_504
    hpm = make_block("hpm", 256, 256)
    assert count_parameters(hpm) == 405_504 + 2 * (256 + 128 + 64)   # + BN gamma/beta over the inputs
    fig1b = make_block("hpm", 192, 192)                                # Fig. 1b
    assert conv_weights(fig1b) == 9 * (192 * 96 + 96 * 48 + 48 * 48) == 228_096


def test_real_blocks_have_biases_binary_do_not():
    real, binary = make_block("hpm", 64, 64, binary=False), make_block("hpm", 64, 64)
    assert count_parameters(real) - count_parameters(binary) == 32 + 16 + 16
    assert all(isinstance(m.conv, nn.BinaryConv2d) for m in binary.modules() if isinstance(m, nn.PreActConv))
    assert not any(isinstance(m, nn.BinaryConv2d) for m in real.modules())


def test_hpm_depth_and_cardinality_widths():
    assert hpm_widths(256) == [128, 64, 64]
    assert hpm_widths(256, depth=4) == [128, 64, 32, 32]
    assert hpm_widths(256, depth=6) == [128, 64, 32, 16, 8, 8]
    assert hpm_widths(256, cardinality=4) == [32, 16, 16]
    for d in range(2, 8):
        for c in (1, 2, 4):
            assert c * sum(hpm_widths(256, d, c)) == 256
    b = HPM(32, 64, depth=2, cardinality=2, rng=0)
    firsts = [path[0] for path in b.paths]
    assert len(firsts) == 2 and all(p.in_channels == 32 and p.out_channels == 16 for p in firsts)
    assert [p.out_channels for p in b.paths[1]] == [16, 16]


def test_shortcut_rule():
    assert make_block("hpm", 64, 64).shortcut_kind == "identity"
    proj = make_block("hpm", 32, 64)
    assert proj.shortcut_kind == "projection"
    assert isinstance(proj.shortcut.conv, nn.BinaryConv2d) and proj.shortcut.kernel_size == 1
    real = make_block("bottleneck", 32, 64, binary=False)
    assert isinstance(real.shortcut.conv, nn.Conv2d) and not isinstance(real.shortcut.conv, nn.BinaryConv2d)
    none = make_block("hpm", 128, 64, shortcut=False)                 # improved HG: 2F in, F out
    assert none.shortcut_kind == "none" and not hasattr(none, "shortcut")
    assert conv_weights(none) == 9 * (128 * 32 + 32 * 16 + 16 * 16)


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("cin,cout,shortcut", [(16, 16, True), (8, 16, True), (32, 16, False)])
def test_shapes(name, cin, cout, shortcut, rng):
    b = make_block(name, cin, cout, shortcut=shortcut, rng=0)
    y = b(Tensor(rng.standard_normal((2, 6, 4, cin)).astype(np.float32)))
    assert y.shape == (2, 6, 4, cout) and y.dtype == np.float32


# ---- forward = the figure, composed by hand ---------------------------------------------------

def test_hpm_forward_is_concat_plus_identity(rng):
    b = make_block("hpm", 16, 16, rng=1)
    x = Tensor(rng.standard_normal((2, 5, 5, 16)).astype(np.float32))
    p1, p2, p3 = b.paths[0]
    x1 = p1(x)
    x2 = p2(x1)
    x3 = p3(x2)
    want = np.concatenate([x1.data, x2.data, x3.data], axis=-1) + x.data
    np.testing.assert_allclose(b(x).data, want, rtol=1e-6, atol=1e-6)


# The by-hand forwards below compare signs taken in two different float computations (the module's
# and NumPy's), so they are built to leave no pre-sign value near zero: in eval mode, with every
# binary weight +-1/2 (alpha = 1/2 exactly), inputs on the grid of multiples of 1/32, and every BN
# set to mean 1/64, variance 1, gamma 1, beta 0. Each value a BN reads is then a multiple of 1/32
# (the input, integer conv sums times 1/2, max-pooled or bilinearly upsampled with taps 1/4 and
# 3/4), so BN(v) = (v - 1/64) / sqrt(1 + eps) is at least 1/64 away from zero in both, and every
# number after a sign is exact: the outputs must be equal, not close.
GRID = 32


def _exact(block: nn.Module) -> nn.Module:
    block.eval()
    for m in block.modules():
        if isinstance(m, nn.PreActConv):
            m.conv.weight.data[...] = np.where(m.conv.weight.data >= 0, 0.5, -0.5)
            m.bn.running_mean[...] = 0.5 / GRID
            m.bn.running_var[...] = 1.0
            m.bn.weight.data[...] = 1.0
            m.bn.bias.data[...] = 0.0
    return block


def _grid_input(rng, shape) -> np.ndarray:
    return (rng.integers(-2 * GRID, 2 * GRID, shape) / GRID).astype(np.float32)


def _unit(p: nn.PreActConv, x: np.ndarray) -> np.ndarray:
    """P(a->b, k) by hand in eval mode: BN (running stats) -> sign -> conv(sign(W)) * alpha."""
    assert not p.training
    x = x.astype(np.float64)
    h = (x - p.bn.running_mean) / np.sqrt(p.bn.running_var + p.bn.eps) * p.bn.weight.data + p.bn.bias.data
    assert np.abs(h).min() > 0.9 / (2 * GRID)              # the margin the construction promises
    h = np.where(h >= 0, 1.0, -1.0)
    w = p.conv.weight.data.astype(np.float64)
    wb = np.where(w >= 0, 1.0, -1.0) * np.abs(w).mean(axis=(1, 2, 3))[:, None, None, None]
    return F.conv2d_np(h, wb, None, 1, p.kernel_size // 2)


def _up2(a: np.ndarray) -> np.ndarray:
    """Bilinear x2 with half-pixel centres (align_corners=False): taps 3/4 and 1/4, edges clamped."""
    def axis(a, ax):
        n = a.shape[ax]
        idx = np.arange(2 * n)
        src = (idx + 0.5) / 2 - 0.5
        i0 = np.clip(np.floor(src).astype(int), 0, n - 1)
        i1 = np.clip(i0 + 1, 0, n - 1)
        t = np.clip(src - np.floor(src), 0, 1)
        t = np.where(src < 0, 0, t)
        shape = [1] * a.ndim
        shape[ax] = -1
        return np.take(a, i0, ax) * (1 - t).reshape(shape) + np.take(a, i1, ax) * t.reshape(shape)
    return axis(axis(a, 1), 2).astype(a.dtype)


@pytest.mark.parametrize("name", ["multiscale", "multiscale_no1x1"])
def test_multiscale_forward_by_hand(name, rng):
    b = _exact(make_block(name, 16, 16, rng=2))
    x = _grid_input(rng, (2, 8, 6, 16))
    pool = x.reshape(2, 4, 2, 3, 2, 16).max(axis=(2, 4))
    r = b.right
    right = _up2(np.concatenate([_unit(r.a, pool), _unit(r.b2, _unit(r.b1, pool))], axis=-1))
    if name == "multiscale":
        left = _unit(b.left2, _unit(b.left1, x))
        y = _unit(b.project, np.concatenate([left, right], axis=-1))
    else:
        y = np.concatenate([_unit(b.left, x), right], axis=-1)
    np.testing.assert_array_equal(b(Tensor(x)).data, y + x)


def test_bottleneck_forward_by_hand(rng):
    b = _exact(make_block("bottleneck", 8, 16, rng=3))
    x = _grid_input(rng, (2, 3, 3, 8))
    y = _unit(b.conv3, _unit(b.conv2, _unit(b.conv1, x))) + _unit(b.shortcut, x)
    np.testing.assert_array_equal(b(Tensor(x)).data, y)


def test_relu_after_conv_makes_branch_nonnegative(rng):
    for name in ("hpm", "multiscale_no1x1", "wide_no1x1"):
        b = make_block(name, 16, 16, relu_after_conv=True, rng=0)
        x = rng.standard_normal((2, 4, 4, 16)).astype(np.float32)
        assert (b(Tensor(x)).data - x >= -1e-6).all()
        plain = make_block(name, 16, 16, rng=0)
        assert (plain(Tensor(x)).data - x < 0).any()


# ---- errors ----------------------------------------------------------------------------------

def test_make_block_errors():
    with pytest.raises(ValueError, match="allowed.*bottleneck.*hpm"):
        make_block("resnext", 16, 16)
    with pytest.raises(ValueError, match="multiple of 8"):
        make_block("multiscale", 12, 12)
    with pytest.raises(ValueError, match="multiple of 4"):
        make_block("multiscale_no1x1", 10, 10)
    with pytest.raises(ValueError, match="multiple of 32"):
        make_block("hpm", 16, 16, depth=6)               # F/32 of 16 channels
    with pytest.raises(ValueError, match="multiple of 16"):
        make_block("hpm", 24, 24, depth=3, cardinality=4)
    with pytest.raises(ValueError, match="depth"):
        make_block("hpm", 16, 16, depth=1)
    with pytest.raises(ValueError, match="does not take"):
        make_block("wide", 16, 16, depth=3)
    with pytest.raises(ValueError, match="mid_ratio"):
        make_block("bottleneck", 16, 16, mid_ratio=0.01)
    with pytest.raises(ValueError, match="in_channels"):
        make_block("hpm", 0, 16)
    with pytest.raises(ValueError, match="even"):
        make_block("multiscale", 8, 8)(Tensor(np.zeros((1, 5, 4, 8), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, H, W, 8\)"):
        make_block("hpm", 8, 8)(Tensor(np.zeros((1, 4, 4, 6), np.float32)))



def _weights(cin, w, copies):
    return 9 * copies * (cin * w[0] + sum(a * b for a, b in zip(w, w[1:])))


@pytest.mark.parametrize("cin,cout", [(256, 256), (128, 256), (64, 128), (32, 64), (96, 96)])
def test_hpm_constant_params_widths_are_the_closest_size_to_cardinality_one(cin, cout):
    """constant_params: per copy a first layer a and later layers u * [2^(d-3), ..., 1, 1] that
    add up to F/C, with the u whose weight count is closest to C = 1's (checked by brute force)."""
    for d in (2, 3, 4):
        target = _weights(cin, hpm_widths(cout, d, 1), 1)
        for c in (2, 4, 8):
            if cout % (2 ** (d - 1) * c):
                continue
            w = hpm_widths(cout, d, c, constant_params=True, in_channels=cin)
            assert c * sum(w) == cout and len(w) == d and (d == 2 or w[-1] == w[-2])
            u = w[-1]
            assert w[1:] == [u * 2 ** (d - 3 - i) for i in range(d - 2)] + [u]
            errs = []
            for v in range(1, cout // c):
                a = cout // c - v * sum(w[1:]) // u
                if a >= 1:
                    errs.append(abs(_weights(cin, [a] + [v * x // u for x in w[1:]], c) - target))
            assert abs(_weights(cin, w, c) - target) == min(errs)
            blk = HPM(cin, cout, depth=d, cardinality=c, constant_params=True, rng=0)
            convs = [p for n, p in blk.paths.named_parameters() if n.endswith("conv.weight")]
            assert sum(p.data.size for p in convs) == _weights(cin, w, c)
    # the paper's construction (the default) keeps the first layers and shrinks the rest
    assert hpm_widths(128, 3, 8) == [8, 4, 4] and hpm_widths(128, 3, 8, constant_params=True) == [10, 3, 3]
    assert hpm_widths(128, 3, 1, constant_params=True) == hpm_widths(128)
    with pytest.raises(ValueError, match="constant_params"):
        hpm_widths(128, 3, 2, constant_params="yes")


def test_width_rule_agrees_with_construction():
    for name in BLOCKS:
        for cout in (4, 6, 8, 12, 16, 24):
            opts_list = [{}] + ([{"depth": 4}, {"cardinality": 2}] if name == "hpm" else [])
            for opts in opts_list:
                try:
                    make_block(name, 8, cout, **opts)
                    built = True
                except ValueError:
                    built = False
                try:
                    BLOCKS[name].widths(cout, **opts)
                    ok = True
                except ValueError:
                    ok = False
                assert built == ok, (name, cout, opts)


def test_block_options_come_from_the_constructors():
    assert BLOCKS["bottleneck"].options() == ("mid_ratio",)
    assert BLOCKS["wide"].options() == ()
    assert BLOCKS["hpm"].options() == ("depth", "cardinality", "constant_params")
    assert {n for n, c in BLOCKS.items() if c.spatial_multiple > 1} == {"multiscale", "multiscale_no1x1"}
    with pytest.raises(ValueError, match="does not take"):
        make_block("wide", 8, 8, mid_ratio=0.5)


# ---- gradients -------------------------------------------------------------------------------

def _setup(name, cin, cout, binary, shortcut=True, relu_after_conv=False, H=4, seed=0, **opts):
    b = make_block(name, cin, cout, binary=binary, shortcut=shortcut, relu_after_conv=relu_after_conv,
                   rng=seed, **opts).to(np.float64)
    r = np.random.default_rng(seed + 1)
    for _, p in b.named_parameters():              # BN gamma/beta away from 1/0 so they are tested
        if p.data.ndim == 1:
            p.data += 0.3 * r.standard_normal(p.data.shape)
    x = Tensor(r.standard_normal((2, H, H, cin)), requires_grad=True)
    c = r.standard_normal((2, H, H, cout))
    return b, x, lambda: F.sum(F.mul(b(x), Tensor(c)))


GRAD_CASES = [("bottleneck", 8, 8, {}), ("bottleneck", 4, 8, {}), ("wide", 4, 8, {}),
              ("multiscale", 8, 8, {}), ("multiscale", 4, 8, {}), ("multiscale_no1x1", 8, 8, {}),
              ("wide_no1x1", 8, 8, {}), ("hpm", 8, 8, {}), ("hpm", 4, 8, {}),
              ("hpm", 8, 8, {"depth": 4}), ("hpm", 8, 8, {"cardinality": 2})]


@pytest.mark.parametrize("name,cin,cout,opts", GRAD_CASES)
def test_real_block_gradcheck(name, cin, cout, opts):
    b, x, loss = _setup(name, cin, cout, binary=False, **opts)
    params = [p for _, p in b.named_parameters()]
    assert check_grads(lambda *_: loss(), [x], max_entries=12) < 1e-6    # dense: elementwise errors
    err = fd_check(loss, [x] + params)
    assert err < 1e-5, err


@pytest.mark.parametrize("name,cin,cout,opts", GRAD_CASES)
def test_binary_block_ste_gradients(name, cin, cout, opts):
    b, x, loss = _setup(name, cin, cout, binary=True, **opts)
    params = [p for _, p in b.named_parameters()]
    err = ste_check(loss, [x] + params)
    assert err < 1e-5, err


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("name", ["hpm", "bottleneck"])
def test_no_shortcut_and_relu_variants_gradients(name, binary):
    b, x, loss = _setup(name, 16, 8, binary=binary, shortcut=False, relu_after_conv=True)
    params = [p for _, p in b.named_parameters()]
    if binary:
        err = ste_check(loss, [x] + params)
    else:
        err = fd_check(loss, [x] + params)
    assert err < 1e-5, err


def test_ste_check_catches_a_wrong_backward(monkeypatch):
    """The checker is not vacuous: an STE without the |x| <= 1 clip is detected."""
    b, x, loss = _setup("hpm", 8, 8, binary=True)
    with monkeypatch.context() as m:
        m.setattr(nn, "FUSED_BN_ACT", False)  # so that the units' analytic pass runs F.SignSTE
        m.setattr(F.SignSTE, "backward", staticmethod(lambda ctx, g: g))
        assert ste_check(loss, [x]) > 1e-2
