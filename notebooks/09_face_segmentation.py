# %% [markdown]
# # 09 · Facial part segmentation: does the binary HPM block nearly match a real network?
#
# **Goal.** Use the same hourglass, with 7 output maps and a per-pixel softmax, to label every
# pixel of a face as background, skin, lower lip, upper lip, inner mouth, eyes or nose. Compare a
# real bottleneck network, a binary bottleneck network and a binary HPM network.
#
# **Paper.** §9, Table 12 (300W Indoor & Outdoor, pixel accuracy / mean accuracy / mean IU):
# real bottleneck 97.98 / 77.23 / 69.29; binary bottleneck 97.41 / 70.35 / 62.49; binary HPM
# ("Ours") 97.91 / 76.02 / 68.05. The masks are made "by joining together the 68 ground truth
# landmarks to fully enclose each facial component" (Fig. 14). Fig. 16 shows hard cases side by
# side. The paper makes two claims. The binary HPM network "significantly outperforms" the binary
# bottleneck network. It "almost matches" the real-valued one.
#
# **Data and scale.** `SyntheticFaceParts`: the faces of `SyntheticFace` (difficulty 0.3, |yaw| up
# to 48°, a spread like 300W's), with masks filled from the projected 68 points by the polygons of
# `tinybin.skeletons.FACE_PART_POLYGONS`. Crops are 64×64. Labels are scored at the 16×16 output
# resolution (stride 4), as the paper scores at its 64×64 output. The networks are
# `HourGlass.downscaled` with 7 maps, trained with `tinybin.losses.cross_entropy` (log-softmax).
# The numbers come from `python -m tinybin.experiments run table12`, one JSON file per (row, seed)
# in `results/table12/`.
#
# **Modules used.** `tinybin.data` (`SyntheticFace`, `SyntheticFaceParts`), `tinybin.skeletons`
# (`FACE_PARTS`, `FACE_PART_POLYGONS`), `tinybin.metrics` (`confusion`, `segmentation_scores`),
# `tinybin.train` (`mask_targets`, `Trainer`, `predict`), `tinybin.experiments`
# (`table12_report`, `table12_summary`), `tinybin.packed`, `tinybin.viz` (`draw_face`, `draw_mask`).
#
# **CPU time** on the 2-core machine: about 6 minutes without checkpoints in `runs/` (three live
# networks for the qualitative figure). With `TINYBIN_QUICK=1`, about 20 s.

# %%
import os
import time

# One BLAS thread and one Numba thread (see notebook 03). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
RESULTS = os.path.join(os.path.dirname(HERE), "results")
RUNS = os.path.join(os.path.dirname(HERE), "runs")

import warnings

import matplotlib.pyplot as plt
import numpy as np

warnings.filterwarnings("ignore", message="IProgress not found")

import tinybin as tb
from tinybin import HourGlass
from tinybin import experiments as E
from tinybin.notebook import fmt_ci, plot_loss_drift, show_md
from tinybin import metrics, viz
from tinybin.data import SyntheticFace, SyntheticFaceParts
from tinybin.skeletons import FACE_PART_POLYGONS, FACE_PARTS
from tinybin.train import TrainConfig, Trainer, mask_targets, predict

QUICK = os.environ.get("TINYBIN_QUICK") == "1"

# sizes
RESOLUTION = 32 if QUICK else E.DATA["resolution"]
LIVE_STEPS = 3 if QUICK else 400          # each live network, when runs/ has no checkpoint
BATCH = 4 if QUICK else E.BUDGET["batch_size"]
N_TRAIN = 32 if QUICK else E.DATA["n_train"]
N_STATS = 40 if QUICK else 400            # faces for the class statistics
NET = dict(width=16, depth=2, resolution=32) if QUICK else {}
SEED = 0
ROWS = E.get("table12").rows
print(f"QUICK={QUICK}: live networks {LIVE_STEPS} steps at {RESOLUTION}x{RESOLUTION}")


