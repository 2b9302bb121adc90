# %% [markdown]
# # 00 · Autograd and convolution from scratch
#
# **Goal.** Build up the two things the rest of tinybin stands on: reverse-mode automatic
# differentiation (a `Tensor` that remembers the operation that produced it) and convolution
# written as a matrix product (im2col followed by one GEMM), using the NHWC layout that the binary
# kernels rely on later.
#
# **Paper.** This notebook reproduces no table or figure. It covers the machinery behind §3 and
# §4.1 of Bulat & Tzimiropoulos (TPAMI 2018): every layer of the hourglass (Fig. 2) and of the
# blocks (Fig. 7) is a convolution trained by backpropagation.
#
# **Modules used.** `tinybin.tensor` (`Tensor`, `Function`), `tinybin.functional` (`conv2d`,
# `batch_norm`, `relu`, `max_pool2d`, `upsample`, `concat`), `tinybin.gradcheck.check_grads`,
# `tinybin.kernels.im2col`, `tinybin.kernels.bitpack`, `tinybin.blocks`.
#
# **CPU time** on the 2-core machine: about 5–10 s. With `TINYBIN_QUICK=1`, about 3–5 s; most of
# that is Numba loading its compiled kernels.
#
# Each section follows the same pattern: the idea, numbers you can check by hand, the code, a
# check with the error size we expect, and a figure or table.

# %%
import os
import time

# One BLAS thread and one Numba thread. On a busy 2-core machine the two thread pools otherwise
# spin against each other; a training step was measured 20x slower. This must run before numpy
# is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import tinybin as tb
import tinybin.functional as F
from tinybin import Function, Tensor
from tinybin.gradcheck import check_grads
from tinybin.kernels import bitpack
from tinybin.kernels import im2col as im2col_mod

QUICK = os.environ.get("TINYBIN_QUICK") == "1"

# sizes (QUICK shrinks them so CI runs the notebook in seconds)
GRADCHECK_ENTRIES = 30 if QUICK else 150          # entries per input checked by finite differences
PACK_SHAPE = (1, 32, 32, 128) if QUICK else (4, 64, 64, 256)   # NHWC activations for the packing timing
REPEATS = 3 if QUICK else 10                      # timing repeats (we keep the best)
SEED = 0
rng = np.random.default_rng(SEED)
print(f"QUICK={QUICK}, numpy {np.__version__}, tinybin {tb.__version__}")

# %% [markdown]
# ## 1. A tensor and its graph
#
# **Idea.** A `Tensor` wraps a NumPy array. Every operation on tensors returns a new tensor that
# remembers its *context*: which `Function` produced it and from which parent tensors.
# `backward()` sorts this graph topologically and walks it once in reverse. At each node it
# applies the chain rule: the gradient arriving at a node, multiplied by the local derivative,
# is passed on to each parent.
#
# **By hand.** Take $L = (a b + a)\,c$ with $a = 2$, $b = -3$, $c = 4$. Then $d = ab + a = -4$ and
# $L = -16$. Going backwards:
#
# * $\partial L/\partial c = d = -4$
# * $\partial L/\partial d = c = 4$
# * $\partial L/\partial b = \partial L/\partial d \cdot a = 8$
# * $\partial L/\partial a = \partial L/\partial d \cdot (b + 1) = 4 \cdot (-2) = -8$
#
# The variable $a$ is used twice. Its gradient is the **sum** of the two paths ($4 \cdot b$ through
# the product and $4 \cdot 1$ through the sum). The topological order makes sure both
# contributions have arrived before $a$'s gradient is used.

# %%
a = Tensor(np.array(2.0), requires_grad=True)   # float64 scalars: exact arithmetic for the check
b = Tensor(np.array(-3.0), requires_grad=True)
c = Tensor(np.array(4.0), requires_grad=True)
L = (a * b + a) * c
L.backward()

names = {id(a): "a", id(b): "b", id(c): "c"}


def show_graph(t, indent=0):
    """Print the graph below t: each node is the Function that made it, leaves are inputs."""
    pad = "    " * indent
    if t._ctx is None:
        print(f"{pad}{names.get(id(t), 'const')} = {t.data}  (leaf, grad {t.grad})")
        return
    print(f"{pad}{t._ctx.fn.__name__} -> {t.data}")
    for parent in t._ctx.parents:
        show_graph(parent, indent + 1)


