# %% [markdown]
# # 02 · Real vs binary bottleneck: how much does binarization cost?
#
# **Goal.** Take the same single hourglass built from Newell's bottleneck block (paper Fig. 7a),
# once with real-valued and once with binary convolutions, and measure what binarization costs
# under a protocol that keeps what the paper's metric means at our small scale.
#
# **Paper.** Table 1 (PCKh per part, real 76.5 vs binary 67.2 on MPII: a 9.3-point gap), and
# §4.5: the binary network's gradients are "up to 10 times smaller" than the real network's. The
# hierarchical block closes part of the gap: real HPM 85.5 (Table 3) vs binary HPM 76.0 (Table 2).
#
# **Order of this notebook.** The protocol comes first, written before any test number under it
# existed (section 1). Then why the protocol changed, from the first protocol's superseded results
# (section 2); the calibration sweep on the validation split (section 3); the budget pilot
# (section 4); Table 1 under the protocol (section 5) and at two larger scales (section 5b);
# gradients (section 6); the verdicts, computed from the numbers (last section).
#
# **CPU time** on the 2-core machine: under a minute (it reads result files and runs one
# forward/backward pass per network). With `TINYBIN_QUICK=1` (CI), missing results are replaced by
# smoke runs of a few steps at 32×32 in a temporary folder, whose numbers mean nothing.

# %% [markdown]
# ## 1. The protocol (fixed before the numbers)
#
# The paper trains on MPII at 256×256 for days; we train on `tinybin.data.SyntheticPose` (64×64
# crops, the 16 MPII joints) with `HourGlass.downscaled` (F = 64, D = 3) for minutes. Absolute
# numbers cannot be compared with the paper's; gaps and orderings can, if the test means the same.
#
# 1. **Three splits.** Every seed generates disjoint train, validation and test splits, each with
#    its own sample seeds. Anything chosen from data is chosen on validation; the test split is
#    only reported. The runner's `calibration` and `pilot` experiments build only the train and
#    validation splits, so they cannot read the test split.
# 2. **Calibration on validation.** The learning rate (separately for binary and real networks),
#    a linear warm-up, and clipping the latent weights of binary layers to [−1, 1] (as XNOR-Net
#    does) are swept on the validation split (`python -m tinybin.experiments calibrate`,
#    `results/calibration/`, section 3). The chosen values become the runner's recipe
#    (`tinybin.experiments.RECIPE`, or `--recipe file.json`).
# 3. **Budget.** The number of steps is chosen where the paired differences the tables compare
#    stop moving on validation (the `pilot` experiment evaluates on validation every 500 steps,
#    `results/pilot/`, section 4).
# 4. **Seeds and pairing.** At least 5 seeds per row; rows share seeds (same data, same order),
#    so rows are compared by the **paired difference over seeds**, mean and 95% t-interval.
# 5. **Two metrics.** `pckh`, PCKh@0.5 (the paper's formula at our scale), and `pckh_matched`,
#    PCKh at the threshold whose tolerance *in heatmap cells* equals PCKh@0.5's on 256-px MPII
#    crops. Every result stores each test sample's per-joint normalised distances, so any
#    threshold can be recomputed (`report --threshold T`).
# 6. **Flip testing** at evaluation, as the authors' demo does.
# 7. **Verdicts.** A claim *agrees* when the 95% interval of the paired difference excludes 0 on
#    the paper's side, *disagrees* when it excludes 0 on the other side, and is *unresolved* at
#    this power otherwise (`tinybin.experiments.claim_verdict`). Disagreement is a result, not a
#    reason to tune.
#
# **The matched tolerance** (derivation in `tinybin.metrics`). On MPII the usual crop is a box of
# 1.25 × 200 × scale pixels resized to 256, which puts the head at 25.6 px of the 256-px crop
# (median over the 2,932 validation people; MPII's scale is 6 × the head-top-to-neck distance).
# Half a head is 12.8 px, **3.2 heatmap cells** at stride 4. Our synthetic crops frame people the
# same way, but the median head is **0.0973 of the crop**, 6.2 px at R = 64: half a head is 0.78
# cells, a sub-cell criterion that MPII never asked for. The threshold that allows 3.2 cells at
# R = 64 is 3.2 × 4 / 6.23 = **2.055 head sizes**: `pckh_matched` = PCKh@2.055. It asks the same
# of a 16×16 heatmap as PCKh@0.5 asks of MPII's 64×64 one; PCKh@0.5 at our scale asks four times
# more.