# %% [markdown]
# ## 1. Fig. 14: masks by joining the 68 points
#
# **Idea.** Each class is one or more polygons through landmarks, filled in order, with later
# polygons painted over earlier ones:
#
# * skin: the jaw line (0–16) closed over the brows (26 → 17);
# * nose: bridge top and nostril line (27, 31–35), plus two triangles from the bridge top through
#   the tip (27–30–31, 27–35–30). Under yaw the tip leaves the first polygon, and beyond about 30°
#   it leaves the face outline as well. The triangles keep the nose "fully enclosed";
# * eyes: the two six-point contours;
# * upper lip, lower lip: the outer lip contour closed along the inner one;
# * inner mouth: the inner lip contour.
#
# Pixels outside all polygons are background. The polygons are filled at pixel centres with the
# non-zero winding rule, so a contour that folds over itself under strong yaw (the nostril line)
# still fills where it winds.

# %%
show_md("| order | class | landmarks |\n|---|---|---|\n" + "\n".join(
    f"| {i} | {name} | {', '.join(map(str, idx))} |" for i, (name, idx) in enumerate(FACE_PART_POLYGONS)))
demo = SyntheticFace(8, resolution=128, seed=3, difficulty=0.3, yaw_range=(-70, 70))
yaws = np.array([demo[i]["yaw"] for i in range(len(demo))])
pick = np.argsort(yaws)[[0, len(yaws) // 2, -1]]
fig, axes = plt.subplots(2, 3, figsize=(10, 6.8))
for j, i in enumerate(pick):
    s = demo[int(i)]
    viz.draw_face(axes[0, j], s["image"], s["points"], markersize=2)
    axes[0, j].set_title(f"68 points, yaw {s['yaw']:+.0f}°", fontsize=9)
    viz.draw_mask(axes[1, j], None, s["mask"], legend=(j == 2))
    axes[1, j].set_title("7-class mask", fontsize=9)
plt.suptitle("Fig. 14 from our generator: masks from the 68 points", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. What is scored: labels at the output resolution, and how rare the small parts are
#
# **Idea.** The network's output is 16×16 at R = 64. Its label map is the mask sampled at the
# input pixel under each output pixel (`tinybin.train.mask_targets`). The eyes and the inner mouth
# then cover only a few output pixels per face. This makes their IU noisy, and mean IU is the
# plain average over the 7 classes. The table below gives each class's share of pixels at full
# and at output resolution. Before any network is trained, these shares bound what pixel
# accuracy can reveal: labelling everything "background" already scores the background share.
#
# **By hand.** FCN's scores come from one confusion matrix accumulated over the whole set.
# $\text{pixel acc} = \operatorname{tr} H / \sum H$,
# $\text{mean acc} = \operatorname{mean}_c H_{cc} / \sum_p H_{cp}$ and
# $\text{mean IU} = \operatorname{mean}_c H_{cc} / (\sum_p H_{cp} + \sum_g H_{gc} - H_{cc})$.
# For a 2-class example with H = [[3, 1], [0, 4]]: pixel acc 7/8, mean acc (3/4 + 1)/2 = 0.875,
# mean IU (3/4 + 4/5)/2 = 0.775.

# %%
H = np.array([[3, 1], [0, 4]])
sc = metrics.segmentation_scores(H)
print(f"hand case: pixel acc {sc['pixel_acc']:.3f}, mean acc {sc['mean_acc']:.3f}, mean IU {sc['mean_iu']:.3f}")
assert np.isclose(sc["pixel_acc"], 7 / 8) and np.isclose(sc["mean_acc"], 0.875) and np.isclose(sc["mean_iu"], 0.775)
parts = SyntheticFaceParts(N_STATS, resolution=64, seed=SEED, difficulty=E.DATA["difficulty"], split="val")
masks = parts.batch(np.arange(len(parts)))["mask"]
low = mask_targets(masks, (16, 16), 4)
full_share = np.bincount(masks.ravel(), minlength=7) / masks.size
low_share = np.bincount(low.ravel(), minlength=7) / low.size
show_md("| class | share of pixels, 64x64 | share at the 16x16 output | output pixels per face |\n|---|---|---|---|\n"
        + "\n".join(f"| {c} | {100 * a:.1f}% | {100 * b:.1f}% | {b * 256:.1f} |"
                    for c, a, b in zip(FACE_PARTS, full_share, low_share)))
conf_bg = metrics.confusion(np.zeros_like(low), low, 7)
print(f"all-background baseline: pixel acc {100 * metrics.segmentation_scores(conf_bg)['pixel_acc']:.1f}%, "
      f"mean IU {100 * metrics.segmentation_scores(conf_bg)['mean_iu']:.1f}%")

# %% [markdown]
# **How much of each part is outline?** The paper scores 64×64 outputs of 256-px crops; we score
# 16×16 outputs of 64-px crops of faces framed the same way. The same face therefore has 16 times
# fewer labelled pixels per part here, and a larger share of them touch another class
# (`metrics.boundary_share`: a pixel with a 4-neighbour of another label). A network whose maps
# are blurrier (binary networks, paper Fig. 13) errs first along outlines, so the more of a part
# is outline, the more of its IU such errors cost. Our 64×64 masks stand in for the paper's
# 64×64 label grid: the same faces at the paper's number of output pixels.

# %%
edge_low = metrics.boundary_share(low, 7)
edge_full = metrics.boundary_share(masks.astype(np.int64), 7)
show_md("| class | outline share at 16x16 (ours) | outline share at 64x64 (the paper's grid) |\n|---|---|---|\n"
        + "\n".join(f"| {c} | {100 * a:.0f}% | {100 * b:.0f}% |" for c, a, b in zip(FACE_PARTS, edge_low, edge_full)))

# %% [markdown]
# ## 3. Protocol (fixed before the results)
#
# * **Rows.** Real bottleneck, binary bottleneck (the reference), binary HPM. All are
#   `HourGlass.downscaled` with 7 maps and the per-pixel log-softmax cross-entropy (`loss="ce"`),
#   trained on `SyntheticFaceParts` (3000 training images, 400 test images, difficulty 0.3), with
#   the recipe and budget chosen on the validation split of the *pose* task (calibration sweep and
#   pilot) and carried over unchanged: there is no segmentation calibration. §5b checks from the
#   training losses whether the comparisons were still moving when training stopped. No flip
#   testing (the masks are symmetric, but the paper reports none for segmentation).
# * **Seeds.** Shared seeds: 5 for binary HPM vs binary bottleneck, 3 for the real network.
#   Mean ± std per row and paired differences with 95% t-intervals.
# * **Scores.** Pixel accuracy, mean accuracy and mean IU (FCN, one confusion matrix over the
#   test set) at the output resolution, plus per-class IU.
# * **Claims and how they are judged.** (1) Binary HPM beats binary bottleneck: the paired Δ mean
#   IU has its CI above 0. (2) Binary HPM almost matches the real network. We make "almost"
#   operational before seeing numbers: HPM's gap to the real network is less than half the
#   binary bottleneck's gap (the paper: 1.24 vs 6.80 IU points), tested per seed on
#   (real − HPM) − (real − bottleneck)/2 < 0. *Agrees* / *disagrees* / *unresolved* as the 95% CI
#   lies below, above, or across 0.
# * Absolute scores are not comparable with 300W's. The verdicts compare paired gaps.

# %%
exp = E.get("table12")
results = E.load_results("table12", RESULTS)
source = "results/table12"
if not any(results.values()):
    if QUICK:
        source = "QUICK smoke runs (4 steps at 32x32; the numbers mean nothing)"
        for seed in (0, 1):
            for row in exp.rows:
                results[row.name].append(E.run_one(exp, row, seed, quick=True, progress=False))
    else:
        source = None
if source is None:
    show_md("**Table 12: not run yet.** Run `python -m tinybin.experiments run table12 --seeds 5` "
            "(with the calibrated recipe), then re-run this notebook.")
    summary = None
else:
    show_md(f"Source: {source}.\n\n" + E.table12_report(results=results))
    summary = E.table12_summary(results)

# %% [markdown]
# ## 4. Table 12 and per-class IU as figures
#
# Left: the three scores, ours (mean ± std) and the paper's. Right: per-class IU. The small parts
# (eyes, inner mouth) are where binary networks are expected to lose most.

# %%
if summary is not None and any(r["n"] for r in summary["rows"]):
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4))
    xs = np.arange(3)
    for j, r in enumerate(summary["rows"]):
        m = [r["scores"][k]["mean"] for k in E.SEG_SCORES]
        sd = [r["scores"][k]["std"] for k in E.SEG_SCORES]
        ax0.bar(xs + (j - 1) * 0.25, m, 0.25, yerr=sd, capsize=2, label=f"ours: {r['label']}")
        ax0.plot(xs + (j - 1) * 0.25, [r["paper"][k] for k in E.SEG_SCORES], "k_", ms=14,
                 label="paper (300W)" if j == 0 else None)
        if r["iu"] is not None:
            ax1.bar(np.arange(7) + (j - 1) * 0.25, r["iu"], 0.25, label=r["label"])
    ax0.set_xticks(xs, ["pixel acc.", "mean acc.", "mean IU"])
    ax0.set_ylabel("%")
    ax0.set_title("Table 12")
    ax0.legend(fontsize=7)
    ax1.set_xticks(np.arange(7), FACE_PARTS, rotation=30)
    ax1.set_ylabel("IU %")
    ax1.set_title("per-class IU (mean over seeds)")
    ax1.legend(fontsize=7)
    plt.tight_layout()
    plt.show()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for j, (label, d) in enumerate(summary["pairs"].items()):
        dd = d["mean_iu"]
        if dd["n"]:
            ax.errorbar([dd["mean"]], [j], xerr=[[dd["half"] or 0], [dd["half"] or 0]], fmt="o", capsize=4)
        a, b = label.split(" - ")
        names = {"binary HPM": "seg_hpm_binary", "binary bottleneck": "seg_bottleneck_binary",
                 "real bottleneck": "seg_bottleneck_real"}
        pd_ = E.PAPER_TABLE12[names[a]]["mean_iu"] - E.PAPER_TABLE12[names[b]]["mean_iu"]
        ax.plot([pd_], [j], "kx", ms=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(summary["pairs"])), list(summary["pairs"]))
    ax.set_xlabel("paired Δ mean IU (points), 95% CI; x: paper")
    plt.tight_layout()
    plt.show()
