"""Tests for tinybin.kernels.bitpack: sign, sign packing, the BatchNorm-folded packer, references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import config
from numpy.testing import assert_array_equal

from tinybin.kernels import bitpack as bp

# Fewer examples when every kernel runs as Python (NUMBA_DISABLE_JIT=1).
N_EX = 25 if config.DISABLE_JIT else 150


def _signs(x):
    return np.where(x >= 0, np.float32(1), np.float32(-1))


def test_sign_is_the_packages_one_sign():
    import tinybin.functional as F

    assert F.sign is bp.sign
    x = np.array([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0], dtype=np.float32)
    y = bp.sign(x)
    assert y.dtype == np.float32
    assert_array_equal(y, [-1, -1, 1, 1, 1, 1])  # sign(0) = sign(-0.0) = +1, never 0
    assert_array_equal(bp.unpack_signs(bp.pack_signs(x), 6), y)


def _with_zeros(rng, x, frac=0.25):
    """Put exact +0.0 and -0.0 into x (the sign(0) = +1 cases)."""
    m = rng.random(x.shape) < frac
    x[m] = 0.0
    x[m & (rng.random(x.shape) < 0.5)] = -0.0
    return x


@st.composite
def float_arrays(draw, max_c=300, dtypes=(np.float32, np.float64, np.float16)):
    lead = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    C = draw(st.integers(1, max_c))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _with_zeros(rng, rng.standard_normal(lead + (C,)) * 3).astype(dtype)
    return x


# --------------------------------------------------------------------------------------------
# pack_signs / unpack_signs
# --------------------------------------------------------------------------------------------


def test_hand_computed_word():
    # channel c -> bit c of word 0; x >= 0 (including 0 and -0.0) -> 1
    x = np.array([1.0, -1.0, 0.0, -0.0, -2.0, 3.0], dtype=np.float32)
    expected = 0b101101
    assert_array_equal(bp.pack_signs(x), np.array([expected], dtype=np.uint64))
    assert_array_equal(bp.pack_signs_ref(x), np.array([expected], dtype=np.uint64))


@pytest.mark.parametrize("c", [0, 1, 62, 63, 64, 65, 127, 128, 200, 299])
def test_bit_position_little_endian(c):
    C = 300
    x = -np.ones((2, C), dtype=np.float32)
    x[1, c] = 0.5
    bits = bp.pack_signs(x)
    assert bits.shape == (2, 5) and bits.dtype == np.uint64
    expected = np.zeros(5, dtype=np.uint64)
    expected[c >> 6] = np.uint64(1) << np.uint64(c & 63)
    assert_array_equal(bits[1], expected)
    assert_array_equal(bits[0], np.zeros(5, dtype=np.uint64))


@settings(max_examples=N_EX, deadline=None)
@given(float_arrays())
def test_pack_signs_matches_reference_and_roundtrips(x):
    bits = bp.pack_signs(x)
    C = x.shape[-1]
    assert bits.dtype == np.uint64 and bits.shape == x.shape[:-1] + (bp.n_words(C),)
    assert_array_equal(bits, bp.pack_signs_ref(x))
    assert_array_equal(bp.unpack_signs(bits, C), _signs(x))
    # tail invariant: bits beyond channel C are 0
    if C % 64 and bits.size:
        assert not np.any(bits[..., -1] & ~bp.tail_mask(C))


@settings(max_examples=N_EX, deadline=None)
@given(float_arrays(max_c=140, dtypes=(np.float32, np.float64)))
def test_kernel_matches_reference_directly(x):
    # The Numba kernel itself (also runs as Python under NUMBA_DISABLE_JIT).
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty((x2.shape[0], bp.n_words(x.shape[-1])), dtype=np.uint64)
    assert bp._pack_signs_kernel(x2, out)
    assert_array_equal(out, bp.pack_signs_ref(x2))


def test_all_ones_tail_is_masked():
    for C in (1, 63, 64, 65, 130):
        bits = bp.pack_signs(np.ones((3, C), dtype=np.float32))
        full = np.full(bits.shape, 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
        full[:, -1] = bp.tail_mask(C)
        assert_array_equal(bits, full)
        assert int(bits[0, -1]).bit_count() == (C % 64 or 64)


def test_non_contiguous_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 5, 3)).astype(np.float32).transpose(2, 1, 0)  # (3, 5, 70) view
    assert_array_equal(bp.pack_signs(x), bp.pack_signs_ref(np.ascontiguousarray(x)))


def test_unpack_ignores_tail_bits_and_checks_words():
    bits = np.array([[0xFFFFFFFFFFFFFFFF]], dtype=np.uint64)
    assert_array_equal(bp.unpack_signs(bits, 3), np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="expected ceil"):
        bp.unpack_signs(bits, 65)
    with pytest.raises(ValueError, match="uint64"):
        bp.unpack_signs(bits.astype(np.int64), 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("pos", [0, 63, 64, 99])  # inside a full word and inside the tail word
def test_rejects_non_finite(bad, pos):
    x = np.ones((2, 100), dtype=np.float32)
    x[1, pos] = bad
    with pytest.raises(ValueError, match="finite"):
        bp.pack_signs(x)
    with pytest.raises(ValueError, match="finite"):
        bp.pack_signs_ref(x)
    with pytest.raises(ValueError, match="finite"):
        bp.pack_affine_signs(x, np.ones(100), np.zeros(100))


@pytest.mark.parametrize(
    "x, match",
    [
        (np.array(1.0, dtype=np.float32), "0-d"),
        (np.ones(5, dtype=np.int32), "float"),
        (np.ones(5, dtype=bool), "float"),
        (np.ones(5, dtype=np.complex64), "float"),
    ],
)
def test_rejects_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        bp.pack_signs(x)
    with pytest.raises(ValueError, match=match):
        bp.pack_signs_ref(x)


def test_empty_leading_axes():
    x = np.zeros((0, 3, 70), dtype=np.float32)
    assert bp.pack_signs(x).shape == (0, 3, 2)


# --------------------------------------------------------------------------------------------
# BatchNorm + sign packers
# --------------------------------------------------------------------------------------------


@st.composite
def affine_cases(draw):
    lead = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    C = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _with_zeros(rng, rng.standard_normal(lead + (C,)).astype(np.float32))
    s = rng.standard_normal(C).astype(np.float32)
    s[rng.random(C) < 0.1] = 0.0  # constant channels
    b = rng.standard_normal(C).astype(np.float32)
    b[rng.random(C) < 0.1] = 0.0
    # Land some values exactly on x * s + b == 0 (float32): b = -(x0 * s) for a chosen x0.
    hit = rng.random(C) < 0.3
    x0 = x.reshape(-1, C)[0]
    b = np.where(hit, -(x0 * s), b).astype(np.float32)
    return x, s, b


@settings(max_examples=N_EX, deadline=None)
@given(affine_cases())
def test_pack_affine_matches_numpy_float32(case):
    x, s, b = case
    expected = bp.pack_signs_ref(x * s + b)  # what the float network computes, then sign
    assert_array_equal(bp.pack_affine_signs_ref(x, s, b), expected)
    assert_array_equal(bp.pack_affine_signs(x, s, b), expected)


def _fma_sensitive_case(C=200, seed=0):
    """x, s, b where fl(fl(x*s) + b) == 0 exactly but the exact x*s + b is negative.

    An FMA would compute the exact product and give a negative result (bit 0); two separate
    float32 roundings give exactly 0 (bit 1).
    """
    rng = np.random.default_rng(seed)
    xs, ss = [], []
    while len(xs) < C:
        x = np.float32(rng.uniform(1, 2))
        s = np.float32(rng.uniform(1, 2))
        if float(x) * float(s) < float(x * s):  # product rounded up
            xs.append(x)
            ss.append(s)
    x = np.array(xs, dtype=np.float32)
    s = np.array(ss, dtype=np.float32)
    b = -(x * s)
    return x[None, :], s, b


def test_pack_affine_is_not_fused():
    x, s, b = _fma_sensitive_case()
    assert np.all(x * s + b == 0)  # NumPy float32: exactly zero -> sign +1
    assert np.all(x.astype(np.float64) * s + b < 0)  # an FMA would see a negative number
    bits = bp.pack_affine_signs(x, s, b)
    assert_array_equal(bits, bp.pack_signs_ref(np.ones_like(x)))
    assert_array_equal(bits, bp.pack_affine_signs_ref(x, s, b))


def test_affine_bad_args():
    x = np.ones((2, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        bp.pack_affine_signs(x, np.ones(4), np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        bp.pack_affine_signs(x, np.full(5, np.nan), np.zeros(5))
    with pytest.raises(ValueError, match="float"):
        bp.pack_affine_signs(np.ones((2, 5), dtype=np.int64), np.ones(5), np.zeros(5))


def test_affine_kernel_directly():
    # The Numba kernels themselves (they run as Python under NUMBA_DISABLE_JIT).
    rng = np.random.default_rng(2)
    for C in (1, 64, 100, 130):
        x = _with_zeros(rng, rng.standard_normal((3, C)).astype(np.float32))
        s = rng.standard_normal(C).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        out = np.empty((3, bp.n_words(C)), dtype=np.uint64)
        assert bp._pack_affine_kernel(x, s, b, out)
        assert_array_equal(out, bp.pack_affine_signs_ref(x, s, b))