# %%
import atexit
import os
import shutil
import tempfile
import warnings

# One BLAS thread and one Numba thread: on a busy 2-core machine the two thread pools otherwise
# spin against each other. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

# The committed experiment results: results/ beside notebooks/ in the repository.
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
RESULTS = os.path.join(os.path.dirname(HERE), "results")
PROTOCOL1 = os.path.join(RESULTS, "protocol1")       # the first protocol's Tables 1-2 (superseded)

import matplotlib.pyplot as plt
import numpy as np

# tqdm.auto warns inside Jupyter when ipywidgets is missing; the notebooks show no progress bars
warnings.filterwarnings("ignore", message="IProgress not found")

import tinybin as tb
from tinybin import HourGlass, Tensor
from tinybin import experiments as E
from tinybin import notebook as NB
from tinybin.notebook import show_md
from tinybin import metrics
from tinybin.train import TrainConfig, compute_loss

QUICK = os.environ.get("TINYBIN_QUICK") == "1"
KEYS = ("pckh", "pckh_matched")
SEEDS = 5                      # seeds per row of the protocol's tables
SEED = 0
N_DEMO = 64 if QUICK else 400  # samples of the tolerance demonstration
BATCH = 4 if QUICK else 16     # batch of the gradient measurement
NET = dict(width=16, depth=2, resolution=32) if QUICK else {}   # HourGlass.downscaled defaults: F=64, D=3, R=64
print(f"QUICK={QUICK}")


_TMP = []


def smoke_root():
    """A temporary results folder for QUICK smoke runs (removed at exit)."""
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="tinybin-nb02-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return _TMP[0]


def results_root(name, rows=None, seeds=2):
    """(folder, description) of experiment `name`'s results: results/ when it has any; in QUICK
    mode without them, smoke runs (a few steps at 32x32) in a temporary folder; else (None, None)."""
    if any(E.load_results(name, RESULTS).values()):
        return RESULTS, f"results/{name}"
    if QUICK:
        E.run(name, seeds=seeds, root=smoke_root(), rows=rows, quick=True, progress=False, jobs=1)
        return smoke_root(), "QUICK smoke runs (a few steps at 32x32: the numbers mean nothing)"
    return None, None


# %% [markdown]
# ### The numbers of the derivation, from `tinybin.metrics`, and what a sub-cell tolerance does
#
# **Check.** Predictions that are exactly right except for being off by one heatmap cell (4 px in
# a random direction along x or y) are what a slightly blurred map gives. At R = 64 PCKh@0.5 should
# reject almost all of them and `pckh_matched` accept them, as PCKh@0.5 would on MPII crops.

# %%
R = E.DATA["resolution"]
thr = metrics.matched_threshold(R)
print(f"MPII head in a 256-px crop: {metrics.MPII_CROP_HEAD_PX} px -> PCKh@0.5 tolerance "
      f"{metrics.MPII_TOLERANCE_CELLS:.2f} heatmap cells (stride 4)")
print(f"synthetic median head: {metrics.SYNTHETIC_POSE_HEAD_FRACTION} of the crop = "
      f"{metrics.SYNTHETIC_POSE_HEAD_FRACTION * R:.2f} px at R={R} -> PCKh@0.5 tolerance "
      f"{0.5 * metrics.SYNTHETIC_POSE_HEAD_FRACTION * R / 4:.2f} cells")
print(f"matched threshold at R={R}: {thr:.3f} head sizes (R=128: {metrics.matched_threshold(128):.3f})")

(demo_set,) = E.make_data("pose", seed=SEED, n_train=N_DEMO, resolution=R, splits=("train",))
b = demo_set.batch(np.arange(N_DEMO))
gt, hs, vis = b["points"], b["head_size"], b["visible"]
rng = np.random.default_rng(SEED)
axis = rng.integers(0, 2, gt.shape[:2])
step = np.where(rng.random(gt.shape[:2]) < 0.5, -4.0, 4.0)
one_cell = gt.copy()
one_cell[..., 0] += np.where(axis == 0, step, 0)
one_cell[..., 1] += np.where(axis == 1, step, 0)
tol_demo = {}
for name, pred in (("exact", gt), ("off by one cell (4 px)", one_cell)):
    tol_demo[name] = {k: metrics.pckh(pred, gt, hs, vis, t)["mean"] for k, t in (("pckh", 0.5), ("pckh_matched", thr))}
    print(f"{name:>24}: PCKh@0.5 {tol_demo[name]['pckh']:5.1f}%   PCKh@{thr:.3f} {tol_demo[name]['pckh_matched']:5.1f}%")