else:
    print("Table 12 figures: not run yet")

# %% [markdown]
# ## 5. Verdicts
#
# These are computed from the CIs of §3's protocol. Nothing here is written by hand.

# %%
if summary is not None:
    lines = ["| paper claim | ours: Δ mean IU, mean [95% CI] (pairs) | verdict |", "|---|---|---|"]
    for c in summary["claims"]:
        d = c["diff"]
        ci = "–" if not d["n"] else (f"{d['mean']:+.2f} (1 pair)" if d["half"] is None else
                                     f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}] ({d['n']})")
        lines.append(f"| {c['claim']} | {ci} | **{c['verdict']}** |")
    show_md(f"Source: {source}.\n\n" + "\n".join(lines))
else:
    print("verdicts: not run yet (no results/table12)")

# %% [markdown]
# ## 5b. Was the pose budget long enough for segmentation?
#
# The budget was set on the pose pilot (§3). Rows with the same seed see the same batches, so the
# training-loss difference between two rows is paired step by step. If it were still moving when
# training stopped, a longer budget could change the ranking. Left: the cross-entropy difference
# against the binary bottleneck over training. Right: how much it moved between the last 10% of
# steps and the 10% before, with its 95% CI over seeds.

# %%
if summary is not None and any(r["n"] for r in summary["rows"]):
    drift = plot_loss_drift(results, "seg_bottleneck_binary", {r.name: r.label for r in exp.rows},
                            "Segmentation: training loss against the binary bottleneck", digits=4)
