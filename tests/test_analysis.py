"""tinybin.analysis: receptive fields (analytic == measured), noise numbers on hand-computable maps,
feature-map capture."""
import numpy as np
import pytest

import tinybin as tb
from tinybin import analysis as A
from tinybin.blocks import HPM


@pytest.mark.parametrize("depth,card,const", [(2, 1, False), (3, 1, False), (4, 1, False), (3, 2, False),
                                              (2, 4, False), (3, 2, True), (3, 4, True)])
def test_receptive_field_analytic_matches_gradient_support(depth, card, const):
    blk = HPM(8, 32, binary=True, depth=depth, cardinality=card, constant_params=const, rng=0)
    groups = A.receptive_fields(blk)
    assert len(groups) == depth * card
    assert [g["rf"] for g in groups] == [2 * j + 3 for _ in range(card) for j in range(depth)]
    assert groups[-1]["channels"][1] == 32                          # the groups tile the F outputs
    assert A.block_receptive_field(blk) == 2 * depth + 1
    assert A.empirical_receptive_fields(blk) == [g["rf"] for g in groups]


def test_receptive_fields_reject_other_blocks():
    with pytest.raises(TypeError):
        A.receptive_fields(tb.blocks.make_block("bottleneck", 8, 8))


def test_noise_numbers_on_hand_cases():
    H = W = 16
    i, j = np.mgrid[:H, :W].astype(np.float64)
    checker = (-1.0) ** (i + j)
    ramp = j + 0.0
    cos1 = np.cos(2 * np.pi * j / W)                               # one cycle: rho = 2/W Nyquist
    const = np.full((H, W), 3.0)
    assert A.spatial_autocorrelation(checker) == pytest.approx(-1.0, abs=1e-12)
    assert A.spatial_autocorrelation(ramp) == pytest.approx(1.0, abs=1e-12)
    # the cosine: horizontal pairs sum cos(a)cos(a + 2pi/W) = (W/2) cos(2pi/W) per row over W-1 pairs
    # is not exact at the wrap, so check it is close to cos(2 pi / W) and vertical pairs equal 1
    assert 0.9 < A.spatial_autocorrelation(cos1) <= 1.0
    assert np.isnan(A.spatial_autocorrelation(const))
    assert A.high_frequency_fraction(checker) == pytest.approx(1.0, abs=1e-12)
    assert A.high_frequency_fraction(cos1) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(A.high_frequency_fraction(const))
    # a checkerboard plus a low cosine of equal variance: half the energy is high
    assert A.high_frequency_fraction(checker + np.sqrt(2) * cos1) == pytest.approx(0.5, abs=1e-12)
    # channels: constant ones are left out of the mean, counted in `constant`
    stack = np.stack([checker, ramp, const], -1)                   # (H, W, 3)
    s = A.noise_summary(stack)
    assert s["autocorr"] == pytest.approx(0.0, abs=1e-12) and s["constant"] == pytest.approx(1 / 3)
    per = A.spatial_autocorrelation(stack[None], reduce=False)
    assert per.shape == (1, 3)


def test_white_noise_sits_between_and_near_its_expected_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32, 32, 4))
    assert abs(A.spatial_autocorrelation(x)) < 0.05
    assert A.high_frequency_fraction(x) == pytest.approx(1 - np.pi / 16, abs=0.03)


def test_noise_inputs_are_checked():
    with pytest.raises(ValueError):
        A.spatial_autocorrelation(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError):
        A.high_frequency_fraction(np.zeros(5))


def test_capture_and_feature_maps_leave_the_network_untouched():
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=2, resolution=32, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    net.train()
    with tb.no_grad():
        net.eval()
        ref = net(tb.Tensor(x)).data
        net.train()
    got = A.capture(net, ["stem1", "stacks.0.out"], x)
    assert got["stem1"].shape == (2, 16, 16, 8) and got["stacks.0.out"].shape == (2, 8, 8, 16)
    np.testing.assert_array_equal(got["stacks.0.out"], ref)       # the captured output is the logits
    assert net.training and "forward" not in vars(net.stem1)       # mode restored, wrapper removed
    order = A.block_order(net, x)
    assert order[:3] == ["stem1", "stem2", "stem3"] and order[-1] == "stacks.0.post"
    maps = A.feature_maps(net, x)
    assert set(maps) == {"first", "middle", "last"}
    assert maps["last"].shape == (2, 8, 8, 16) and (maps["last"] >= 0).all()   # after BN -> ReLU
    with pytest.raises(ValueError):
        A.capture(net, ["nope"], x)


def test_middle_feature_layer_is_wide_enough_to_measure():
    # the middle of the forward order is the 2 x 2 lowest level of the downscaled hourglass; the
    # "middle" map is the middle of the blocks at least MIN_MAP wide
    net = tb.HourGlass.downscaled(block="bottleneck", seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    order = A.block_order(net, x)
    assert min(A.capture(net, [order[len(order) // 2]], x)[order[len(order) // 2]].shape[1:3]) < A.MIN_MAP
    maps = A.feature_maps(net, x)
    assert min(maps["middle"].shape[1:3]) >= A.MIN_MAP
    name = A.feature_layers(net, x)["middle"][0]
    wide = [n for n in order if min(A.capture(net, [n], x)[n].shape[1:3]) >= A.MIN_MAP]
    assert name == wide[len(wide) // 2]
    tiny = A.feature_layers(net, x, min_size=10 ** 6)["middle"][0]   # none that wide: all blocks
    assert tiny == order[len(order) // 2]


def test_claim_verdict_reads_the_confidence_interval():
    from tinybin.experiments import paired_difference
    up = paired_difference({0: 3.0, 1: 4.0, 2: 5.0}, {0: 1.0, 1: 1.0, 2: 1.0})    # +3, CI [0.5, 5.5]
    flat = paired_difference({0: 3.0, 1: -1.0, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0})  # +1, CI contains 0
    assert up["lo"] > 0 and flat["lo"] < 0 < flat["hi"]
    assert A.claim_verdict(up, +1) == "agrees" and A.claim_verdict(up, -1) == "disagrees"
    assert A.claim_verdict(flat, +1) == "unresolved" and A.claim_verdict(up, 0) == "unresolved"
    assert A.claim_verdict(paired_difference({}, {}), 1) == "not run"
    assert A.claim_verdict(paired_difference({0: 1.0}, {0: 0.0}), 1) == "unresolved (1 pair)"
    with pytest.raises(ValueError):
        A.claim_verdict(up, 2)
