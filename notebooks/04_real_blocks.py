# %% [markdown]
# # 04 · Real-valued blocks of the same size (Table 3, §4.6)
#
# **Question from the paper.** Is the hierarchical block (HPM) only good for binary networks? §4.6.2
# builds the real-valued twin of both blocks (Sign → ReLU, real weights) and widens the real
# bottleneck to about the same size (7.0M vs 6.2M): the real HPM still wins, 85.5 vs 83.1, but by
# less than in the binary case (Table 2: 76.0 vs 67.2). "For real networks width buys accuracy;
# for binary ones it does not."
#
# **Protocol** (README, "The experimental protocol"; fixed before any test number exists). Every row
# trains with the validation-chosen recipe and budget of that protocol (`tinybin.experiments.RECIPE`
# or the recipe file given to the runner) on `HourGlass.downscaled`; rows share seeds (same data,
# same order), so each row is compared with the table's reference row by the **paired difference
# over seeds**, mean and 95% t-interval, at `pckh` (PCKh@0.5 at our scale) and at `pckh_matched`
# (PCKh at the tolerance in heatmap cells that PCKh@0.5 allows on 256-px MPII crops), with flip
# testing. 5 seeds per row (the paper's difference is 2.4 points). A claim **agrees** when the
# interval excludes 0 on the paper's side, **disagrees** when it excludes 0 on the other side, and
# is **unresolved** at this power otherwise; the verdict cells compute this from the intervals.
#
# **Data.** `python -m tinybin.experiments run table3 --seeds 5`; the binary contrast comes from
# `results/table2/` (bottleneck vs hpm, same protocol).
#
# **CPU time.** About a minute and a half (the toy of section 1b: 30 fits of one small block);
# `TINYBIN_QUICK=1`: seconds. The networks themselves are not trained here; the notebook reads
# their results.

# %%
import functools
import os
import time
import warnings

# One BLAS thread and one Numba thread (set before numpy is imported): on a busy 2-core machine the
# two thread pools otherwise spin against each other.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

# The committed experiment results: results/ beside notebooks/ in the repository.
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
RESULTS = os.path.join(os.path.dirname(HERE), "results")

import matplotlib.pyplot as plt
import numpy as np

warnings.filterwarnings("ignore", message="IProgress not found")

import tinybin as tb
from tinybin import HourGlass, Tensor, no_grad
from tinybin import experiments as E
from tinybin import notebook as NB
from tinybin.notebook import show_md

QUICK = os.environ.get("TINYBIN_QUICK") == "1"
KEYS = NB.KEYS


# Finding results (or QUICK smoke runs), the paired-difference figure and the verdict table are
# shared by the ablation notebooks: tinybin/notebook.py.
results_root = functools.partial(NB.results_root, results=RESULTS, quick=QUICK)
plot_paired, verdicts = NB.plot_paired, NB.verdict_table

SEEDS = 5
print(f"QUICK={QUICK}")

# %% [markdown]
# ## 1. The two real blocks and their size
#
# **By hand.** The real wider bottleneck at F = 256 has mid width m = 196 (0.765625 F; the paper
# does not state it, 196 reproduces 7.0M): 1×1 256→196, 3×3 196→196, 1×1 196→256 is
# $256 \cdot 196 + 196^2 \cdot 9 + 196 \cdot 256 = 446{,}096$ weights per block; the HPM block has
# 405,504. Real convs carry biases; the rest is BatchNorm.

# %%
exp3 = E.get("table3")
rows = []
for row in exp3.rows:
    n_paper = tb.count_parameters(HourGlass.paper(seed=None, **row.net))
    n_small = tb.count_parameters(HourGlass.downscaled(seed=None, **row.net))
    rows.append((row.label, row.paper_params, n_paper, n_small))
