"""Hypothesis strategies shared by the tests: NHWC shapes with odd, non-square sizes, channel
counts that are not multiples of 64, stride 1/2, padding 0..3, and arrays holding exact zeros."""
import numpy as np
from hypothesis import strategies as st


@st.composite
def conv_cases(draw, kernels=(1, 3, 7), max_c=130, max_hw=9, max_pad=3):
    """(x_shape, w_shape, stride, padding) with a valid output size."""
    k = draw(st.sampled_from(kernels))
    stride = draw(st.sampled_from([1, 2]))
    padding = draw(st.integers(0, max_pad))
    n = draw(st.integers(1, 3))
    cin = draw(st.integers(1, max_c))
    cout = draw(st.integers(1, 6))
    lo = max(1, k - 2 * padding)
    h = draw(st.integers(lo, max(lo, max_hw)))
    w = draw(st.integers(lo, max(lo, max_hw)))
    return (n, h, w, cin), (cout, k, k, cin), stride, padding


def array_with_zeros(rng, shape, dtype=np.float64, zero_frac=0.2):
    """Normal values with a fraction set to exactly 0 (sign(0) must be +1)."""
    a = rng.standard_normal(shape).astype(dtype)
    a[rng.random(shape) < zero_frac] = 0
    return a


seeds = st.integers(0, 2**31 - 1)
