# %% [markdown]
# # 02 · Real vs binary bottleneck: how much does binarization cost?
#
# **Goal.** Take the same single hourglass built from Newell's bottleneck block (paper Fig. 7a),
# once with real-valued and once with binary convolutions, and measure what binarization costs:
# per-part accuracy, the distribution of errors, the poses it gets wrong, and how small its
# gradients become.
#
# **Paper.** Table 1 (PCKh per part, real 76.5 vs binary 67.2 on MPII), Fig. 3 (cumulative error
# curves), Fig. 4 (failure cases of the binary network), and §4.5: the binary network's gradients
# are "up to 10 times smaller" than the real network's.
#
# **Data.** We do not use MPII. Everything here runs on the downscaled synthetic pose task of
# `tinybin.data.SyntheticPose` (64×64 crops, 16 MPII joints, a fixed training set of 3000 images),
# with `HourGlass.downscaled` (F = 64, D = 3) and the paper's recipe (RMSprop, sigmoid loss,
# learning-rate drops). Absolute numbers cannot be compared with the paper's. What we compare are
# the gaps and the orderings.
#
# **Where the numbers come from.**
#
# * Table 1 and Fig. 3 read the result files of the experiment runner,
#   `python -m tinybin.experiments run table1 --seeds 3`: one JSON file per (row, seed) in
#   `results/table1/`, holding per-part and per-joint PCKh and every test image's error.
# * Fig. 4 and the gradients use a (real, binary) pair trained live in this notebook, with the
#   runner's budget and seed 0.
#
# **Modules used.** `tinybin.experiments` (`load_results`, `make_data`, `run_one`, `BUDGET`),
# `tinybin.train` (`Trainer`, `evaluate`, `compute_loss`), `tinybin.models.HourGlass`,
# `tinybin.metrics` (`pckh_curve`), `tinybin.viz` (`plot_ced`, `plot_pckh_curve`, `draw_pose`).
#
# **CPU time** on the 2-core machine: about 6 minutes, almost all of it training the live pair
# (2 × 900 steps at about 0.2 s each). With `TINYBIN_QUICK=1` (a 32×32 network trained for 4
# steps), about 10 s.

# %%
import copy
import os
import time

# One BLAS thread and one Numba thread: on a busy 2-core machine the two thread pools otherwise
# spin against each other (a training step was measured 20x slower). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

# The committed experiment results: results/ beside notebooks/ in the repository.
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
RESULTS = os.path.join(os.path.dirname(HERE), "results")

import warnings

import matplotlib.pyplot as plt
import numpy as np

# tqdm.auto warns inside Jupyter when ipywidgets is missing; the notebooks show no progress bars
warnings.filterwarnings("ignore", message="IProgress not found")

import tinybin as tb
from tinybin import HourGlass, Tensor
from tinybin import experiments as E
from tinybin import metrics, viz
from tinybin.skeletons import MPII_PARTS, MPII_SHORT_NAMES
from tinybin.train import TrainConfig, Trainer, compute_loss, evaluate

QUICK = os.environ.get("TINYBIN_QUICK") == "1"

# sizes: the experiment runner's budget (E.BUDGET, E.DATA), or a smoke-sized run in QUICK mode
LIVE_STEPS = 4 if QUICK else E.BUDGET["steps"]          # training steps per network of the live pair
BATCH = 4 if QUICK else E.BUDGET["batch_size"]
N_TRAIN = 32 if QUICK else E.DATA["n_train"]
N_TEST = 16 if QUICK else E.DATA["n_test"]
RESOLUTION = 32 if QUICK else E.DATA["resolution"]
NET = dict(width=16, depth=2, resolution=32) if QUICK else {}   # HourGlass.downscaled defaults: F=64, D=3, R=64
N_FAILURES = 4                                          # failure cases drawn (Fig. 4)
SEED = 0
print(f"QUICK={QUICK}: live pair {LIVE_STEPS} steps x batch {BATCH}, {N_TRAIN} train / {N_TEST} test images "
      f"at {RESOLUTION}x{RESOLUTION}")