else:
    print("budget check: not run yet")

# %% [markdown]
# ## 6. Fig. 16: hard cases side by side
#
# **Idea.** Use the three networks on hard faces: large yaw (|yaw| from 60° to 90°, beyond the
# training spread) and the hardest setting of the generator (`difficulty=1`: occluders, clutter,
# stronger lighting and pose). A network is loaded from
# `runs/<row>/checkpoint.npz` when present. Such a file is written by
# `python -m tinybin train --data segmentation [--real] --block ... --difficulty 0.3 --out runs/<row>`.
# Otherwise it is trained live for `LIVE_STEPS` steps. The binary networks run packed; the check
# below confirms that packed and float give the same labels.

# %%
(train_parts,) = E.make_data("segmentation", seed=SEED, n_train=N_TRAIN, resolution=RESOLUTION, splits=("train",))
nets, origin = {}, {}
for row in ROWS:
    ck = os.path.join(RUNS, row.name, "checkpoint.npz")
    if os.path.exists(ck) and not QUICK:
        from tinybin.__main__ import load_network
        nets[row.name] = load_network(ck)
        origin[row.name] = "checkpoint"
        continue
    net = HourGlass.downscaled(seed=SEED, **{**row.net, **NET})
    t0 = time.time()
    cfg = TrainConfig.recommended(binary=net.config["binary"], steps=LIVE_STEPS, batch_size=BATCH, seed=SEED,
                                  loss="ce")  # the calibrated recipe of this kind of network
    Trainer(net, train_parts, cfg, progress=False).fit(resume=False)
    nets[row.name] = net
    origin[row.name] = f"live {LIVE_STEPS} steps, {time.time() - t0:.0f} s"
