"""Tests for tinybin.kernels.xnor: every rung of the GEMM and conv ladders against the one below."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import config
from numpy.testing import assert_array_equal

from tinybin import threads as tb_threads
from tinybin.kernels import cpu
from tinybin.kernels import xnor as xk
from tinybin.kernels import xnor_loops
from tinybin.kernels.bitpack import pack_signs

JIT = not config.DISABLE_JIT
# Example counts of the fast-kernel property at 1 and 2 threads (2 threads is fewer: on a
# loaded machine every parallel region waits for the second thread to be scheduled).
N_FAST = 800 if JIT else 40  # with N_FAST_2: >= 1,000 fast-kernel examples per run
N_FAST_2 = 250 if JIT else 10
N_LADDER = 100 if JIT else 30
needs_fast = pytest.mark.skipif(
    not xk.HAVE_FAST_KERNEL, reason=f"fast kernel off: {xk._NO_FAST_REASON}"
)


def _with_zeros(rng, x, frac=0.2):
    m = rng.random(x.shape) < frac
    x[m] = 0.0
    x[m & (rng.random(x.shape) < 0.5)] = -0.0
    return x


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw, max_c=300, max_hw=17, max_cout=70, max_n=3):
    """Small conv problems: any channel count (tails), odd/non-square sizes smaller than the
    kernel, stride 1/2, padding 0 or k//2, Cout not a multiple of the register block, zeros."""
    k = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 2]))
    padding = draw(st.sampled_from([0, k // 2]))
    N = draw(st.integers(1, max_n))
    H = draw(st.integers(1, max_hw))
    W = draw(st.integers(1, max_hw))
    C = draw(st.integers(1, max_c))
    Cout = draw(st.integers(1, max_cout))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _with_zeros(rng, rng.standard_normal((N, H, W, C)).astype(np.float32))
    w = _with_zeros(rng, rng.standard_normal((Cout, k, k, C)).astype(np.float32), 0.05)
    return x, w, stride, padding


def _packed(case):
    x, w, s, p = case
    return pack_signs(x), pack_signs(w), x.shape[-1], s, p


# --------------------------------------------------------------------------------------------
# popcount and GEMM ladder
# --------------------------------------------------------------------------------------------


@numba.njit
def _popcount_jit(v):
    return xk.popcount64(v)


def test_popcount64():
    vals = [0, 1, 2**63, 2**64 - 1, 0x5555555555555555, 0x8000000000000001, 123456789]
    for v in vals:
        assert xk.popcount64(np.uint64(v)) == bin(v).count("1")
        assert _popcount_jit(np.uint64(v)) == bin(v).count("1")


@st.composite
def gemm_cases(draw):
    M = draw(st.integers(1, 6))
    N = draw(st.integers(1, 6))
    K = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = _with_zeros(rng, rng.standard_normal((M, K)))
    b = _with_zeros(rng, rng.standard_normal((N, K)))
    return a, b


def test_gemm_hand_computed():
    a = np.array([[1.0, -1.0, 0.0]])  # signs + - +
    b = np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, -0.0], [2.0, -3.0, 0.5]])
    assert_array_equal(xk.xnor_gemm_ref(a, b), [[1, -1, 3]])
    assert_array_equal(xk.xnor_gemm(pack_signs(a), pack_signs(b), 3), [[1, -1, 3]])


@settings(max_examples=N_LADDER, deadline=None)
@given(gemm_cases())
def test_gemm_ladder(case):
    a, b = case
    n = a.shape[1]
    ab, bb = pack_signs(a), pack_signs(b)
    ref = xk.xnor_gemm_ref(a, b)
    r_np = xk.xnor_gemm_np(ab, bb, n)
    assert_array_equal(r_np, ref)
    assert_array_equal(xnor_loops._xnor_gemm(ab, bb, n), r_np)  # plain loops, as Python
    assert_array_equal(xk.xnor_gemm(ab, bb, n), r_np)  # the same loops, compiled


# --------------------------------------------------------------------------------------------
# convolution ladder
# --------------------------------------------------------------------------------------------