def show_md(text):
    """Render markdown in Jupyter, print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


# %% [markdown]
# ## 1. Table 1 from the experiment runner
#
# **Idea.** Table 1 of the paper gives PCKh@0.5 per body part: the percentage of joints predicted
# within half a head size of the truth. Each part (Shoulder, Elbow, …) averages the right and left
# joints. The total is the mean over the 14 joints without pelvis and thorax. We read the same
# scores from the result files and average them over seeds. The files also hold the scores of all
# 16 joints, which are plotted after the table.
#
# **By hand.** The paper's gap between real and binary is 76.5 − 67.2 = 9.3 points overall. It is
# largest at the wrist (14.1), elbow (13.9) and knee (11.9), where the limbs move most, and
# smallest at the head (4.4).

# %%
PAPER_TABLE1 = {   # paper Table 1: PCKh on MPII validation, (real, binary)
    "Head": (94.9, 90.5), "Shoulder": (85.8, 79.6), "Elbow": (76.9, 63.0), "Wrist": (71.3, 57.2),
    "Hip": (78.1, 71.1), "Knee": (70.1, 58.2), "Ankle": (63.2, 53.4), "PCKh": (76.5, 67.2),
}
exp = E.get("table1")
results = E.load_results("table1", RESULTS)
source = "results/table1"
if not any(results.values()):
    if QUICK:   # every code path below still runs, on numbers that mean nothing
        results = {row.name: [E.run_one(exp, row, SEED, quick=True, progress=False)] for row in exp.rows}
        source = "QUICK smoke runs (4 steps at 32x32; the numbers mean nothing)"
    else:
        source = None
if source is None:
    show_md("**Table 1: not run yet.** Run `python -m tinybin.experiments run table1 --seeds 3` (about "
            "10 minutes per seed), then re-run this notebook.")
else:
    missing = [row.label for row in exp.rows if not results[row.name]]
    if missing:
        show_md(f"Partial results: not run yet for {missing}; run "
                "`python -m tinybin.experiments run table1 --seeds 3`.")


def part_scores(runs):
    """{part: (mean, std, n)} over seeds; 'PCKh' is the 14-joint mean."""
    out = {}
    for part in list(MPII_PARTS) + ["PCKh"]:
        vals = np.array([r["metrics"]["pckh"] if part == "PCKh" else r["metrics"]["pckh_parts"][part] for r in runs])
        out[part] = (vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.0, len(vals)) if len(vals) else None
    return out


table1 = {}
if source is not None:
    table1 = {row.name: part_scores(results[row.name]) for row in exp.rows if results[row.name]}
    fmt = lambda s: "not run" if s is None else f"{s[0]:.1f} ± {s[1]:.1f}"
    lines = [f"Source: {source}; seeds: " + ", ".join(f"{r.label} {len(results[r.name])}" for r in exp.rows), "",
             "| part | ours real | ours binary | ours gap | paper real | paper binary | paper gap |",
             "|---|---|---|---|---|---|---|"]
    for part, (pr, pb) in PAPER_TABLE1.items():
        sr = table1.get("bottleneck_real", {}).get(part)
        sb = table1.get("bottleneck_binary", {}).get(part)
        gap = f"{sr[0] - sb[0]:.1f}" if sr and sb else "–"
        lines.append(f"| {part} | {fmt(sr)} | {fmt(sb)} | {gap} | {pr} | {pb} | {pr - pb:.1f} |")
    ref = results.get("bottleneck_real") or results.get("bottleneck_binary")
    lines += ["", f"Parameters: ours {ref[0]['params']:,} (downscaled), at paper scale "
                  f"{ref[0]['paper_scale_params'] / 1e6:.2f}M (paper 3.5M)."]
    show_md("\n".join(lines))

# %%
if len(table1) == 2:
    parts = list(PAPER_TABLE1)
    xpos = np.arange(len(parts))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.6))
    for k, (name, col) in enumerate((("bottleneck_real", "tab:red"), ("bottleneck_binary", "tab:blue"))):
        m = [table1[name][p][0] for p in parts]
        s = [table1[name][p][1] for p in parts]
        ax0.bar(xpos + (k - 0.5) * 0.38, m, 0.38, yerr=s, color=col, alpha=0.8,
                label=f"ours, {'real' if k == 0 else 'binary'}")
        ax0.plot(xpos + (k - 0.5) * 0.38, [PAPER_TABLE1[p][k] for p in parts], "k_", ms=14, mew=2,
                 label="paper (MPII)" if k == 0 else None)
    ax0.set_xticks(xpos, parts)
    ax0.set_ylabel("PCKh@0.5 (%)")
    ax0.set_ylim(0, 118)
    ax0.legend(fontsize=8, loc="upper center", ncol=3)
    ax0.set_title("Table 1: per part")
    ours_gap = [table1["bottleneck_real"][p][0] - table1["bottleneck_binary"][p][0] for p in parts]
    paper_gap = [PAPER_TABLE1[p][0] - PAPER_TABLE1[p][1] for p in parts]
    ax1.bar(xpos - 0.19, ours_gap, 0.38, label="ours (synthetic)")
    ax1.bar(xpos + 0.19, paper_gap, 0.38, label="paper (MPII)", color="0.5")
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set_xticks(xpos, parts)
    ax1.set_ylabel("real - binary (points)")
    ax1.set_title("cost of binarization per part")
    ax1.legend(fontsize=8)
    plt.tight_layout()
    plt.show()

    # per joint (the results also hold all 16 joints; pelvis and thorax are not in the PCKh mean)
    fig, ax = plt.subplots(figsize=(12, 2.8))
    for k, (name, col) in enumerate((("bottleneck_real", "tab:red"), ("bottleneck_binary", "tab:blue"))):
        pj = np.array([r["metrics"]["pckh_joints"] for r in results[name]], dtype=np.float64)   # (seeds, 16)
        ax.bar(np.arange(16) + (k - 0.5) * 0.4, np.nanmean(pj, 0), 0.4, color=col, alpha=0.8,
               yerr=np.nanstd(pj, 0, ddof=1) if len(pj) > 1 else None, label=name.replace("bottleneck_", "ours, "))
    ax.set_xticks(np.arange(16), MPII_SHORT_NAMES)
    ax.set_ylabel("PCKh@0.5 (%)")
    ax.set_title("per joint (MPII order; pelv and thor are not in the mean)")
    ax.legend(fontsize=8)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## 2. Fig. 3: cumulative error curves
#
# **Idea.** A cumulative error distribution (CED) plots, for each threshold $e$, the fraction of
# test images whose error is at most $e$. Here the error of an image is the mean distance of its
# annotated joints from the truth, divided by the head size, so PCKh's threshold of 0.5 is a
# point on the x-axis. A curve that lies higher is better everywhere. The area under it up to
# the threshold (AUC) and the fraction of images beyond it (the failure rate, FR) summarise the
# curve.
#
# **Check.** The result files store every test image's error. We pool the seeds, drop images
# without annotated joints (their error is NaN), and check that the curve reaches 1 at a large
# threshold.

# %%
ced_errors = {}
if source is not None:
    for row in exp.rows:
        if results[row.name]:
            e = np.concatenate([np.asarray(r["errors"], dtype=np.float64) for r in results[row.name]])
            ced_errors[row.label] = e[np.isfinite(e)]
if ced_errors:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    viz.plot_ced(ax, ced_errors, threshold=1.0, percent=False)
    ax.axvline(0.5, color="k", ls=":", lw=1)
    ax.set_xlabel("mean joint error per image / head size")
    ax.set_title(f"Fig. 3 on synthetic poses ({source})", fontsize=9)
    plt.tight_layout()
    plt.show()
    for label, e in ced_errors.items():
        x_, y_ = metrics.ced(e, 10 * e.max() + 1)
        assert abs(y_[-1] - 1.0) < 1e-12
        print(f"{label}: {len(e)} images, median error {np.median(e):.3f} head sizes, "
              f"AUC@1 {metrics.auc(e, 1.0):.3f}, {100 * metrics.failure_rate(e, 0.5):.1f}% of images above 0.5")
else:
    show_md("**Fig. 3: not run yet** (needs `results/table1`).")

# %% [markdown]
# ## 3. A live pair: the same hourglass, real and binary
#
# **Idea.** We train the two networks of Table 1 here, with the runner's budget and seed 0, and
# keep their predictions on the test set. The predictions give the PCKh-vs-threshold curves,
# MPII's usual form of the error curve, and the failure cases. The two networks differ in one
# respect only. Every block's pre-activation unit is BatchNorm → ReLU → conv in the real network
# and BatchNorm → sign → binary conv (XNOR-Net weights, no bias) in the binary one. The 7×7 stem
# and the last 1×1 layer are real in both.

# %%
train_set, test_set = E.make_data("pose", seed=SEED, n_train=N_TRAIN, n_test=N_TEST, resolution=RESOLUTION)
cfg = TrainConfig(steps=LIVE_STEPS, batch_size=BATCH, lr=E.BUDGET["lr"], lr_end=E.BUDGET["lr_end"], seed=SEED,
                  eval_samples=N_TEST)
live, live_eval, histories = {}, {}, {}
for kind, binary in (("real", False), ("binary", True)):
    net = HourGlass.downscaled(block="bottleneck", binary=binary, seed=SEED, **NET)
    t0 = time.time()
    histories[kind] = Trainer(net, train_set, cfg, progress=False).fit(resume=False)
    live[kind] = net
    live_eval[kind] = evaluate(net, test_set, N_TEST, return_predictions=True)
    print(f"{kind:>6} bottleneck hourglass, {tb.count_parameters(net):,} parameters: {LIVE_STEPS} steps in "
          f"{time.time() - t0:.0f} s, loss {np.mean(histories[kind]['loss'][:20]):.1f} -> "
          f"{np.mean(histories[kind]['loss'][-20:]):.1f}, PCKh@0.5 {live_eval[kind]['pckh']:.1f}%")
    if not QUICK and source == "results/table1" and results[f"bottleneck_{kind}"]:   # same config only in full mode
        r0 = [r for r in results[f"bottleneck_{kind}"] if r["seed"] == SEED]
        if r0:
            print(f"        the runner's seed-{SEED} result for the same configuration: {r0[0]['metrics']['pckh']:.1f}%")

test_batch = test_set.batch(np.arange(N_TEST))
curves = {k: metrics.pckh_curve(v["pred"], v["gt"], test_batch["head_size"], v["annotated"]) for k, v in live_eval.items()}
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.8))
viz.plot_history(ax0, {f"{k} loss": h["loss"] for k, h in histories.items()}, logy=True)
ax0.set_title("training loss (sigmoid BCE)")
viz.plot_pckh_curve(ax1, {f"{k} bottleneck (live)": c for k, c in curves.items()})
ax1.set_title("PCKh vs threshold (live pair)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Fig. 4: failure cases of the binary network
#
# **Idea.** The paper shows poses that the binary hourglass gets wrong while the real one gets
# them right: "the binary HG misses certain range of poses while having similar accuracy for the
# correct parts". We rank the test images of the live pair by how much worse the binary network
# does than the real one, using the per-image error in head sizes, and draw the worst
# `N_FAILURES`. The top row shows the binary predictions and the bottom row the real ones, as in
# the paper. Right limbs are blue, left limbs red.

# %%
e_bin = np.asarray(live_eval["binary"]["errors"], dtype=np.float64)
e_real = np.asarray(live_eval["real"]["errors"], dtype=np.float64)
worse = np.where(np.isfinite(e_bin) & np.isfinite(e_real), e_bin - e_real, -np.inf)
order = np.argsort(-worse)[:N_FAILURES]
fig, axes = plt.subplots(2, N_FAILURES, figsize=(2.6 * N_FAILURES, 5.4))
for j, i in enumerate(order):
    for row_i, kind in enumerate(("binary", "real")):
        ev = live_eval[kind]
        viz.draw_pose(axes[row_i, j], test_batch["image"][i], ev["pred"][i], linewidth=1.5, markersize=3)
        axes[row_i, j].set_title(f"{kind} #{i}: err {ev['errors'][i]:.2f}", fontsize=8)
fig.suptitle("Fig. 4 (live pair): binary (top) vs real (bottom) on the images where binary does worst", fontsize=10)
plt.tight_layout()
plt.show()
frac_worse = float(np.mean(worse[np.isfinite(worse)] > 0))
print(f"binary error > real error on {100 * frac_worse:.0f}% of the {int(np.isfinite(worse).sum())} test images")

# %% [markdown]
# ## 5. §4.5: gradients of the binary network are smaller
#
# **Idea.** The paper reports that the gradients of its binary network are "up to 10 times
# smaller" than those of the real network, and designs its block (notebook 03) so that every
# layer has a short path to the output. We measure it directly. We feed one batch through both
# networks, backpropagate the sigmoid loss, and compare the mean $|\partial L/\partial W|$ of
# corresponding convolution weights, layer by layer. For a binary layer this is the
# straight-through gradient that reaches the latent real weights. We do it twice: at
# initialisation (fresh networks with the same seed) and after the live training.
#
# **Check.** The stem 7×7 conv and the last 1×1 conv are real in both networks. They are marked
# in the plot, and they are not part of what §4.5 is about.

# %%
def weight_grad_magnitudes(net, batch):
    """{conv weight name: mean |dL/dW|} after one forward/backward on `batch` (net left unchanged)."""
    net = copy.deepcopy(net)          # the forward updates BatchNorm statistics; keep the original intact
    net.train()
    net.zero_grad()
    loss = compute_loss(net(Tensor(np.ascontiguousarray(batch["image"], dtype=np.float32))), batch, TrainConfig())
    loss.backward()
    return {n: float(np.abs(p.grad).mean()) for n, p in net.named_parameters()
            if n.endswith("weight") and p.data.ndim == 4 and p.grad is not None}


grad_batch = train_set.batch(np.arange(BATCH), augment=False)
grads = {}
for when, nets in (("init", {k: HourGlass.downscaled(block="bottleneck", binary=(k == "binary"), seed=SEED, **NET)
                             for k in ("real", "binary")}),
                   ("trained", live)):
    g_real, g_bin = weight_grad_magnitudes(nets["real"], grad_batch), weight_grad_magnitudes(nets["binary"], grad_batch)
    names = [n for n in g_real if n in g_bin]
    grads[when] = (names, np.array([g_real[n] for n in names]), np.array([g_bin[n] for n in names]))

real_layers = {"conv1.weight"} | {n for n in grads["init"][0] if n.endswith(".out.weight")}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
def stats_spearman(a, b):
    """Spearman rank correlation (ties are not expected here)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return np.corrcoef(ra, rb)[0, 1]