print(origin)
R_live = next(iter(nets.values())).config["resolution"]
hard_yaw = SyntheticFaceParts(3, resolution=R_live, seed=SEED + 7, split="test", difficulty=0.3,
                              yaw_range=(60, 90))
hard_occ = SyntheticFaceParts(40, resolution=R_live, seed=SEED + 8, split="test", difficulty=1.0)
hb = hard_occ.batch(np.arange(len(hard_occ)))
occluded = np.arange(2)                                                # the first two of the hard set
images = np.concatenate([hard_yaw.batch(np.arange(3))["image"], hb["image"][occluded]])
gts = np.concatenate([hard_yaw.batch(np.arange(3))["mask"], hb["mask"][occluded]])
labels = {}
for name, net in nets.items():
    maps = predict(net, images)
    if net.config.get("binary", True):
        pk = tb.packed.pack(net)(images)
        np.testing.assert_allclose(pk, maps, rtol=1e-5, atol=1e-5)
        assert np.array_equal(pk.argmax(-1), maps.argmax(-1))
        maps = pk
    labels[name] = maps.argmax(-1)
print("packed == float labels for the binary networks")
out = labels[ROWS[0].name].shape[1]
cols = ["image", "ground truth"] + [r.label for r in ROWS]
fig, axes = plt.subplots(len(images), len(cols), figsize=(2.2 * len(cols), 2.2 * len(images)))
for i in range(len(images)):
    axes[i, 0].imshow(images[i])
    viz.draw_mask(axes[i, 1], None, mask_targets(gts[i:i + 1], (out, out), 4)[0], legend=False)
    for j, r in enumerate(ROWS):
        viz.draw_mask(axes[i, 2 + j], None, labels[r.name][i], legend=False)
    for j, c in enumerate(cols):
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if i == 0:
            axes[i, j].set_title(c, fontsize=8)