def test_conv_ref_hand_computed_zero_padding():
    # All-ones 3x3 image, all-ones 3x3 kernel, padding 1: each output counts the in-image taps
    # (padded taps contribute 0, not +1 or -1).
    x = np.ones((1, 3, 3, 1), dtype=np.float32)
    w = np.ones((1, 3, 3, 1), dtype=np.float32)
    expected = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], dtype=np.int32)[None, :, :, None]
    assert_array_equal(xk.conv2d_ref(x, w, 1, 1), expected)
    xb, wb = pack_signs(x), pack_signs(w)
    assert_array_equal(xk.conv2d_np(xb, wb, 1, 1, 1), expected)
    assert_array_equal(xk.conv2d(xb, wb, 1, 1, 1), expected)
    # Negative image: every in-image tap contributes -1.
    assert_array_equal(xk.conv2d(pack_signs(-x), wb, 1, 1, 1), -expected)
    # Stride 2 picks the corners.
    assert_array_equal(xk.conv2d(xb, wb, 1, 2, 1), expected[:, ::2, ::2])


def test_conv_ref_matches_direct_loops():
    rng = np.random.default_rng(3)
    x = _with_zeros(rng, rng.standard_normal((2, 5, 4, 3)))
    w = rng.standard_normal((2, 3, 3, 3))
    s, p = 2, 1
    ref = xk.conv2d_ref(x, w, s, p)
    sx, sw = np.where(x >= 0, 1, -1), np.where(w >= 0, 1, -1)
    OH, OW = xk.output_size(5, 3, s, p), xk.output_size(4, 3, s, p)
    assert ref.shape == (2, OH, OW, 2) and ref.dtype == np.int32
    for n in range(2):
        for i in range(OH):
            for j in range(OW):
                for o in range(2):
                    acc = 0
                    for kh in range(3):
                        for kw in range(3):
                            iy, ix = i * s - p + kh, j * s - p + kw
                            if 0 <= iy < 5 and 0 <= ix < 4:
                                acc += int(sx[n, iy, ix] @ sw[o, kh, kw])
                    assert ref[n, i, j, o] == acc


@settings(max_examples=N_LADDER, deadline=None)
@given(conv_cases(max_c=140, max_hw=9, max_cout=10, max_n=2))
def test_conv_np_matches_ref(case):
    x, w, s, p = case
    assert_array_equal(xk.conv2d_np(*_packed(case)), xk.conv2d_ref(x, w, s, p))


@settings(max_examples=N_LADDER if JIT else 10, deadline=None)
@given(conv_cases(max_c=140, max_hw=9 if JIT else 5, max_cout=10 if JIT else 4, max_n=2))
def test_conv_loops_matches_np(case):
    xb, wb, C, s, p = _packed(case)
    assert_array_equal(xk.conv2d_loops(xb, wb, C, s, p), xk.conv2d_np(xb, wb, C, s, p))


def _check_fast_at(threads, case):
    x, w, s, p = case
    packed = _packed(case)  # packing outside: only the conv runs at the thread count under test
    old, small = numba.get_num_threads(), tb_threads.SMALL_WORK
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    tb_threads.SMALL_WORK = 0  # no serial shortcut: these small cases must run in parallel
    try:
        got = xk.conv2d(*packed)
    finally:
        numba.set_num_threads(old)
        tb_threads.SMALL_WORK = small
    ref = xk.conv2d_ref(x, w, s, p)
    assert got.dtype == np.int32 and got.shape == ref.shape
    assert_array_equal(got, ref)


@settings(max_examples=N_FAST, deadline=None)
@given(case=conv_cases())
def test_conv2d_matches_ref_1_thread(case):
    """The public (fast) kernel == float conv of the signs, one Numba thread."""
    _check_fast_at(1, case)


@settings(max_examples=N_FAST_2, deadline=None)
@given(case=conv_cases())
def test_conv2d_matches_ref_2_threads(case):
    """The same at two Numba threads (rows of output pixels split between threads)."""
    _check_fast_at(2, case)