ratio_median, ratio_max, ratio_trend = {}, {}, {}
for ax, (when, (names, gr, gb)) in zip(axes, grads.items()):
    ratio = gr / gb
    binary_idx = [i for i, n in enumerate(names) if n not in real_layers]
    ratio_median[when] = float(np.median(ratio[binary_idx]))
    ratio_max[when] = float(np.max(ratio[binary_idx]))
    # does the ratio grow with the distance from the output (gradients fading through binary layers)?
    ratio_trend[when] = float(stats_spearman(binary_idx, ratio[binary_idx]))
    xs = np.arange(len(names))
    ax.semilogy(xs, ratio, "o-", ms=3, label="real / binary, mean |dL/dW|")
    for i, n in enumerate(names):
        if n in real_layers:
            ax.semilogy(i, ratio[i], "s", color="tab:orange", ms=7, label="layer real in both" if n == "conv1.weight" else None)
    ax.axhline(ratio_median[when], color="tab:blue", ls="--", lw=1, label=f"median over binary layers: {ratio_median[when]:.1f}x")
    ax.axhline(10, color="k", ls=":", lw=1, label="paper: up to 10x")
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_xlabel("conv layer (network order: stem -> hourglass -> head)")
    ax.set_title(f"{when}: gradient ratio per layer")
    ax.legend(fontsize=7)