show_graph(L)
by_hand = {"a": -8.0, "b": 8.0, "c": -4.0}
for name, t in (("a", a), ("b", b), ("c", c)):
    assert t.grad == by_hand[name], (name, t.grad)
print("gradients match the hand computation exactly:", {n: float(t.grad) for n, t in (("a", a), ("b", b), ("c", c))})

# %% [markdown]
# ## 2. A new operation is a `Function`
#
# **Idea.** Every op in `tinybin.functional` is a pair of functions: `forward(ctx, x)` computes the
# output and saves what the backward pass will need, and `backward(ctx, g)` turns the upstream
# gradient `g` into the gradient with respect to the input. As an example we add $y = x^3$, whose
# backward is $g \cdot 3x^2$.
#
# **Check.** `check_grads` compares the analytic backward with central finite differences
# $(f(x+h) - f(x-h)) / 2h$ in float64. With $h = 10^{-6}$ the truncation error is about
# $h^2 f''' \approx 10^{-12}$ and the rounding error about $\varepsilon |f| / h \approx 10^{-10}$.
# A correct backward therefore gives a relative error **below $10^{-6}$**. A wrong backward gives
# an error of order 1.

# %%
class Cube(Function):
    """y = x**3; backward: g * 3 x**2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g * 3 * x ** 2


class CubeWrong(Cube):
    """The same forward with a wrong backward (2 x**2): the check must catch it."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g * 2 * x ** 2


x = Tensor(rng.standard_normal(6), requires_grad=True)            # float64
err_cube = check_grads(lambda x: Cube.apply(x).sum(), [x])
err_wrong = check_grads(lambda x: CubeWrong.apply(x).sum(), [x])
print(f"Cube:      relative error {err_cube:.1e}   (expected < 1e-6)")
print(f"CubeWrong: relative error {err_wrong:.1e}   (a wrong backward: order 1)")
assert err_cube < 1e-6 and err_wrong > 0.1

# %% [markdown]
# ## 3. The backward of a layer, by hand
#
# **Idea.** A 1×1 convolution on an NHWC tensor is a plain matrix product. Flatten the pixels to
# rows, $X_2$ of shape $(NHW, C)$; then $Y_2 = X_2 W^\top + b$, with $W$ of shape $(C_{out}, C)$.
# For a loss $L = \sum Y \odot G$ the upstream gradient is $dY = G$, and
#
# $$dW = dY_2^\top X_2, \qquad db = \textstyle\sum_{rows} dY_2, \qquad dX_2 = dY_2\, W .$$
#
# This is all of convolution's backward pass. A $k \times k$ convolution only adds the im2col
# copy in front (section 4), and the backward of that copy is its adjoint, col2im.

# %%
N, H, W, C, COUT = 2, 3, 3, 4, 5
x = Tensor(rng.standard_normal((N, H, W, C)), requires_grad=True)
w = Tensor(rng.standard_normal((COUT, 1, 1, C)), requires_grad=True)
bias = Tensor(rng.standard_normal(COUT), requires_grad=True)
G = rng.standard_normal((N, H, W, COUT))

y = F.conv2d(x, w, bias)                      # tinybin
(y * Tensor(G)).sum().backward()

X2, dY2, W2 = x.data.reshape(-1, C), G.reshape(-1, COUT), w.data.reshape(COUT, C)   # by hand
dW_hand = (dY2.T @ X2).reshape(w.shape)
db_hand = dY2.sum(axis=0)
dX_hand = (dY2 @ W2).reshape(x.shape)

errs = {"dW": np.abs(w.grad - dW_hand).max(), "db": np.abs(bias.grad - db_hand).max(),
        "dX": np.abs(x.grad - dX_hand).max()}
print("max |tinybin - by hand|:", {k: f"{v:.1e}" for k, v in errs.items()}, "(float64: expect < 1e-12)")
assert max(errs.values()) < 1e-12

