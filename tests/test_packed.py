"""Packed deployment: pack(net)(x) equals net.eval()(x); files round-trip; bad input is rejected."""
import numpy as np
import pytest

import tinybin as tb
from tinybin import Tensor, nn, no_grad
from tinybin.packed import PackedPreActConv, pack, summary

from test_nn import Tiny  # pytest puts tests/ on the import path (no __init__.py there)


def randomize_bn(net, rng):
    """Give every BatchNorm non-trivial statistics and affine parameters (some gamma < 0, some 0)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            m.weight.data = rng.standard_normal(C).astype(np.float32)
            m.weight.data[rng.random(C) < 0.05] = 0.0
            m.bias.data = (rng.standard_normal(C) * 0.3).astype(np.float32)
            m.running_mean[...] = rng.standard_normal(C) * 0.5
            m.running_var[...] = rng.random(C) + 0.5
    return net


def assert_same(a, b):
    if isinstance(a, list):
        for x, y in zip(a, b):
            assert_same(x, y)
        return
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def float_eval(net, x):
    net.eval()
    with no_grad():
        out = net(Tensor(x))
    return [o.data for o in out] if isinstance(out, list) else out.data


@pytest.mark.parametrize("c", [8, 70, 130])
def test_packed_stack_of_units_with_concat_and_residual_equals_float(c, rng):
    net = randomize_bn(Tiny(binary=True, c=c, seed=c), rng)
    x = rng.random((3, 11, 7, 3)).astype(np.float32)
    ref = float_eval(net, x)
    packed = pack(net)
    np.testing.assert_array_equal(packed(x), ref)  # in practice bit for bit
    assert len(packed.units()) == 3
    assert not isinstance(net.u1, PackedPreActConv)  # the original is untouched


BLOCKS = ["bottleneck", "wide", "multiscale", "multiscale_no1x1", "wide_no1x1", "hpm"]


@pytest.mark.parametrize("block,opts", [(b, {}) for b in BLOCKS]
                         + [("hpm", {"depth": 4}), ("hpm", {"cardinality": 2})])
def test_packed_hourglass_equals_float_for_every_block(block, opts, rng):
    net = tb.HourGlass(num_landmarks=5, block=block, binary=True, width=64, depth=2, resolution=32,
                       block_opts=opts or None, seed=1)
    randomize_bn(net, rng)
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    assert_same(pack(net)(x), float_eval(net, x))


@pytest.mark.parametrize("kw", [dict(improved=True), dict(stacks=2), dict(pool="avg"),
                                dict(relu_after_conv=True)])
def test_packed_hourglass_variants_equal_float(kw, rng):
    net = tb.HourGlass(num_landmarks=4, block="hpm", binary=True, width=32, depth=2, resolution=32, seed=2, **kw)
    randomize_bn(net, rng)
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    assert_same(pack(net)(x), float_eval(net, x))


def test_packed_file_round_trip_and_errors(tmp_path, rng):
    net = randomize_bn(tb.HourGlass(num_landmarks=3, block="hpm", width=32, depth=2, resolution=32, seed=3), rng)
    x = rng.random((1, 32, 32, 3)).astype(np.float32)
    p = pack(net)
    path = tmp_path / "net.packed.npz"
    p.save(path)
    q = tb.packed.load(path)
    np.testing.assert_array_equal(q(x), p(x))
    with np.load(path, allow_pickle=False) as z:
        assert any(z[k].dtype == np.uint64 for k in z.files)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.npz"):
        tb.packed.load(tmp_path / "cut.npz")
    tb.save(net, tmp_path / "ckpt.npz")
    with pytest.raises(ValueError, match="expected a 'packed-network'"):
        tb.packed.load(tmp_path / "ckpt.npz")


def test_packed_bad_inputs(rng):
    net = randomize_bn(Tiny(binary=True, c=8), rng)
    p = pack(net)
    with pytest.raises(ValueError, match="float"):
        p(np.zeros((1, 5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN|finite"):
        p(np.full((1, 5, 5, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="no binary units"):
        pack(Tiny(binary=False))
    with pytest.raises(ValueError, match="w_bits"):
        PackedPreActConv(70, 4, 3, 1, 1, np.ones(70), np.zeros(70), np.zeros((4, 3, 3, 1), np.uint64), np.ones(4))


def test_summary_counts_bits_and_macs():
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=64, depth=2, resolution=64)
    rows = summary(net, print_fn=None)
    total = rows[-1]
    assert total["binary_params"] + total["float_params"] == tb.count_parameters(net)
    # a 3x3 binary conv 64->32 at 16x16 output: 16*16*9*64*32 MACs
    assert total["float32_bytes"] / total["packed_bytes"] > 10
    assert all(r["binary_macs"] > 0 for r in rows if r["kind"] == "binary")