@needs_fast
@settings(max_examples=60, deadline=None)
@given(conv_cases(max_c=200, max_hw=12, max_cout=70))
def test_fast_matches_loops_rung(case):
    xb, wb, C, s, p = _packed(case)
    pw = xk.prepare_weights(wb, C)
    N, H, W, _ = xb.shape
    Cout, KH, KW, _ = wb.shape
    out = np.empty((N, xk.output_size(H, KH, s, p), xk.output_size(W, KW, s, p), Cout), np.int32)
    assert_array_equal(xk.conv2d_fast(xb, pw, s, p, None, out), xk.conv2d_loops(xb, wb, C, s, p))


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 1, 2), (2, 2, 0), (3, 1, 2)])
def test_other_kernel_sizes_and_paddings(k, s, p):
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    x = _with_zeros(rng, rng.standard_normal((2, 9, 7, 100)).astype(np.float32))
    w = rng.standard_normal((37, k, k, 100)).astype(np.float32)
    assert_array_equal(xk.conv2d(pack_signs(x), pack_signs(w), 100, s, p), xk.conv2d_ref(x, w, s, p))


def test_layer_sized_shape():
    # A deployment-sized layer (many pixels per row, full register blocks, several K folds).
    rng = np.random.default_rng(7)
    x = _with_zeros(rng, rng.standard_normal((1, 20, 24, 700)).astype(np.float32))
    w = rng.standard_normal((64, 3, 3, 700)).astype(np.float32)
    xb, wb = pack_signs(x), pack_signs(w)
    assert_array_equal(xk.conv2d(xb, wb, 700, 1, 1), xk.conv2d_np(xb, wb, 700, 1, 1))


def test_output_smaller_than_kernel_is_empty():
    x = pack_signs(np.ones((2, 2, 5, 10), dtype=np.float32))
    w = pack_signs(np.ones((3, 3, 3, 10), dtype=np.float32))
    out = xk.conv2d(x, w, 10, 1, 0)
    assert out.shape == (2, 0, 3, 3) and out.dtype == np.int32
    assert xk.conv2d_np(x, w, 10, 1, 0).shape == (2, 0, 3, 3)


# --------------------------------------------------------------------------------------------
# prepared weights, alpha scaling, out=
# --------------------------------------------------------------------------------------------


def test_prepare_weights_layout():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((37, 3, 3, 130)).astype(np.float32)
    wb = pack_signs(w)
    pw = xk.prepare_weights(wb, 130)
    nob = -(-37 // xk.OB)
    assert pw.blocked.shape == (nob, 3, 3 * 3, xk.OB) and pw.cout == 37
    for o in (0, 5, 31, 32, 36):
        b, j = divmod(o, xk.OB)
        assert_array_equal(pw.blocked[b, 2, 3 * 1 : 3 * 2, j], wb[o, 2, 1])
    assert not pw.blocked[nob - 1, :, :, 37 - (nob - 1) * xk.OB:].any()  # padding outputs are 0


@settings(max_examples=100 if JIT else 20, deadline=None)
@given(conv_cases(max_c=150, max_hw=10, max_cout=70), st.booleans())
def test_alpha_scaled_output_and_out_slice(case, into_slice):
    x, w, s, p = case
    xb, wb, C, s, p = _packed(case)
    Cout = w.shape[0]
    alpha = np.abs(w).mean(axis=(1, 2, 3)).astype(np.float32)  # XNOR-Net scale
    dot = xk.conv2d_ref(x, w, s, p)
    expected = dot.astype(np.float32) * alpha  # one float32 rounding, as NumPy does it
    pw = xk.prepare_weights(wb, C)
    if into_slice:
        # Write into a channel slice of a wider buffer (a concat); neighbours stay untouched.
        buf = np.full(dot.shape[:3] + (Cout + 11,), -7.0, dtype=np.float32)
        got = xk.conv2d_prepared(xb, pw, s, p, alpha=alpha, out=buf[..., 5 : 5 + Cout])
        assert np.all(buf[..., :5] == -7.0) and np.all(buf[..., 5 + Cout :] == -7.0)
    else:
        got = xk.conv2d_prepared(xb, pw, s, p, alpha=alpha)
    assert got.dtype == np.float32
    assert_array_equal(got, expected)
    assert_array_equal(xk.conv2d_prepared(xb, pw, s, p), dot)


def test_int_out_slice():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5, 70)).astype(np.float32)
    w = rng.standard_normal((40, 3, 3, 70)).astype(np.float32)
    buf = np.zeros((2, 6, 5, 50), dtype=np.int32)
    xk.conv2d_prepared(pack_signs(x), xk.prepare_weights(pack_signs(w), 70), 1, 1, out=buf[..., 3:43])
    assert_array_equal(buf[..., 3:43], xk.conv2d_ref(x, w, 1, 1))
    assert not buf[..., :3].any() and not buf[..., 43:].any()


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def _good():
    x = pack_signs(np.ones((1, 4, 4, 70), dtype=np.float32))
    w = pack_signs(np.ones((3, 3, 3, 70), dtype=np.float32))
    return x, w