# %% [markdown]
# ## 4. Convolution as im2col + GEMM, drawn
#
# **Idea.** A $k \times k$ convolution becomes a matrix product once every receptive field is
# copied into one row:
#
# $$\text{cols}[(n, o_y, o_x), (i, j, c)] = x_{pad}[n,\; o_y s + i,\; o_x s + j,\; c], \qquad
#   \text{out} = \text{cols} \cdot W_{(C_{out},\, k k C)}^\top .$$
#
# **By hand.** Take a 5×5 one-channel image holding the values 0…24, a 3×3 kernel, stride 1 and
# padding 1. Output pixel $(o_y, o_x) = (1, 2)$ reads rows 0–2 and columns 1–3 of the image, so its
# row in `cols` is row $1 \cdot 5 + 2 = 7$ = `[1 2 3 6 7 8 11 12 13]`. The corner output (0, 0) has
# five taps in the zero padding: row 0 = `[0 0 0 0 0 1 0 5 6]`.

# %%
img = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
cols = im2col_mod.im2col(img, 3, 3, stride=1, padding=1)          # (25, 9)
print("cols shape", cols.shape)
print("row 7:", cols[7].astype(int), "  row 0:", cols[0].astype(int))
assert cols[7].astype(int).tolist() == [1, 2, 3, 6, 7, 8, 11, 12, 13]
assert cols[0].astype(int).tolist() == [0, 0, 0, 0, 0, 1, 0, 5, 6]

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 5.2), gridspec_kw={"width_ratios": [1, 1.1]})
padded = np.pad(img[0, :, :, 0], 1)
ax0.imshow(np.pad(np.zeros((5, 5)), 1, constant_values=1), cmap="Greys", vmin=0, vmax=3)
for (r, q), v in np.ndenumerate(padded):
    ax0.text(q, r, f"{int(v)}", ha="center", va="center", color="0.5" if not (1 <= r <= 5 and 1 <= q <= 5) else "k")
for (oy, ox), col in (((1, 2), "tab:blue"), ((0, 0), "tab:red")):
    ax0.add_patch(Rectangle((ox - 0.5, oy - 0.5), 3, 3, fill=False, ec=col, lw=3))
ax0.set_title("padded input (grey: zero padding)\nreceptive fields of outputs (1,2) and (0,0)")
ax0.set_xticks([]), ax0.set_yticks([])
ax1.imshow(cols[:, :], cmap="Blues", aspect="auto", alpha=0.35)
for (r, q), v in np.ndenumerate(cols):
    ax1.text(q, r, f"{int(v)}", ha="center", va="center", fontsize=7)
for r, col in ((7, "tab:blue"), (0, "tab:red")):
    ax1.add_patch(Rectangle((-0.5, r - 0.5), 9, 1, fill=False, ec=col, lw=2.5))
ax1.set_title("cols = im2col(x): one row per output pixel")
ax1.set_xlabel("tap (i, j), c")
ax1.set_ylabel("output pixel oy*5 + ox")
ax1.set_xticks(range(9), [f"{i},{j}" for i in range(3) for j in range(3)], fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Check against a loop version.** The loop below is the definition of convolution written out
# directly: for every output pixel and output channel, sum over the taps that fall inside the
# image. The im2col + GEMM path has to agree with it. In float64 we expect agreement to about
# $10^{-15}$ times the size of the values; in float32, to about $10^{-6}$ (the two compute the
# sums in different orders). The Numba `im2col` is a pure copy, so it must be bit-identical to the
# NumPy reference `im2col_ref`.

# %%
def conv2d_loops(x, w, b, stride, padding):
    """The definition, one output value at a time (slow; only for checking)."""
    N, H, W, C = x.shape
    Cout, KH, KW, _ = w.shape
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, OH, OW, Cout), dtype=x.dtype)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for o in range(Cout):
                    s = b[o]
                    for i in range(KH):
                        for j in range(KW):
                            yy, xx = oy * stride + i - padding, ox * stride + j - padding
                            if 0 <= yy < H and 0 <= xx < W:          # zero padding: skip the tap
                                s += x[n, yy, xx, :] @ w[o, i, j, :]
                    out[n, oy, ox, o] = s
    return out