axes[0, 0].set_ylabel("yaw 60-90°", fontsize=8)
axes[3, 0].set_ylabel("difficulty 1", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. What we found, against the paper
#
# The bullets below are computed from the committed results (§3-§5b); only the explanations are
# written by hand.

# %%
if summary is not None and any(r["n"] for r in summary["rows"]):
    c1, c2 = summary["claims"]
    pairs = summary["pairs"]
    rows = {r["row"]: r for r in summary["rows"]}
    paper = {k: E.PAPER_TABLE12[k]["mean_iu"] for k in rows}
    real, bb, hpm = (rows[k] for k in ("seg_bottleneck_real", "seg_bottleneck_binary", "seg_hpm_binary"))
    drift = E.loss_drift(results, "seg_bottleneck_binary")
    moving = [exp.row(n).label for n, d in drift.items()
              if d["drift"]["n"] > 1 and (d["drift"]["lo"] > 0 or d["drift"]["hi"] < 0)]
    lines = [
        f"* **Binary HPM beats binary bottleneck: {c1['verdict']}.** Mean IU {fmt_ci(c1['diff'])} points "
        f"(paper: {paper['seg_hpm_binary'] - paper['seg_bottleneck_binary']:+.2f}).",
        f"* **Binary HPM almost matches the real network: {c2['verdict']}.** (real − HPM) − (real − binary "
        f"bottleneck)/2 = {fmt_ci(c2['diff'])} points; below zero would agree. The gaps themselves: real − HPM "
        f"{-pairs['binary HPM - real bottleneck']['mean_iu']['mean']:.2f}, real − binary bottleneck "
        f"{-pairs['binary bottleneck - real bottleneck']['mean_iu']['mean']:.2f} (paper: "
        f"{paper['seg_bottleneck_real'] - paper['seg_hpm_binary']:.2f} and "
        f"{paper['seg_bottleneck_real'] - paper['seg_bottleneck_binary']:.2f}).",
    ]
    if real["iu"] is not None and hpm["iu"] is not None:
        gap = np.asarray(real["iu"]) - np.asarray(hpm["iu"])
        lines.append("* **Where the real−HPM gap sits** (IU points per class): " + ", ".join(
            f"{c} {g:+.1f}" for c, g in zip(FACE_PARTS, gap)) + ".")
    lines.append(f"* **Budget.** Paired training-loss differences still moving over the last 10% of steps (§5b): "
                 f"{', '.join(moving) if moving else 'none'}.")
    show_md("\n".join(lines))
else:
    print("not run yet")

# %% [markdown]
# **What the verdicts rest on, and what they do not say.**
#
# * The masks follow the paper's construction from the 68 points, including a nose that stays
#   enclosed under yaw (§1).
# * At the 16×16 output every part but skin and background is all outline (§2): a one-pixel error
#   along a lip or an eye is a large share of its IU. At the paper's 64×64 grid most of the nose
#   and the inner mouth have an interior. Binary networks make blurrier maps (paper Fig. 13), so a
#   scale at which parts are pure outline inflates the real–binary gap, as PCKh@0.5 at 64 px does
#   for pose (notebook 02). This is our explanation of why "almost matches" does not reproduce;
#   we have not tested it by training at R = 256.
# * Pixel accuracy is mostly background and skin (§2); the paper's pixel accuracies differ by only
#   0.6 points for the same reason.
# * The recipe and budget come from the pose task (§3); §5b is the only segmentation-specific
#   evidence that the budget was long enough.
# * The packed binary networks give the same labels as their float versions (§6).
#
# **Exercises.** (1) Score the masks at full resolution by upsampling the logits (bilinear) before
# the argmax: how do mean IU and the per-class IU of the eyes change? (2) Train on
# `SyntheticFaceParts(yaw_range=(-90, 90))` and test on the hard faces of §6. (3) Add FCN's
# frequency-weighted IU (`fw_iu`) to the report: which row does it favour, and why? (4) Test the
# outline explanation of §7: train the real bottleneck and the binary HPM at R = 128 (a 32×32
# output) on two seeds, with a copy of the `table12` experiment whose rows carry
# `resolution=128, depth=4` and `data_opts={"resolution": 128}`, as `scale_resolution` does for
# pose. Does the real−HPM gap in mean IU shrink?