blk = tb.blocks.make_block("bottleneck", 256, 256, binary=False, mid_ratio=0.765625)
w = sum(p.data.size for n, p in blk.named_parameters() if n.endswith("conv.weight"))
assert w == 256 * 196 + 196 * 196 * 9 + 196 * 256, w
show_md("\n".join(["| row (Table 3) | paper | ours at paper scale | ours downscaled (F=64) |", "|---|---|---|---|"]
                   + [f"| {l} | {p} | {a / 1e6:.2f}M | {b:,} |" for l, p, a, b in rows]))

# %% [markdown]
# ## 1b. A live toy: does width buy fit, real and binary?
#
# **Idea.** Before the trained networks, a toy that runs in a minute. A fixed random real
# function (two real bottleneck blocks at full width, ReLU inside) maps random feature maps to
# targets; one student block, trained with Adam on those 32 inputs, tries to reproduce it. The
# fit error after training (mean squared error on standardised targets; 1.0 = predicting 0) is a
# measure of how much the block *can* express, not of how well it generalises. We widen the
# bottleneck's middle from F/4 to F, real and binary, and put the HPM block beside it at its own
# size. If width buys a real block fit but not a binary one, the error falls along the real curve
# and flattens along the binary one. This is a toy: a random real teacher is not a pose, and a few
# hundred steps on 32 samples is not the recipe. Section 2 has the real experiment.

# %%
F_TOY, N_TOY, H_TOY = (16, 8, 4) if QUICK else (32, 32, 8)
TOY_STEPS, TOY_SEEDS = (20, (1,)) if QUICK else (300, (1, 2, 3))
MID_RATIOS = (0.25, 0.5, 0.765625, 1.0)       # 0.765625: the wider bottleneck of Table 3
x_toy = np.random.default_rng(0).standard_normal((N_TOY, H_TOY, H_TOY, F_TOY)).astype(np.float32)
teacher = [tb.blocks.make_block("bottleneck", F_TOY, F_TOY, binary=False, mid_ratio=1.0, rng=100 + i) for i in range(2)]
with no_grad():
    y_toy = Tensor(x_toy)
    for t_blk in teacher:
        t_blk.eval()
        y_toy = t_blk(y_toy)
t_toy = y_toy.data - x_toy                               # the residual part: what a block's branch must produce
t_toy = ((t_toy - t_toy.mean()) / t_toy.std()).astype(np.float32)


def toy_fit(block, binary, seed, **opts):
    """Fit error (MSE on standardised targets) and size of one student block after TOY_STEPS of Adam."""
    blk = tb.blocks.make_block(block, F_TOY, F_TOY, binary=binary, rng=seed, shortcut=False, **opts)
    opt = tb.optim.Adam(blk.parameters(), lr=3e-3)
    xt, tt = Tensor(x_toy), Tensor(t_toy)
    blk.train()
    for _ in range(TOY_STEPS):
        d = blk(xt) - tt
        loss = (d * d).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    blk.eval()
    with no_grad():
        err = float(((blk(xt).data - t_toy) ** 2).mean())
    return err, tb.count_parameters(blk)


t0 = time.perf_counter()
toy = {}                                                 # (binary, variant) -> (mean error, params)
for binary in (False, True):
    for r in MID_RATIOS:
        fits = [toy_fit("bottleneck", binary, s, mid_ratio=r) for s in TOY_SEEDS]
        toy[binary, r] = (float(np.mean([f[0] for f in fits])), fits[0][1])
    fits = [toy_fit("hpm", binary, s) for s in TOY_SEEDS]
    toy[binary, "hpm"] = (float(np.mean([f[0] for f in fits])), fits[0][1])
print(f"{2 * (len(MID_RATIOS) + 1) * len(TOY_SEEDS)} toy fits in {time.perf_counter() - t0:.0f} s")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for binary, col in ((False, "tab:green"), (True, "tab:purple")):
    kind = "binary" if binary else "real"
    ax.plot([toy[binary, r][1] for r in MID_RATIOS], [toy[binary, r][0] for r in MID_RATIOS], "o-", color=col,
            label=f"{kind} bottleneck, middle F/4 ... F")
    ax.plot(*toy[binary, "hpm"][::-1], "*", ms=12, color=col, label=f"{kind} HPM")