conv_errors = {}
for dtype in (np.float64, np.float32):
    for stride, padding in ((1, 1), (2, 1), (2, 0)):
        xs = rng.standard_normal((2, 7, 7, 3)).astype(dtype)
        ws = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
        bs = rng.standard_normal(4).astype(dtype)
        ref = conv2d_loops(xs, ws, bs, stride, padding)
        got = F.conv2d(Tensor(xs), Tensor(ws), Tensor(bs), stride, padding).data
        conv_errors[(np.dtype(dtype).name, stride, padding)] = float(np.abs(got - ref).max() / np.abs(ref).max())
        np.testing.assert_array_equal(im2col_mod.im2col(xs, 3, 3, stride, padding),
                                      im2col_mod.im2col_ref(xs, 3, 3, stride, padding))
for k, v in conv_errors.items():
    print(f"{k[0]}, stride {k[1]}, padding {k[2]}: max relative |im2col-GEMM - loops| = {v:.1e}")
assert max(v for k, v in conv_errors.items() if k[0] == "float64") < 1e-13
assert max(v for k, v in conv_errors.items() if k[0] == "float32") < 1e-5
print("Numba im2col == NumPy im2col_ref, bit for bit")

# %% [markdown]
# ## 5. Gradient checks for the layers of the paper's networks
#
# **Idea.** A backward pass that is wrong can still train, just badly, so each op is checked
# against finite differences. We check the convolution (with stride, padding and bias), batch
# normalisation in training mode, ReLU, max-pooling, bilinear upsampling, the concatenation of
# the hierarchical block, and finally a whole real-valued hierarchical block (paper Fig. 7e)
# together with all of its parameters.
#
# **Expected error.** In float64 a correct backward gives a relative error below $10^{-6}$, in
# practice $10^{-8}$ to $10^{-11}$. We also run the same convolution check in float32 to show why
# the checks are done in float64: moving by $h = 10^{-6}$ is below float32's resolution for
# values near 1, so the finite differences are mostly rounding noise.

# %%
def t64(*shape, grad=True):
    return Tensor(rng.standard_normal(shape), requires_grad=grad)


cases = {}
x, w_, b_ = t64(2, 7, 7, 3), t64(4, 3, 3, 3), t64(4)
G_conv = Tensor(rng.standard_normal((2, 4, 4, 4)))      # a random upstream gradient: L = sum(y * G)
cases["conv2d 3x3, stride 2, pad 1, bias"] = (lambda x, w, b: (F.conv2d(x, w, b, 2, 1) * G_conv).sum(), [x, w_, b_])
G_bn = Tensor(rng.standard_normal((2, 4, 4, 5)))
cases["batch_norm (training statistics)"] = (lambda x, g, b: (F.batch_norm(x, g, b) * G_bn).sum(),
                                             [t64(2, 4, 4, 5), t64(5), t64(5)])
G_r = Tensor(rng.standard_normal((2, 5, 5, 4)))
cases["relu(conv2d)"] = (lambda x, w: (F.relu(F.conv2d(x, w, None, 1, 1)) * G_r).sum(), [t64(2, 5, 5, 3), t64(4, 3, 3, 3)])
G_p = Tensor(rng.standard_normal((2, 3, 3, 3)))
cases["max_pool2d 2x2"] = (lambda x: (F.max_pool2d(x, 2) * G_p).sum(), [t64(2, 6, 6, 3)])
G_u = Tensor(rng.standard_normal((1, 6, 8, 2)))
cases["upsample x2, bilinear"] = (lambda x: (F.upsample(x, 2, "bilinear") * G_u).sum(), [t64(1, 3, 4, 2)])
G_c = Tensor(rng.standard_normal((1, 3, 3, 5)))
cases["concat + add"] = (lambda x, y: ((F.concat([x, y]) + F.concat([y, x])) * G_c).sum(), [t64(1, 3, 3, 2), t64(1, 3, 3, 3)])

block = tb.blocks.HPM(8, 8, binary=False, rng=SEED).to(np.float64)     # paper Fig. 7e, real-valued
xb = t64(2, 6, 6, 8)
G_b = Tensor(rng.standard_normal((2, 6, 6, 8)))
cases["HPM block (real), input + all parameters"] = (lambda *ts: (block(ts[0]) * G_b).sum(), [xb] + block.parameters())