def test_rejects_wrong_dtype():
    x, w = _good()
    with pytest.raises(ValueError, match="uint64"):
        xk.conv2d(x.astype(np.int64), w, 70)
    with pytest.raises(ValueError, match="uint64"):
        xk.conv2d(x, w.view(np.int64), 70)


def test_rejects_word_count_mismatch():
    x, w = _good()
    with pytest.raises(ValueError, match=r"2 words.*ceil\(n_channels/64\) = 1"):
        xk.conv2d(x, w, 64)
    with pytest.raises(ValueError, match=r"ceil\(n_channels/64\) = 3"):
        xk.conv2d(x, w, 130)
    with pytest.raises(ValueError, match="channel words differ"):
        xk.conv2d(x, w[..., :1], 70)
    with pytest.raises(ValueError, match="w_bits has 2 words.*expected"):
        xk.prepare_weights(w, 10)


def test_rejects_bad_rank_and_args():
    x, w = _good()
    with pytest.raises(ValueError, match="4-d"):
        xk.conv2d(x[0], w, 70)
    with pytest.raises(ValueError, match="4-d"):
        xk.conv2d(x, w[0], 70)
    with pytest.raises(ValueError, match="stride"):
        xk.conv2d(x, w, 70, stride=0)
    with pytest.raises(ValueError, match="padding"):
        xk.conv2d(x, w, 70, padding=-1)
    with pytest.raises(ValueError, match="n_channels"):
        xk.conv2d(x, w, 0)
    with pytest.raises(ValueError, match="2 dimensions"):
        xk.xnor_gemm(x, x, 70)


def test_rejects_dirty_tail_bits():
    x, w = _good()
    x = x.copy()
    x[0, 0, 0, 1] |= np.uint64(1) << np.uint64(40)  # channel 104 of 70
    with pytest.raises(ValueError, match="tail bits"):
        xk.conv2d(x, w, 70)