axes[0].set_ylabel("real / binary")
plt.tight_layout()
plt.show()
for when, (names, gr, gb) in grads.items():
    print(f"{when:>7}: {len(names)} conv layers; mean |grad| real {gr.mean():.2e}, binary {gb.mean():.2e}; "
          f"ratio over binary layers: median {ratio_median[when]:.1f}x, max {ratio_max[when]:.1f}x; rank correlation "
          f"with layer depth {ratio_trend[when]:+.2f} (negative: larger ratio near the input)")

# %% [markdown]
# ## What we found vs the paper
#
# The cell below fills in this run's numbers. With `TINYBIN_QUICK=1` they come from networks
# trained for a few steps and mean nothing.

# %%
lines = []
if len(table1) == 2:
    ours_r, ours_b = table1["bottleneck_real"]["PCKh"][0], table1["bottleneck_binary"]["PCKh"][0]
    gaps = {p: table1["bottleneck_real"][p][0] - table1["bottleneck_binary"][p][0] for p in MPII_PARTS}
    worst3 = sorted(gaps, key=gaps.get, reverse=True)[:3]
    n_pos = sum(g > 0 for g in gaps.values())
    lines.append(f"- Table 1 ({source}): real {ours_r:.1f} vs binary {ours_b:.1f} PCKh, a gap of {ours_r - ours_b:.1f} "
                 f"points (paper on MPII: 76.5 vs 67.2, 9.3 points). "
                 + ("Binarization costs accuracy here too. " if ours_r > ours_b else
                    "Here the binary network is NOT worse, unlike the paper. ")
                 + f"The real network is better on {n_pos} of 7 parts (paper: 7 of 7); our largest gaps are "
                 f"{', '.join(f'{p} {gaps[p]:.1f}' for p in worst3)} (paper: Wrist 14.1, Elbow 13.9, Knee 11.9).")