grad_errors = {}
for name, (f, inputs) in cases.items():
    grad_errors[name] = check_grads(f, inputs, max_entries=GRADCHECK_ENTRIES, rng=SEED)
# the same convolution check in float32
x32 = Tensor(x.data.astype(np.float32), requires_grad=True)
w32, b32 = Tensor(w_.data.astype(np.float32), requires_grad=True), Tensor(b_.data.astype(np.float32), requires_grad=True)
G32 = Tensor(rng.standard_normal((2, 4, 4, 4)).astype(np.float32))
err32 = check_grads(lambda x, w, b: (F.conv2d(x, w, b, 2, 1) * G32).sum(), [x32, w32, b32],
                    max_entries=GRADCHECK_ENTRIES, rng=SEED)

print(f"{'op':<44} relative error (float64; expected < 1e-6)")
for name, e in grad_errors.items():
    print(f"{name:<44} {e:.1e}")
print(f"{'conv2d in float32 (for contrast)':<44} {err32:.1e}")
assert max(grad_errors.values()) < 1e-6

fig, ax = plt.subplots(figsize=(8, 3.2))
labels = list(grad_errors) + ["conv2d, float32"]
vals = list(grad_errors.values()) + [err32]
ax.barh(labels, vals, color=["tab:blue"] * len(grad_errors) + ["tab:orange"])
ax.axvline(1e-6, color="k", ls="--", lw=1)
ax.text(1.3e-6, 0, "pass: below 1e-6", fontsize=8, va="center")
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("relative error, analytic vs finite differences")
ax.set_title("Gradient checks")
plt.tight_layout()
plt.show()

# %% [markdown]
# The binary sign activation is missing from this list on purpose. Its true derivative is 0
# almost everywhere, and training uses a *pseudo*-gradient (the straight-through estimator), so
# finite differences cannot confirm it. Notebook 01 examines it.
#
# ## 6. NHWC, and why
#
# **Idea.** tinybin stores every activation as (N, H, W, C): the channels of one pixel sit next
# to each other in memory. Two consumers benefit:
#
# 1. **im2col.** One kernel row of a receptive field (the $k$ neighbouring pixels in that row,
#    each with all $C$ channels) is a single contiguous run of $kC$ floats. A 3×3 receptive field
#    is therefore 3 `memcpy`s. In NCHW, with rows ordered (c, i, j) as Caffe does, it is $3C$ runs
#    of 3 floats each.
# 2. **Bit-packing.** A binary layer packs the signs of 64 channels into one `uint64` word. In
#    NHWC those 64 values are 256 contiguous bytes that one vector compare turns into a word. In
#    NCHW they lie $H \cdot W \cdot 4$ bytes apart, so packing has to transpose first.
#
# **By hand.** For C = 64 and a 3×3 kernel, NHWC gives 3 runs of 192 floats and NCHW gives 192
# runs of 3 floats.

# %%
def receptive_field_offsets(layout, H, W, C, K, oy, ox):
    """Memory offsets (in elements) of one im2col row, in each layout's natural row order."""
    if layout == "NHWC":   # row order (i, j, c)
        return np.array([((oy + i) * W + (ox + j)) * C + c for i in range(K) for j in range(K) for c in range(C)])
    return np.array([(c * H + (oy + i)) * W + (ox + j) for c in range(C) for i in range(K) for j in range(K)])


def contiguous_runs(offsets):
    lengths = np.diff(np.flatnonzero(np.diff(np.r_[-2, offsets, -2]) != 1))
    return len(lengths), int(lengths.max())


for layout in ("NHWC", "NCHW"):
    n_runs, longest = contiguous_runs(receptive_field_offsets(layout, 16, 16, 64, 3, 5, 5))
    print(f"{layout}: one 3x3 receptive field of 64 channels = {n_runs} contiguous runs, longest {longest} floats")
assert contiguous_runs(receptive_field_offsets("NHWC", 16, 16, 64, 3, 5, 5)) == (3, 192)
assert contiguous_runs(receptive_field_offsets("NCHW", 16, 16, 64, 3, 5, 5)) == (192, 3)