def test_rejects_bad_alpha_and_out():
    x, w = _good()
    pw = xk.prepare_weights(w, 70)
    with pytest.raises(ValueError, match="alpha"):
        xk.conv2d_prepared(x, pw, 1, 1, alpha=np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="out"):
        xk.conv2d_prepared(x, pw, 1, 1, out=np.empty((1, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="out"):
        xk.conv2d_prepared(x, pw, 1, 1, out=np.empty((1, 4, 4, 3), dtype=np.int32)[..., ::-1])
    with pytest.raises(ValueError, match="prepared"):
        xk.conv2d_prepared(x, w, 1, 1)


def test_conv_ref_rejects_bad_input():
    x = np.ones((1, 4, 4, 3), dtype=np.float32)
    w = np.ones((2, 3, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="channels"):
        xk.conv2d_ref(x, w)
    with pytest.raises(ValueError, match="finite"):
        xk.conv2d_ref(x * np.nan, w[..., :3])


def test_non_contiguous_packed_inputs():
    rng = np.random.default_rng(5)
    x = _with_zeros(rng, rng.standard_normal((2, 7, 6, 90)).astype(np.float32))
    w = rng.standard_normal((9, 3, 3, 90)).astype(np.float32)
    xb = pack_signs(x)[:, ::-1, ::2]  # strided views
    wb = pack_signs(w)[::-1]
    ref = xk.conv2d_ref(x[:, ::-1, ::2], w[::-1], 1, 1)
    assert_array_equal(xk.conv2d(xb, wb, 90, 1, 1), ref)


def test_fast_kernel_switch(monkeypatch):
    monkeypatch.setenv("TINYBIN_XNOR_FAST", "0")
    choice = cpu.choose(*cpu.code_target())
    assert not choice.fast and "TINYBIN_XNOR_FAST" in choice.reason


@pytest.mark.parametrize("arch, name, feats, bits", [
    ("x86_64", "znver4", {"avx2", "avx512f", "avx512bw"}, 512),
    ("x86_64", "haswell", {"avx2"}, 256),
    ("x86_64", "nehalem", set(), 128),
    ("aarch64", "neoverse-n1", {"neon"}, 128),
])
def test_kernel_choice_by_target(arch, name, feats, bits):
    choice = cpu.choose(arch, name, feats)
    if not JIT:
        assert not choice.fast
        return
    assert choice.vector_bits == bits and choice.ob % (bits // 64) == 0 and choice.pix >= 1


def test_cpu_name_alone_keeps_host_features(monkeypatch):
    # Numba gives the target machine the HOST's features unless NUMBA_CPU_FEATURES is set, so
    # NUMBA_CPU_NAME=haswell alone is not an AVX2-only target; the choice must follow Numba.
    monkeypatch.setattr(config, "CPU_NAME", "haswell")
    monkeypatch.setattr(config, "CPU_FEATURES", "")
    assert cpu.code_target()[2] == {"avx2"}
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512bw")
    assert {"avx512f", "avx512bw"} <= cpu.code_target()[2]


# --------------------------------------------------------------------------------------------
# the other code targets this host can run: the same exactness check in a subprocess each
# --------------------------------------------------------------------------------------------

_OTHER_TARGET_CHECK = r"""
import numpy as np
from tinybin.kernels import bitpack, cpu, xnor
assert cpu.CHOICE.fast, cpu.CHOICE
rng = np.random.default_rng(0)
for i in range(40):
    k = (1, 3)[i % 2]; s = 1 + (i // 2) % 2; p = (0, k // 2)[(i // 4) % 2]
    N, H, W = rng.integers(1, 3), rng.integers(1, 12), rng.integers(1, 12)
    C, Co = int(rng.integers(1, 300)), int(rng.integers(1, 70))
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = 0.0
    w = rng.standard_normal((Co, k, k, C)).astype(np.float32)
    xb, wb = bitpack.pack_signs(x), bitpack.pack_signs(w)
    ref = xnor.conv2d_ref(x, w, s, p)
    assert np.array_equal(xnor.conv2d(xb, wb, C, s, p), ref), (i, x.shape, w.shape, s, p)
    alpha = np.abs(w).mean(axis=(1, 2, 3)).astype(np.float32)
    got = xnor.conv2d_prepared(xb, xnor.prepare_weights(wb, C), s, p, alpha=alpha)
    assert np.array_equal(got, ref.astype(np.float32) * alpha), i
print(cpu.CHOICE.name)
"""


def _host_can_run(feature: str) -> bool:
    import llvmlite.binding as ll

    try:
        return bool(ll.get_host_cpu_features().get(feature, False))
    except RuntimeError:
        return False


@pytest.mark.skipif(not JIT, reason="needs the JIT")
@pytest.mark.parametrize("env, needs, expect", [
    ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}, "avx2", "fast 256-bit"),
    ({"NUMBA_CPU_NAME": "nehalem", "NUMBA_CPU_FEATURES": ""}, "sse4.2", "fast 128-bit"),
    ({"NUMBA_CPU_FEATURES": "-avx512vpopcntdq"}, "avx512bw", "fast 512-bit"),
], ids=["avx2", "128-bit", "avx512-byte-popcount"])
def test_fast_kernel_exact_on_other_targets(env, needs, expect):
    """Every kernel variant this host can execute equals the float definition (a subprocess per
    code target; Numba's cache keeps each target's builds apart)."""
    import os
    import subprocess
    import sys

    if not _host_can_run(needs):
        pytest.skip(f"host CPU lacks {needs}")
    base = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    r = subprocess.run([sys.executable, "-c", _OTHER_TARGET_CHECK], env=dict(base, **env),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == expect