else:
    lines.append("- Table 1: not run yet (`python -m tinybin.experiments run table1 --seeds 3`).")
if len(ced_errors) == 2:
    (l_r, e_r), (l_b, e_b) = ced_errors.items()
    lines.append(f"- Fig. 3: the real network's CED curve has AUC@1 {metrics.auc(e_r, 1.0):.3f} against "
                 f"{metrics.auc(e_b, 1.0):.3f} for the binary one; "
                 + ("as in the paper, the real curve lies above." if metrics.auc(e_r, 1.0) > metrics.auc(e_b, 1.0)
                    else "unlike the paper, the binary curve is not below the real one."))
lines.append(f"- Live pair ({LIVE_STEPS} steps, seed {SEED}): real {live_eval['real']['pckh']:.1f} vs binary "
             f"{live_eval['binary']['pckh']:.1f} PCKh; the binary network is worse than the real one on "
             f"{100 * frac_worse:.0f}% of the test images. Its worst images (Fig. 4 above) are drawn from this pair.")
lines.append(f"- Gradients (§4.5): the real network's weight gradients are larger than the binary one's by a median "
             f"{ratio_median['init']:.1f}x at initialisation (up to {ratio_max['init']:.1f}x) and {ratio_median['trained']:.1f}x after "
             f"training (up to {ratio_max['trained']:.1f}x). "
             + ("The largest ratios sit in the layers nearest the input, where the gradient has crossed the most binary "
                "layers. " if ratio_trend["init"] < -0.3 else "")
             + ("This agrees with the paper's 'up to 10 times smaller'." if max(ratio_max.values()) >= 5 else
                "This points the same way as the paper's 'up to 10 times smaller', by a smaller factor."
                if max(ratio_max.values()) >= 1.5 else
                "We do not see the paper's 'up to 10 times smaller' gradients."))
lines.append("- Not comparable: absolute PCKh (synthetic 64x64 poses, a network 1/4 as wide and one level "
             "shallower, minutes of training instead of days on MPII).")
print("\n".join(lines))

# %% [markdown]
# ## Exercises
#
# 1. Train the live pair with `loss="mse"` (the L2 heatmap loss) instead of the sigmoid
#    cross-entropy. The paper (§5) reports that the sigmoid loss gives 10–15x larger gradients.
#    Measure that with `weight_grad_magnitudes`.
# 2. Which joints fail in the failure cases? Plot per-joint PCKh (`live_eval[k]["pckh_joints"]`)
#    against the joint's distance from the pelvis, for both networks.
# 3. The binary network's gradient with respect to a latent weight goes straight through α and
#    the sign. Compute the ratio of section 5 separately for 1×1 and 3×3 layers. Is either kind
#    more affected?
# 4. Raise `difficulty` in `E.make_data` to 0.8 and retrain the pair briefly. Does the gap grow?
# 5. Replace the per-image mean error of the CED with the per-image *maximum* joint error. How
#    do the two curves change?