print(f"median head size in this sample: {np.median(hs):.2f} px ({np.median(hs) / R:.4f} of the crop)")

# %% [markdown]
# ## 2. Why the protocol changed: the first protocol's results (superseded)
#
# **These numbers are superseded.** The first protocol trained 900 steps at a learning rate of
# 5e-3 → 1e-3 (20× the paper's 2.5e-4) chosen *on the test split* together with the data
# difficulty, scored PCKh@0.5 only, without flip testing, over 3 seeds. Its Table 1 said the binary
# network loses 23 points (paper: 9.3). They are kept in `results/protocol1/` only to show what was
# wrong with that test:
#
# * **the tolerance was below one heatmap cell** (section 1): the per-image error distributions
#   below show how much of the gap sits between 0.5 and 2 head sizes;
# * **the learning rate was chosen on test**, and is far from the paper's;
# * **training had not converged**: the loss was still falling at step 900.
#
# The files store each test image's mean joint error in head sizes (not the per-joint distances
# the new protocol stores), so the share of images under a threshold is what can be recomputed.

# %%
p1 = E.load_results("table1", PROTOCOL1) if os.path.isdir(PROTOCOL1) else {}
p1_stats = {}
if any(p1.values()):
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.8))
    for row, col in (("bottleneck_real", "tab:red"), ("bottleneck_binary", "tab:blue")):
        runs = p1.get(row, [])
        if not runs:
            continue
        e = np.concatenate([np.asarray(r["errors"], np.float64) for r in runs if "errors" in r])
        e = e[np.isfinite(e)]
        p1_stats[row] = dict(pckh=float(np.mean([r["metrics"]["pckh"] for r in runs])), median=float(np.median(e)),
                             under_half=float(np.mean(e <= 0.5)), under_thr=float(np.mean(e <= thr)),
                             under_2=float(np.mean(e <= 2.0)), n=len(runs),
                             lr=(runs[0]["train_config"]["lr"], runs[0]["train_config"]["lr_end"]),
                             steps=runs[0]["train_config"]["steps"])
        xs = np.sort(e)
        ax0.plot(xs, np.arange(1, len(xs) + 1) / len(xs), color=col, label=f"{row} ({len(runs)} seeds)")
        lc = np.array([r["loss_curve"] for r in runs], np.float64)
        steps = np.linspace(0, runs[0]["train_config"]["steps"], lc.shape[1])
        ax1.plot(steps, lc.mean(0), color=col, label=row)
        tail = max(lc.shape[1] // 10, 1)
        p1_stats[row]["loss_drop_last10"] = float(1 - lc[:, -tail:].mean() / lc[:, -2 * tail:-tail].mean())
    for t, ls in ((0.5, ":"), (thr, "--")):
        ax0.axvline(t, color="k", ls=ls, lw=1, label=f"threshold {t:.3g}")
    ax0.set_xlim(0, 4)
    ax0.set_xlabel("mean joint error per test image / head size")
    ax0.set_ylabel("share of images")
    ax0.set_title("SUPERSEDED protocol 1: per-image error, Table 1", fontsize=9)
    ax0.legend(fontsize=8)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (mean over seeds)")
    ax1.set_title("SUPERSEDED protocol 1: the loss still falls at the end", fontsize=9)
    ax1.legend(fontsize=8)
    plt.tight_layout()
    plt.show()
    lines = ["| protocol 1 (superseded) | PCKh@0.5 | median image error | images ≤ 0.5 | images ≤ 2.055 | "
             "loss drop over the last 10% of steps | lr (start → end), steps |", "|---|---|---|---|---|---|---|"]
    for row, s in p1_stats.items():
        lines.append(f"| {row} ({s['n']} seeds) | {s['pckh']:.1f} | {s['median']:.2f} | {100 * s['under_half']:.0f}% | "
                     f"{100 * s['under_thr']:.0f}% | {100 * s['loss_drop_last10']:.1f}% | "
                     f"{s['lr'][0]:g} → {s['lr'][1]:g}, {s['steps']} |")
    show_md("\n".join(lines))
else:
    show_md("The first protocol's results (`results/protocol1/`) are not present.")

# %% [markdown]
# ## 3. Calibration on the validation split
#
# **Idea.** Sixteen cells first: binary HPM at four learning rates (2.5e-4 to 5e-3) with and
# without latent clipping; real HPM at the same four rates; warm-up over the first 10% of steps at
# the two largest rates for both. Each trains 2,000 steps and is evaluated on the **validation**
# split every 250 steps. The best cell of both kinds lay at the grid's largest rate, so the grid
# was extended at its edge, on validation numbers only: lr 1e-2 (binary with and without
# clipping, real), which the rule picked again, then lr 2e-2 the same way: 22 cells. The
# selection rule (`tinybin.experiments.calibration_choice`) was fixed in code before any result
# existed. The figures are computed from `results/calibration/*.json`.

# %%
cal_root, cal_source = results_root("calibration", rows=[r.name for r in E.get("calibration").rows[:3]] +
                                    ["hpm_real_lr1e-3"], seeds=1)
cal_final = {}
if cal_root is None:
    show_md("**Calibration: not run yet.** `python -m tinybin.experiments calibrate --jobs 2`.")
else:
    cal = E.load_results("calibration", cal_root)
    cal_exp = E.get("calibration")
    for row in cal_exp.rows:
        rs = cal[row.name]
        if rs:
            assert all(r["split"] == "val" and "test" not in r["data"]["splits"] for r in rs)
            cal_final[row.name] = dict(label=row.label, n=len(rs), binary=row.net["binary"], lr=row.train["lr"],
                                       **{k: float(np.mean([r["metrics"][k] for r in rs])) for k in KEYS},
                                       curves=[r.get("val_curve") for r in rs])
    show_md(f"Source: {cal_source}; {len(cal_final)} of {len(cal_exp.rows)} cells finished (validation split only).")

if cal_final:
    names = list(cal_final)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * len(names) + 1.5), sharey=True)
    for ax, k in zip(axes, KEYS):
        vals = [cal_final[n][k] for n in names]
        ax.barh(range(len(names)), vals, color=["tab:blue" if cal_final[n]["binary"] else "tab:red" for n in names])
        ax.set_yticks(range(len(names)), [cal_final[n]["label"] for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"validation {k} at the end (%)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Calibration sweep, final validation scores (blue: binary, red: real)", fontsize=10)
    plt.tight_layout()
    plt.show()

    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    cmap = plt.get_cmap("viridis")
    lrs = sorted({c["lr"] for c in cal_final.values()})
    for n, c in cal_final.items():
        curves = [cv for cv in c["curves"] if cv and cv.get("step")]
        if not curves:
            continue
        steps = curves[0]["step"]
        ls = "--" if "warmup" in n else (":" if n.endswith("noclip") else "-")
        for j, k in enumerate(KEYS):
            y = np.nanmean(np.array([[np.nan if v is None else v for v in cv[k]] for cv in curves], np.float64), 0)
            axes[j, 0 if c["binary"] else 1].plot(steps, y, ls, color=cmap(lrs.index(c["lr"]) / max(len(lrs) - 1, 1)),
                                                 label=c["label"])
    for j, k in enumerate(KEYS):
        for i, kind in enumerate(("binary HPM", "real HPM")):
            axes[j, i].set_title(f"{kind}: validation {k}", fontsize=9)
            axes[j, i].grid(alpha=0.3)
            axes[1, i].set_xlabel("step")
            if axes[j, i].lines:
                axes[j, i].legend(fontsize=6)
    fig.suptitle("Calibration: validation curves (solid: clipped, dotted: not clipped, dashed: warm-up; "
                 "colour: learning rate)", fontsize=9)
    plt.tight_layout()
    plt.show()

    # The choice follows the runner's selection rule, fixed in code before the sweep's results
    # (`tinybin.experiments.calibration_choice`); the table above it is only what the figures show.
    choice = E.calibration_choice(cal_root)
    best = {}
    for kind in (True, False):
        cells = {n: c for n, c in cal_final.items() if c["binary"] == kind}
        if cells:
            n = max(cells, key=lambda n: cells[n]["pckh"])
            best["binary" if kind else "real"] = (n, cells[n])
    lines = ["| network | highest final validation pckh | val pckh | val pckh_matched | cells finished |",
             "|---|---|---|---|---|"]
    for kind, (n, c) in best.items():
        lines.append(f"| {kind} | {c['label']} | {c['pckh']:.1f} | {c['pckh_matched']:.1f} | "
                     f"{sum(1 for x in cal_final.values() if x['binary'] == (kind == 'binary'))} |")
    if choice is not None:
        lines += ["", "The runner's selection rule (`calibration_choice`):", ""]
        for kind, c in choice.items():
            lines.append(f"- {kind}: " + (f"waiting for {len(c['missing'])} cells" if "missing" in c else
                                          f"{c['label']} (selection score {c['score']:.1f}, best {c['best']:.1f}; "
                                          f"settings {c['settings']})"))
    lines += ["", f"The runner's recipe now: `RECIPE = {E.RECIPE!r}` (set from this sweep; a test checks that it "
              "is what the rule picks from the committed files)."]
    show_md("\n".join(lines))

# %% [markdown]
# ## 4. The budget pilot (validation split)
#
# **Idea.** With the calibrated recipe, the rows that the tables compare (binary bottleneck, real
# bottleneck, binary HPM, binary MS without 1×1) train for 6,000 steps at 2 seeds and are
# evaluated on the validation split every 500 steps. **Rule** (`tinybin.experiments.budget_choice`,
# fixed in code before the pilot's curves existed): the budget is the smallest checkpoint
# ≥ 2,000 steps from which every row's mean paired difference against the binary bottleneck stays
# within 2 PCKh@0.5 points of its value at step 6,000. Caveat: the pilot's learning-rate schedule
# spans its 6,000 steps, so its model at step t has seen larger rates than a t-step run ends
# with; a t-step run compresses the same schedule.

# %%
pilot_root, pilot_source = (None, None)
if any(E.load_results("pilot", RESULTS).values()):
    pilot_root, pilot_source = RESULTS, "results/pilot"
elif QUICK:
    pilot_root, pilot_source = results_root("pilot", rows=["bottleneck", "hpm"], seeds=2)
pilot_diffs = {}
if pilot_root is None:
    show_md("**Pilot: not run yet.** `python -m tinybin.experiments run pilot --seeds 2 --jobs 2` "
            "(after the calibration has set the recipe).")
else:
    pexp = E.get("pilot")
    pres = E.load_results("pilot", pilot_root)
    ref = {r["seed"]: r["val_curve"] for r in pres.get(pexp.reference, []) if r.get("val_curve")}
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    for row in pexp.rows:
        rs = [r for r in pres[row.name] if r.get("val_curve")]
        if not rs:
            continue
        steps = rs[0]["val_curve"]["step"]
        for j, k in enumerate(KEYS):
            y = np.array([r["val_curve"][k] for r in rs], np.float64)
            axes[j, 0].plot(steps, y.mean(0), label=f"{row.label} ({len(rs)} seeds)")
            if row.name != pexp.reference and ref:
                ds = [E.paired_difference({r["seed"]: r["val_curve"][k][i] for r in rs},
                                          {s: c[k][i] for s, c in ref.items() if i < len(c[k])}) for i in range(len(steps))]
                m = np.array([np.nan if d["mean"] is None else d["mean"] for d in ds])
                h = np.array([np.nan if d["half"] is None else d["half"] for d in ds])
                axes[j, 1].plot(steps, m, label=row.label)
                axes[j, 1].fill_between(steps, m - h, m + h, alpha=0.2)
                pilot_diffs[(row.name, k)] = (steps, m, h)
    for j, k in enumerate(KEYS):
        axes[j, 0].set_ylabel(f"validation {k} (%)")
        axes[j, 1].set_ylabel(f"Δ {k} vs binary bottleneck")
        axes[j, 1].axhline(0, color="k", lw=0.8)
        for ax in axes[j]:
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle(f"Budget pilot ({pilot_source}): validation curves and paired differences (95% CI band)", fontsize=9)
    plt.tight_layout()
    plt.show()
    lines = ["| Δ vs binary bottleneck | metric | at the last checkpoint | change over the last two checkpoints | "
             "95% half-width |", "|---|---|---|---|---|"]
    for (row, k), (steps, m, h) in pilot_diffs.items():
        if len(steps) >= 2:
            lines.append(f"| {row} | {k} | {m[-1]:+.1f} (step {steps[-1]}) | {m[-1] - m[-2]:+.1f} | "
                         f"{'–' if np.isnan(h[-1]) else f'{h[-1]:.1f}'} |")
    show_md("\n".join(lines) + "\n\n" + E.budget_report(pilot_root)
            + f"\n\nThe runner's budget now: `BUDGET = {E.BUDGET!r}`.")

# %% [markdown]
# ## 5. Table 1 under the protocol
#
# **Idea.** The real and the binary bottleneck hourglass, ≥ 5 shared seeds, test split, at the
# calibrated recipe and budget. The quantity of interest is the paired gap real − binary with its
# 95% interval, at both metrics; beside it the same gap for the HPM block (real HPM from Table 3's
# `hpm_real` row − binary HPM from Table 2's `hpm` row, same seeds).

# %%
t1_root, t1_source = results_root("table1")
t1_summary = {}
gaps = {}
if t1_root is None:
    show_md("**Table 1: not run yet under this protocol.** `python -m tinybin.experiments run table1 "
            f"--seeds {SEEDS} --jobs 2`. (The superseded first-protocol numbers are in section 2.)")
else:
    if QUICK and t1_root != RESULTS:   # the HPM comparison's rows, as smoke runs too
        E.run("table2", seeds=2, root=t1_root, rows=["hpm"], quick=True, progress=False, jobs=1)
        E.run("table3", seeds=2, root=t1_root, rows=["hpm_real"], quick=True, progress=False, jobs=1)
    show_md(f"Source: {t1_source}\n\n" + E.report("table1", t1_root))
    t1_summary = {s["row"]: s for s in E.summarize("table1", t1_root)}
    gaps["bottleneck: real - binary"] = t1_summary["bottleneck_real"]["diff"]
    hr = E.load_results("table3", t1_root).get("hpm_real", [])
    hb = E.load_results("table2", t1_root).get("hpm", [])
    gaps["HPM: real - binary"] = {k: E.paired_difference({r["seed"]: E.score_of(r, k) for r in hr},
                                                         {r["seed"]: E.score_of(r, k) for r in hb}) for k in KEYS}
    paper_gap = {"bottleneck: real - binary": 76.5 - 67.2, "HPM: real - binary": 85.5 - 76.0}
    fig, axes = plt.subplots(1, 2, figsize=(12, 2.6), sharey=True)
    for ax, k in zip(axes, KEYS):
        for y, (label, d) in enumerate(gaps.items()):
            dk = d.get(k) or {}
            if dk.get("n"):
                ax.errorbar(dk["mean"], y, xerr=dk["half"], fmt="o", color="tab:blue", capsize=3,
                            label="ours: mean, 95% CI" if y == 0 else None)
            ax.plot(paper_gap[label], y, "x", color="tab:red", label="paper (MPII)" if y == 0 else None)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(gaps)), list(gaps))
        ax.set_xlabel(f"{k}: real - binary (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"The cost of binarization, paired over seeds ({t1_source})", fontsize=9)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## 5b. Scale check: does the gap move towards the paper's as the network grows?
#
# **Idea.** Our networks are small (F = 64 at R = 64, D = 3) next to the paper's (F = 256 at
# R = 256, D = 4). If the gap depends on scale, the direction it moves in says how far our numbers
# carry. Two checks at 3 seeds, each with the calibrated recipe and budget: width F = 128
# (`scale_width`) and resolution R = 128 with one more hourglass level (`scale_resolution`). Seeds
# are shared with Table 1 (at R = 128 the same seeds draw the same people at twice the pixels), so
# the change of the gap with scale is paired too. `pckh_matched` is matched at each resolution
# (`metrics.matched_threshold`: 2.055 head sizes at R = 64, about 1.03 at R = 128); PCKh@0.5's
# tolerance in cells doubles from R = 64 to R = 128, which alone shrinks a gap made of sub-cell
# errors.
#
# Run: `python -m tinybin.experiments run scale_width scale_resolution --seeds 3 --jobs 2`.

# %%
sc_root, sc_source = NB.scale_root(RESULTS, QUICK, {n: ["bottleneck", "bottleneck_real"] for n in NB.SCALE_EXPERIMENTS},
                                   smoke=smoke_root() if QUICK else None)
scale_gap = []
if sc_root is not None:
    show_md(f"Source: {sc_source}.")
    scale_gap = NB.scale_check(sc_root, ["real - binary, bottleneck"], {"real - binary, bottleneck": 76.5 - 67.2},
                               "The binarization gap (bottleneck) at three scales")

# %% [markdown]
# ### Is the budget long enough at the larger scales?
#
# The budget (5,500 steps) was chosen on the pilot at F = 64, R = 64. The scaled networks are
# twice as wide or see four times the pixels, so the pilot's evidence does not carry over by
# itself. Rows of one experiment share seeds, hence batches: the training-loss difference real -
# binary is paired step by step, and if it still moves over the last 10% of training, the gap at
# that scale was still changing when training stopped.

# %%
if sc_root is not None:
    for name in NB.SCALE_EXPERIMENTS:
        NB.budget_check(name, sc_root, skip=("hpm", "hpm_3q", "multiscale_no1x1"))

# %% [markdown]
# ## 6. §4.5: gradients of the binary network are smaller
#
# **Idea.** The paper reports that the binary network's gradients are "up to 10 times smaller"
# than the real network's. We feed one batch through fresh real and binary bottleneck networks
# with the same seed, backpropagate the sigmoid loss, and compare the mean $|\partial L/\partial W|$
# of corresponding convolution weights, layer by layer. For a binary layer this is the
# straight-through gradient that reaches the latent real weights. The 7×7 stem and the last 1×1
# conv are real in both networks and are marked.

# %%
def weight_grad_magnitudes(net, batch):
    """{conv weight name: mean |dL/dW|} after one forward/backward on `batch`."""
    net.train()
    net.zero_grad()
    loss = compute_loss(net(Tensor(np.ascontiguousarray(batch["image"], dtype=np.float32))), batch, TrainConfig())
    loss.backward()
    return {n: float(np.abs(p.grad).mean()) for n, p in net.named_parameters()
            if n.endswith("weight") and p.data.ndim == 4 and p.grad is not None}


(grad_set,) = E.make_data("pose", seed=SEED, n_train=BATCH, resolution=NET.get("resolution", R), splits=("train",))
grad_batch = grad_set.batch(np.arange(BATCH), augment=False)
g = {k: weight_grad_magnitudes(HourGlass.downscaled(block="bottleneck", binary=(k == "binary"), seed=SEED, **NET),
                               grad_batch) for k in ("real", "binary")}
names = [n for n in g["real"] if n in g["binary"]]
ratio = np.array([g["real"][n] / g["binary"][n] for n in names])
real_layers = {"conv1.weight"} | {n for n in names if n.endswith(".out.weight")}
bin_idx = [i for i, n in enumerate(names) if n not in real_layers]
grad_ratio = dict(median=float(np.median(ratio[bin_idx])), max=float(np.max(ratio[bin_idx])))
fig, ax = plt.subplots(figsize=(10, 3.4))
ax.semilogy(np.arange(len(names)), ratio, "o-", ms=3, label="real / binary, mean |dL/dW|")
for i, n in enumerate(names):
    if n in real_layers:
        ax.semilogy(i, ratio[i], "s", color="tab:orange", ms=7, label="layer real in both" if n == "conv1.weight" else None)
ax.axhline(10, color="k", ls=":", lw=1, label="paper: up to 10x")
ax.axhline(1, color="0.6", lw=0.8)
ax.set_xlabel("conv layer (network order: stem -> hourglass -> head)")
ax.set_title("at initialisation: gradient ratio per layer", fontsize=9)
ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
print(f"ratio over the {len(bin_idx)} binary layers: median {grad_ratio['median']:.1f}x, max {grad_ratio['max']:.1f}x")

# %% [markdown]
# ## What we found vs the paper
#
# The cell below writes the verdicts from the numbers above (`claim_verdict` on the paired 95%
# intervals). With `TINYBIN_QUICK=1` they come from smoke runs and mean nothing.

# %%
lines = [f"- Tolerance: at R = {R}, predictions off by exactly one heatmap cell score "
         f"{tol_demo['off by one cell (4 px)']['pckh']:.0f}% at PCKh@0.5 and "
         f"{tol_demo['off by one cell (4 px)']['pckh_matched']:.0f}% at PCKh@{thr:.3f} (the matched threshold)."]
if len(p1_stats) == 2:
    r_, b_ = p1_stats["bottleneck_real"], p1_stats["bottleneck_binary"]
    lines.append(f"- Superseded first protocol: real {r_['pckh']:.1f} vs binary {b_['pckh']:.1f} PCKh@0.5 "
                 f"(gap {r_['pckh'] - b_['pckh']:.1f}; paper 9.3). Median per-image error {r_['median']:.2f} vs "
                 f"{b_['median']:.2f} head sizes; images within {thr:.3f} head sizes: {100 * r_['under_thr']:.0f}% vs "
                 f"{100 * b_['under_thr']:.0f}%; the loss still fell {100 * r_['loss_drop_last10']:.1f}% / "
                 f"{100 * b_['loss_drop_last10']:.1f}% over the last 10% of steps.")
if cal_final:
    lines.append(f"- Calibration ({cal_source}): {len(cal_final)} of {len(E.get('calibration').rows)} cells finished; "
                 + "; ".join(f"highest final val pckh, {kind}: {c['label']} ({c['pckh']:.1f})"
                             for kind, (n, c) in best.items()) + ".")
if pilot_diffs:
    bc = E.budget_choice(pilot_root)
    lines.append(f"- Pilot ({pilot_source}): the budget rule gives "
                 + (f"{bc['steps']} steps" if bc["steps"] else "no checkpoint") + "; section 4 shows the curves.")
claims = [("Binarization costs accuracy (bottleneck, Table 1: real - binary = +9.3)", "bottleneck: real - binary", +1),
          ("Binarization costs accuracy (HPM, Tables 2-3: real - binary = +9.5)", "HPM: real - binary", +1)]
for text, key, direction in claims:
    d = gaps.get(key, {})
    lines.append(f"- {text}: " + "; ".join(f"{k} {E._fmt_diff(d.get(k))} -> "
                                          f"**{E.claim_verdict(d.get(k), direction)}**" for k in KEYS)
                 + (f" (source: {t1_source})" if t1_source else " (not run yet under this protocol)"))
lines += [v["line"] for v in scale_gap]
lines.append(f"- Gradients (§4.5), at initialisation: the real network's weight gradients are larger by a median "
             f"{grad_ratio['median']:.1f}x (max {grad_ratio['max']:.1f}x) over the binary layers; the paper says "
             "'up to 10 times'.")
show_md("\n".join(lines))

# %% [markdown]
# ### Reading the verdicts: what reproduces, and why the size of the gap does not
#
# * **The direction reproduces.** Binarization costs accuracy for both blocks, at both metrics,
#   with intervals far from zero, as in Tables 1-3; the hierarchical block's gap is smaller than
#   the bottleneck's at both metrics, as in the paper (9.5 vs 9.3 points there: about equal).
# * **The size does not, and depends on the tolerance.** At PCKh@0.5 the gap is about three times
#   the paper's; at the matched tolerance (the same precision in heatmap cells as PCKh@0.5 on MPII)
#   it is below the paper's. Section 1 shows why the two differ so much: at R = 64 PCKh@0.5 asks
#   for less than one heatmap cell, and binary networks make blurrier maps (paper Fig. 13; notebook
#   07 measures it), so a sub-cell criterion counts mostly the binary network's extra blur.
# * **Why the matched gap can be smaller than the paper's.** The synthetic task is easier than
#   MPII: the real network scores in the nineties at the matched tolerance (MPII: 76.5), so both
#   networks sit near the ceiling and differences compress. The matched metric removes the
#   resolution artefact, not the difference in difficulty; the scale checks (section 5b) show
#   whether the gap moves towards the paper's as the network grows.
# * **What scale does to the gap (section 5b, 3 seeds per scale).** At PCKh@0.5 the gap shrinks
#   at both larger scales, towards the paper's 9.3 without reaching it: +19.5 [+14.7, +24.2] at
#   F = 128 and +22.8 [+17.4, +28.2] at R = 128, D = 4, against +27.7 at F = 64, R = 64. At the
#   matched tolerance the two scales part ways. Doubling the width shrinks the gap further, away
#   from the paper's (+4.2 [+2.4, +6.1], change -2.0 [-3.1, -0.9]); doubling the resolution, with
#   one more hourglass level, more than doubles it, to +13.2 [+10.1, +16.2] (change +7.0 [+4.0,
#   +10.0]), past the paper's 9.3. At R = 128 the binary network is far from the ceiling at the
#   matched tolerance (79.5 against the real network's 92.6), which fits the ceiling explanation
#   above; so do the wider networks, which sit nearer the ceiling than at F = 64 (binary 91.5,
#   real 95.7, from 88.8 and 94.6) and whose gap narrows. Neither scale is the paper's (F = 256
#   and R = 256 together), so the size of the paper's gap stays out of reach here; its direction
#   holds at every scale.
#   No paired training-loss difference still moved over the last 10% of training at either scale.
# * **Gradients.** Binary layers receive smaller weight gradients at initialisation, by a median
#   factor of a few and up to about twenty, in line with the paper's "up to 10 times".

# %% [markdown]
# ## Exercises
#
# 1. Recompute Table 1 at other thresholds from the stored distances:
#    `python -m tinybin.experiments report table1 --threshold 1.0`. Where does the gap stop
#    depending on the threshold?
# 2. Train the real and binary bottleneck briefly (`tinybin.train.Trainer`) and repeat section 6
#    after training. Does the ratio grow or shrink?
# 3. Redo the tolerance check of section 1 at R = 128 (`metrics.matched_threshold(128)`). Why is
#    the matched threshold about half?
# 4. In the calibration figure, which cells are still rising at step 2,000? What would that do to
#    the choice of learning rate?