def best_time(fn, repeats=REPEATS):
    fn()                                   # warm-up (Numba loads or compiles on the first call)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


x_nhwc = rng.standard_normal(PACK_SHAPE).astype(np.float32)
x_nchw = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))          # the same data, stored NCHW
t_nhwc = best_time(lambda: bitpack.pack_signs(x_nhwc))
t_nchw = best_time(lambda: bitpack.pack_signs(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))))
np.testing.assert_array_equal(bitpack.pack_signs(x_nhwc),
                              bitpack.pack_signs(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))))
n_el = x_nhwc.size
print(f"packing {PACK_SHAPE} float32 signs: from NHWC {t_nhwc * 1e3:.2f} ms ({n_el / t_nhwc / 1e9:.2f} G/s), "
      f"from NCHW (transpose first) {t_nchw * 1e3:.2f} ms: {t_nchw / t_nhwc:.1f}x slower")

fig, ax = plt.subplots(figsize=(5, 2.2))
ax.barh(["from NHWC", "from NCHW\n(transpose + pack)"], [t_nhwc * 1e3, t_nchw * 1e3], color=["tab:blue", "tab:gray"])
ax.set_xlabel("ms (best of %d)" % REPEATS)
ax.set_title(f"packing the signs of {PACK_SHAPE} activations")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What we found vs the paper
#
# The paper trains in Torch (NCHW, cuDNN) and reports no numbers for this machinery, so there is
# nothing to compare one-to-one. The cell below prints what we checked and how large the errors
# were on this run.

# %%
print(f"""- The graph of L = (ab + a)c: tinybin's gradients equal the hand computation exactly
  (a: -8, b: 8, c: -4). The two paths through `a` were summed.
- A new Function (x**3) passes the gradient check with error {err_cube:.0e}; a wrong backward
  gives {err_wrong:.2f}. The check separates the two by {np.log10(err_wrong / max(err_cube, 1e-300)):.0f} orders of magnitude.
- The backward of a 1x1 convolution written by hand matches tinybin to {max(errs.values()):.1e} (float64).
- im2col + GEMM matches the loop definition of convolution to {max(v for k, v in conv_errors.items() if k[0] == 'float64'):.0e}
  (float64) and {max(v for k, v in conv_errors.items() if k[0] == 'float32'):.0e} (float32) relative error; the Numba im2col equals the
  NumPy reference bit for bit.
- Every layer used by the paper's networks passes the float64 gradient check: worst error
  {max(grad_errors.values()):.0e} over {len(grad_errors)} cases, including a whole real HPM block (Fig. 7e). The same
  check in float32 gives {err32:.0e}, which is why gradient checks run in float64.
- NHWC: a 3x3 receptive field of 64 channels is 3 contiguous runs instead of 192. Packing signs
  from NHWC ran {t_nchw / t_nhwc:.1f}x faster than from NCHW (transpose included) on {PACK_SHAPE}.""")

# %% [markdown]
# ## Exercises
#
# 1. Write `Tanh` as a `Function` (forward `np.tanh(x)`, backward `g * (1 - y**2)`, saving `y`)
#    and check it with `check_grads`. What error do you get if the backward uses `x` instead of `y`?
# 2. In `check_grads`, replace the central difference with the forward difference
#    $(f(x+h) - f(x))/h$ (copy `tinybin.gradcheck.numerical_grad` into the notebook). How does the
#    error now scale with $h$? Plot it for $h = 10^{-2} \dots 10^{-10}$.
# 3. col2im is the adjoint of im2col. Verify $\langle \text{im2col}(x), M\rangle = \langle x,
#    \text{col2im}(M)\rangle$ for random $x$ and $M$ (the "dot-product test").
# 4. For a 3×3 convolution with stride 1 and padding 1 on a 5×5 image, count how often each input
#    pixel appears in `cols`. (Interior pixels appear 9 times; corner pixels 4 times.)
# 5. Time `F.conv2d` on a (1, 64, 64, 128) input with a (128, 3, 3, 128) kernel, and split the
#    time into im2col and GEMM. Which part dominates?