ax.set_xscale("log")
ax.set_xlabel("parameters of the student block")
ax.set_ylabel(f"fit error after {TOY_STEPS} steps (mean of {len(TOY_SEEDS)} inits)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
for binary in (False, True):
    e_half, e_full = toy[binary, 0.5][0], toy[binary, 1.0][0]
    print(f"{'binary' if binary else 'real  '}: widening the middle F/2 -> F changes the fit error "
          f"{e_half:.3f} -> {e_full:.3f} ({100 * (e_full - e_half) / e_half:+.0f}%); "
          f"HPM {toy[binary, 'hpm'][0]:.3f} vs wider bottleneck {toy[binary, 0.765625][0]:.3f}")

# %% [markdown]
# **Reading it.** The printout is the measurement. In our run (3 inits: real 0.260 -> 0.151,
# binary 0.439 -> 0.431) the real curve keeps falling as the middle widens while the binary one
# flattens after F/2, which is the paper's "for real networks width buys accuracy; for binary ones
# it does not" in miniature. The toy does not reproduce the other half of the story: the binary
# HPM fits this teacher *worse* than a binary bottleneck of the same size (0.571 against 0.423).
# One guess, not tested here: a smooth random real function suits a block with wide 1×1 mixing;
# what the HPM's multi-scale hierarchy buys on heatmaps is a question for the trained networks
# below. (Exercise 3 asks whether more steps change the toy.)

# %% [markdown]
# ## 2. Table 3, and the paired difference
#
# **Check.** The table is `tinybin.experiments.report("table3")`, computed from the result files.

# %%
root3, source3 = results_root("table3", SEEDS)
if root3 is not None:
    show_md(f"Source: {source3}.\n\n" + E.report("table3", root3))
    plot_paired("table3", root3, "Table 3: real HPM - real wider bottleneck")

# %% [markdown]
# ## 3. Real beside binary: the contrast the paper draws
#
# The same paired difference, HPM minus bottleneck, for real networks (Table 3, the bottleneck
# widened to the same size) and binary ones (Table 2). The paper: +2.4 real, +8.8 binary.
# Tables 2 and 3 share seeds (seed k: the same data, the same batches), so the contrast itself,
# (binary gain) - (real gain), is paired over seeds too: `E.seed_difference` gives each table's gain
# per seed, and `paired_difference` the interval of their difference.

# %%
root2, source2 = results_root("table2", 5)
contrast = {}
if root3 is not None and root2 is not None:
    for key in KEYS:
        real = E.summarize("table3", root3)[1]["diff"].get(key)
        binr = next(s for s in E.summarize("table2", root2) if s["row"] == "hpm")["diff"].get(key)
        contrast[key] = (real, binr)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for i, key in enumerate(KEYS):
        for j, (tag, d, paper) in enumerate((("real (Table 3)", contrast[key][0], 85.5 - 83.1),
                                             ("binary (Table 2)", contrast[key][1], 76.0 - 67.2))):
            y = 2 * i + j
            if d and d["n"]:
                ax.errorbar(d["mean"], y, xerr=d["half"], fmt="o", capsize=3, color="tab:blue")
            ax.plot(paper, y, "x", color="tab:red")
    ax.set_yticks(range(4))
    ax.set_yticklabels([f"{k}: {t}" for k in KEYS for t in ("real", "binary")], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("HPM - bottleneck (points); x = paper")
    ax.grid(alpha=0.3)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## What we found vs the paper
#
# Computed from the intervals; nothing below is typed in by hand.

# %%
if root3 is not None:
    v3 = verdicts("table3", root3, [("hpm_real", +1, "real HPM beats a real bottleneck of similar size (+2.4)")])
    if contrast:
        lines = ["| claim (paper: +8.8 binary vs +2.4 real) | key | binary gain - real gain, mean [95% CI] | verdict |",
                 "|---|---|---|---|"]
        for key in KEYS:
            if root2 != root3:   # QUICK smoke runs live in separate folders: no shared seeds to pair
                continue
            gain_bin = E.seed_difference("table2/hpm", "table2/bottleneck", key, root3)
            gain_real = E.seed_difference("table3/hpm_real", "table3/bottleneck_wider_real", key, root3)
            d = E.paired_difference(gain_bin, gain_real)
            lines.append(f"| the HPM gain is larger for binary than for real networks | {key} | "
                         f"{NB.fmt_ci(d, digits=1)} | {E.claim_verdict(d, +1)} |")
        show_md("\n".join(lines))

# %% [markdown]
# ### How many seeds would the paper's difference need?
#
# From the spread of the paired differences, the number of seeds that would resolve the paper's
# difference four times in five (`experiments.seeds_for_power`; section "How many seeds would
# resolve these?" of notebook 06 explains the table).

# %%
if root3 is not None:
    NB.power_table("table3", root3, [("hpm_real", 2.4, "real HPM - real wider bottleneck")])

# %% [markdown]
# ### Reading the verdicts: what reproduces, and what does not
#
# * **Not reproduced: the real HPM does not beat a real bottleneck of similar size.** With 5 seeds
#   the real wider bottleneck is ahead, by 1.8 [0.7, 3.0] PCKh@0.5 points and 0.3 [0.1, 0.4] at the
#   matched tolerance, where the paper has the HPM ahead by 2.4. It is the larger network
#   (362,884 against 319,536 parameters here; 7.04M against 6.24M at paper scale, as in the
#   paper), and at the matched tolerance both real networks are near the ceiling (95%). The seeds
#   had the power for the paper's difference: with the spread measured (sd of the paired
#   differences 0.93 PCKh@0.5 points), 4 seeds would resolve +2.4 four times in five.
# * **Reproduced: the HPM block's advantage belongs to binary networks.** Paired over the seeds
#   that Tables 2 and 3 share, the HPM's gain over the bottleneck is larger for binary networks
#   than for real ones by 10.1 [7.6, 12.6] PCKh@0.5 points and 2.3 [1.0, 3.6] at the matched
#   tolerance (paper: 8.8 binary against 2.4 real, a contrast of 6.4). This is the paper's
#   "for real networks width buys accuracy; for binary ones it does not", and here it holds more
#   strongly than in the paper: for real networks width buys more than the hierarchical block.
# * **The toy of section 1b agrees on width and not on the block.** Widening a real block's middle
#   lowers its fit error by 42%, a binary one's by 3%; but the binary HPM fits the toy teacher
#   worse than a binary bottleneck, the opposite of the trained networks. (The binary fits are
#   exactly repeatable on one CPU; an earlier build on another CPU gave 2% and the same ranking.)
# * **Not tested:** whether the real HPM catches up at larger width. At F = 64 its last layers
#   have 16 channels (8 in the F/2 stem blocks), and the scale checks of notebook 02 train no real
#   HPM at F = 128.

# %% [markdown]
# ## Exercises
#
# 1. Which `mid_ratio` makes the real bottleneck network exactly as large as the real HPM one at
#    paper scale? Would Table 3 then be a fairer comparison?
# 2. Table 3 compares a real bottleneck at 7.0M with a real HPM at 6.2M. Put the binary bottleneck
#    of Table 2 at the same size (the "wide" and "wide_no1x1" rows): does width help there?
# 3. In the toy of section 1b, train 3000 steps instead of 300. Does the binary curve stay flat,
#    and does the binary HPM catch up with the bottleneck? Replace the teacher by a *binary*
#    network: which student wins then?
