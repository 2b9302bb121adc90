"""The paper's ablations as named experiments on downscaled synthetic data, a resumable parallel
runner, and a report that sets our numbers beside the paper's with paired confidence intervals.

    python -m tinybin.experiments list
    python -m tinybin.experiments run table2 --seeds 5 --jobs 2       # trains what is not done yet
    python -m tinybin.experiments run table2 --scheduler tcp://host:8786   # on a Dask cluster
    python -m tinybin.experiments calibrate --seeds 1 --jobs 2        # validation split only
    python -m tinybin.experiments report table2                       # means, paired differences

Every (experiment, row, seed) trains once; its result is one JSON file
`results/<experiment>/<row>__seed<k>.json` under the current directory (or `--results DIR`) (metrics, per-sample distances, parameter counts at the
downscaled and at the paper's scale, training time, configs, seed). Files are written atomically
by the process that runs the experiment (worker processes and Dask workers return the dict), and
finished runs are skipped, so an interrupted `run` resumes where it stopped. The report is
computed from the JSON files alone, so it reproduces exactly from the committed `results/`.

Protocol (DESIGN.md section 7). All rows use `HourGlass.downscaled` (R = 64, F = 64, D = 3) on the
synthetic sets with a fixed finite training set (so augmentation matters, as on MPII) and RMSprop
with the sigmoid loss. Pose results report PCKh@0.5 (the paper's formula at our scale) and
`pckh_matched`, PCKh at the threshold whose tolerance in heatmap cells equals MPII's at 256 px
(`tinybin.metrics.matched_threshold`, 2.06 head sizes at R = 64), with flip testing; every test
sample's normalised per-joint distances are stored (`distances`), so any threshold can be
recomputed (`report --threshold T`). Faces store the per-image NME and yaw (`metrics.nme_per_image`,
`metrics.yaw`); `report face` and `report table12` print the layouts of the paper's Tables 9 and 12.

Splits. Each seed k generates three disjoint synthetic splits (train, val, test; distinct sample
seeds). The tables are evaluated on test. Everything chosen from data -- learning rate, warm-up,
latent clipping, the number of steps -- is chosen by the `calibration` and `pilot` experiments,
which build only the train and val splits (`make_data(..., splits=("train", "val"))`): they cannot
read the test split.

Recipe. `RECIPE` holds the optimiser settings for binary and real networks; a recipe file
(`--recipe file.json`: {"steps": ..., "binary": {...}, "real": {...}}) or the CLI flags (--lr,
--steps, --warmup, --clip-latent, ...) override it. Precedence, low to high: `BUDGET`, the
experiment's own steps / eval interval, the recipe (its top level, then its binary / real part),
the row's training overrides, the CLI flags. Whenever a layer sets `lr` without `lr_end`, the
schedule ends at lr / 5 (four drops, as the paper's 2.5e-4 -> 5e-5). Stacked rows trained
sequentially give `stage_fraction` and `finetune_fraction` of the merged `steps`, which stays the
row's total budget (each stage, then the joint fine-tuning, gets that fraction of it).

Scores are PCKh in % (pose), NME in % of the box size (faces; lower is better) and mean IU in %
(segmentation). The paper's numbers are MPII / AFLW2000-3D / 300W at full scale: we compare
orderings and gaps, not absolute values.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

# Result files go under the current directory unless a folder is given (`--results`, `root=`);
# nothing is ever written next to the installed package.
RESULTS = "results"

# The budget of one ablation run before calibration: 900 steps of batch 16 (the committed Table 1-2
# results of the first protocol used it). The calibration and pilot experiments set their own steps;
# `RECIPE` (or a recipe file) sets the optimiser per network kind.
BUDGET = dict(steps=900, batch_size=16, lr=5e-3, lr_end=1e-3, eval_samples=400)
DATA = dict(n_train=3000, n_test=400, resolution=64, difficulty=0.3)
LR_DROP = 0.2  # lr_end / lr when a recipe layer sets lr alone (the paper's 2.5e-4 -> 5e-5)

# Optimiser recipe per network kind, merged over BUDGET (see the module docstring).
RECIPE: dict[str, dict] = {"binary": {}, "real": {}}


@dataclass
class Row:
    """One line of a paper table: a network config, training overrides, and the paper's value."""
    name: str
    label: str
    net: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data: str = "pose"              # a key of tinybin.data.KINDS: pose | face | segmentation
    paper: float | None = None      # the paper's number for this row (PCKh %, NME %, mIU %)
    paper_params: str | None = None  # the paper's parameter count as printed ("6.2M")


@dataclass
class Experiment:
    name: str
    title: str
    source: str                      # paper table / figure
    metric: str                      # pckh | nme | mean_iu
    rows: list[Row]
    reference: str | None = None     # row the report's paired differences are taken against
    split: str = "test"              # split the metrics are computed on: test | val
    steps: int | None = None         # the experiment's default budget (else BUDGET's)
    eval_every: int = 0              # periodic evaluation on the val split (val experiments only)
    comparisons: tuple = ()          # extra paired differences: (label, (exp, row), (exp, row))
    timing: bool = False             # the report also compares the rows' measured forward times

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise ValueError(f"{self.name}: unknown row {name!r}; choose from {[r.name for r in self.rows]}")


def _pose(name, label, paper=None, pp=None, **net):
    train = net.pop("train", {})
    return Row(name, label, net=net, train=train, paper=paper, paper_params=pp)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("table1", "Real vs binary bottleneck hourglass", "Table 1", "pckh", [
        _pose("bottleneck_real", "Bottleneck (real)", 76.5, "3.5M", block="bottleneck", binary=False),
        _pose("bottleneck_binary", "Bottleneck (binary)", 67.2, "3.5M", block="bottleneck", binary=True),
    ], reference="bottleneck_binary",
       comparisons=(("HPM: real (table3 hpm_real) - binary (table2 hpm)", ("table3", "hpm_real"), ("table2", "hpm")),)),
    Experiment("table2", "Binary blocks", "Table 2", "pckh", [
        _pose("bottleneck", "Bottleneck (original) (Fig. 7a)", 67.2, "3.5M", block="bottleneck"),
        _pose("wide", "Wider (Fig. 7b)", 70.7, "11.3M", block="wide"),
        _pose("multiscale", "Multi-Scale (MS) (Fig. 7c)", 69.3, "4.0M", block="multiscale"),
        _pose("multiscale_no1x1", "MS without 1x1 filters (Fig. 7d)", 75.5, "9.3M", block="multiscale_no1x1"),
        _pose("wide_no1x1", "Bottleneck (wider) + no 1x1", 69.5, "5.8M", block="wide_no1x1"),
        _pose("hpm_f192", "HPM at 3/4 width (Fig. 1b)", 72.7, "4.0M", block="hpm", width=48),
        _pose("hpm", "HPM, Ours final (Fig. 7e)", 76.0, "6.2M", block="hpm"),
    ], reference="bottleneck"),
    # Table 3 (MPII val, real-valued blocks): the wider bottleneck's mid width is unstated; 0.765625 F
    # (196 at F = 256) gives the paper's 7.0M (models.PAPER_ROWS), and 49 channels at F = 64.
    Experiment("table3", "Real-valued blocks of similar size", "Table 3", "pckh", [
        _pose("bottleneck_wider_real", "Bottleneck (wider), real", 83.1, "7.0M", block="bottleneck",
              binary=False, block_opts={"mid_ratio": 0.765625}),
        _pose("hpm_real", "HPM (Ours, final), real", 85.5, "6.2M", block="hpm", binary=False),
    ], reference="bottleneck_wider_real"),
    # Table 4 (MPII val); the supplement's Tables 1-2 print the same rows, except "+ ReLU" 77.8.
    Experiment("table4", "Augmentation, loss, pooling, +ReLU", "Table 4", "pckh", [
        _pose("no_aug", "Ours - No Aug.", 72.1, "6.2M", block="hpm", train={"augment": False}),
        _pose("l2", "Ours - L2 loss", 73.8, "6.2M", block="hpm", train={"loss": "mse"}),
        _pose("avgpool", "Ours - AvgPool", 71.9, "6.2M", block="hpm", pool="avg"),
        _pose("final", "Ours, final", 76.0, "6.2M", block="hpm"),
        _pose("relu", "Ours + ReLU", 78.1, "6.2M", block="hpm", relu_after_conv=True),
    ], reference="final"),
    # Figs. 9 and 10 at F = 128 (R = 64, D = 3): at F = 64 the hpm block's layers run out of channels
    # (depth 5 already ends with 4 channels, 2 in the F/2 stem blocks). F = 128 spans the paper's
    # range: depth d ends with F / 2**(d-1) channels, 4 at depth 6 (the paper's "minimum of 4") and
    # 2 at depth 7, the paper's extreme (its depth 8 ends with 2 channels at F = 256 under our
    # reading of Fig. 9, notes/architecture.md). Fig. 9b prints one number in the text, 76.5 at
    # depth 6; depth 3 is "Ours, final" (Table 2, 76.0).
    Experiment("fig9", "Depth of the hierarchical block (F = 128)", "Fig. 9", "pckh", [
        _pose(f"depth{d}", f"HPM depth {d} (F=128; last layer {128 // 2 ** (d - 1)} ch)",
              {3: 76.0, 6: 76.5}.get(d), "6.2M" if d == 3 else None, block="hpm", width=128,
              block_opts={"depth": d}) for d in (2, 3, 4, 5, 6, 7)
    ], reference="depth3"),
    # Fig. 10: C copies at 1/C of the widths, each first layer reading all F inputs, as §7.2 describes.
    # That construction does NOT keep the parameters constant: the first layers keep theirs, the
    # later ones shrink by 1/C (paper scale: 6.24M at C = 1, 5.39M at 2, 4.97M at 4, 4.79M at 8);
    # the report's parameter columns show it. F = 128 allows C = 8 with [8, 4, 4]-channel copies
    # (C = 16 at F = 256 in the paper). Fig. 10b's values are not printed; the text says C > 1
    # "under-performs by 1 percent"; C = 1 is "Ours, final" (76.0).
    Experiment("fig10", "Cardinality of the hierarchical block (F = 128)", "Fig. 10", "pckh", [
        _pose(f"card{c}", f"HPM cardinality {c} (F=128)", 76.0 if c == 1 else None, "6.2M" if c == 1 else None,
              block="hpm", width=128, block_opts={"cardinality": c}) for c in (1, 2, 4, 8)
    ], reference="card1"),
    # Table 10 (MPII val). The paper also reports "an up to 20 percent speedup" of the improved HG;
    # run_one stores each run's measured forward time (`forward_ms`), the report prints their ratio.
    Experiment("table10", "Improved (U-Net-like) hourglass", "Table 10", "pckh", [
        _pose("hg", "HG, Ours final", 76.0, "6.2M", block="hpm"),
        _pose("improved", "Improved HG (Fig. 11)", 76.6, "5.8M", block="hpm", improved=True),
    ], reference="hg", timing=True),
    # Table 11 (MPII val); 11.0M is probably a typo for 12.0M (notes/architecture.md). Sequential
    # training (§8.2): train stack 1, freeze it, add stack 2, ...; then fine-tune jointly for half a
    # stage (the paper: 100 epochs per stage, 50 joint). The total number of steps equals the
    # budget of the 1-stack row: 2 stacks 0.4 + 0.4 + 0.2, 3 stacks 3 x 2/7 + 1/7 of it.
    Experiment("table11", "Stacked binary hourglasses (sequential training)", "Table 11", "pckh", [
        _pose("stacks1", "1 stack", 76.0, "6.2M", block="hpm"),
        _pose("stacks2", "2 stacks", 79.9, "11.0M", block="hpm", stacks=2,
              train={"sequential_stacks": True, "stage_fraction": 0.4, "finetune_fraction": 0.2}),
        _pose("stacks3", "3 stacks", 81.3, "17.8M", block="hpm", stacks=3,
              train={"sequential_stacks": True, "stage_fraction": 2 / 7, "finetune_fraction": 1 / 7}),
    ], reference="stacks1"),
    Experiment("face", "Face alignment, 68 points, NME by yaw (yaw uniform over [-90, 90])",
               "Table 9 (AFLW2000-3D)", "nme", [
        Row("face_hpm_binary", "Binary HPM (ours)", net={"block": "hpm", "num_landmarks": 68}, data="face_yaw90",
            paper=3.26, paper_params="6.2M"),
        Row("face_bottleneck_binary", "Binary bottleneck", net={"block": "bottleneck", "num_landmarks": 68},
            data="face_yaw90", paper_params="3.5M"),
        Row("face_hpm_real", "Real HPM", net={"block": "hpm", "binary": False, "num_landmarks": 68},
            data="face_yaw90", paper_params="6.2M"),
    ], reference="face_bottleneck_binary"),
    # Issue 16, beyond the paper: the authors' later fixes on the binary hpm hourglass, each alone and
    # all together, the real hpm as the ceiling (notebook 10). Choices (documented where implemented):
    # Gamma initialised from alpha (tinybin.nn.LearnedScaleBinaryConv2d); progressive quantization
    # over the first quarter of the budget in 4 stages (0/25/50/75 % of each unit's channels
    # binarized, from the real twin); reverse-order initialisation = binary activations with real
    # weights for the first quarter (tinybin.train.quantization_state); distillation from the `real`
    # row of the same seed (TEACHERS below), sigmoid soft targets at T = 1, weight 1
    # (tinybin.train.distillation_loss). "all" uses the rank-1 scale (XNOR-Net++'s factorised Gamma).
    Experiment("beyond", "Closing the real-binary gap: learned scales, PReLU, progressive quantization, "
               "distillation, reverse-order init", "issue 16 (arXiv:1909.13863, arXiv:1904.05868)", "pckh", [
        _pose("baseline", "Binary HPM, the paper's recipe (XNOR alpha)", block="hpm"),
        _pose("learned_channel", "+ learned scale per channel (XNOR-Net++)", block="hpm", scale="learned_channel"),
        _pose("learned_spatial", "+ learned scale per channel and position", block="hpm", scale="learned_spatial"),
        _pose("learned_rank1", "+ learned rank-1 scale (channel x height x width)", block="hpm",
              scale="learned_rank1"),
        _pose("prelu", "+ PReLU after the binary conv", block="hpm", prelu=True),
        _pose("progressive", "+ progressive quantization", block="hpm", train={"progressive_fraction": 0.25}),
        _pose("distill", "+ distillation from the real HPM", block="hpm", train={"distill_teacher": "@real"}),
        _pose("reverse_init", "+ reverse-order initialisation", block="hpm", train={"reverse_init_fraction": 0.25}),
        _pose("all", "all together (rank-1 scale)", block="hpm", scale="learned_rank1", prelu=True,
              train={"progressive_fraction": 0.25, "reverse_init_fraction": 0.25, "distill_teacher": "@real"}),
        _pose("real", "Real HPM (ceiling)", block="hpm", binary=False),
    ], reference="baseline"),
    Experiment("table12", "Facial part segmentation (7 classes)", "Table 12 (300W Indoor & Outdoor)", "mean_iu", [
        Row("seg_bottleneck_real", "Real, bottleneck", net={"block": "bottleneck", "binary": False,
                                                          "num_landmarks": 7},
            train={"loss": "ce"}, data="segmentation", paper=69.29),
        Row("seg_bottleneck_binary", "Binary, bottleneck", net={"block": "bottleneck", "num_landmarks": 7},
            train={"loss": "ce"}, data="segmentation", paper=62.49),
        Row("seg_hpm_binary", "Binary, ours (HPM)", net={"block": "hpm", "num_landmarks": 7},
            train={"loss": "ce"}, data="segmentation", paper=68.05),
    ], reference="seg_bottleneck_binary"),
]}



def _lr_name(lr: float) -> str:
    m, e = f"{lr:.1e}".split("e")
    return f"{float(m):g}e{int(e)}"


def _calibration_rows() -> list[Row]:
    """22 (network, lr, warm-up, clipping) cells of the validation sweep (issue: calibration).

    binary hpm: lr in {2.5e-4, 1e-3, 2.5e-3, 5e-3} x latent clipping to [-1, 1] off/on (8);
    real hpm: the same four lr (4); linear warm-up over 10% of the budget where it can matter, at
    the two largest lr: binary hpm (clipped) and real hpm (4). The schedule ends at lr / 5.
    Edge extension (3): the first 16 cells' best validation score lay at the grid's largest lr
    (5e-3) for both network kinds, so the grid goes one step further, lr 1e-2, binary with and
    without clipping and real (no warm-up); decided on validation numbers only. The selection rule
    again picked that edge (lr 1e-2) for both kinds, so a second extension adds lr 2e-2 (3 cells),
    the same way.
    """
    rows = []
    lrs = (2.5e-4, 1e-3, 2.5e-3, 5e-3)
    for lr in lrs:
        for clip in (None, 1.0):
            tag = "clip" if clip else "noclip"
            rows.append(Row(f"hpm_binary_lr{_lr_name(lr)}_{tag}", f"binary HPM, lr {lr:g}, {tag}",
                            net={"block": "hpm", "binary": True},
                            train={"lr": lr, "lr_end": lr * LR_DROP, "clip_latent": clip, "warmup_steps": 0}))
    for lr in lrs:
        rows.append(Row(f"hpm_real_lr{_lr_name(lr)}", f"real HPM, lr {lr:g}", net={"block": "hpm", "binary": False},
                        train={"lr": lr, "lr_end": lr * LR_DROP, "clip_latent": None, "warmup_steps": 0}))
    for lr in lrs[2:]:
        rows.append(Row(f"hpm_binary_lr{_lr_name(lr)}_clip_warmup", f"binary HPM, lr {lr:g}, clip, warm-up",
                        net={"block": "hpm", "binary": True},
                        train={"lr": lr, "lr_end": lr * LR_DROP, "clip_latent": 1.0, "warmup_fraction": 0.1}))
        rows.append(Row(f"hpm_real_lr{_lr_name(lr)}_warmup", f"real HPM, lr {lr:g}, warm-up",
                        net={"block": "hpm", "binary": False},
                        train={"lr": lr, "lr_end": lr * LR_DROP, "clip_latent": None, "warmup_fraction": 0.1}))
    for edge in (1e-2, 2e-2):
        for clip in (None, 1.0):
            tag = "clip" if clip else "noclip"
            rows.append(Row(f"hpm_binary_lr{_lr_name(edge)}_{tag}", f"binary HPM, lr {edge:g}, {tag}",
                            net={"block": "hpm", "binary": True},
                            train={"lr": edge, "lr_end": edge * LR_DROP, "clip_latent": clip, "warmup_steps": 0}))
        rows.append(Row(f"hpm_real_lr{_lr_name(edge)}", f"real HPM, lr {edge:g}",
                        net={"block": "hpm", "binary": False},
                        train={"lr": edge, "lr_end": edge * LR_DROP, "clip_latent": None, "warmup_steps": 0}))
    return rows


EXPERIMENTS["calibration"] = Experiment(
    "calibration", "Learning rate, warm-up and latent clipping on the validation split", "protocol", "pckh",
    _calibration_rows(), split="val", steps=2000, eval_every=250)
EXPERIMENTS["pilot"] = Experiment(
    "pilot", "Budget pilot: validation curves at the chosen recipe", "protocol", "pckh", [
        _pose("hpm", "binary HPM", block="hpm"),
        _pose("bottleneck", "binary bottleneck", block="bottleneck"),
        _pose("bottleneck_real", "real bottleneck", block="bottleneck", binary=False),
        _pose("multiscale_no1x1", "binary MS without 1x1", block="multiscale_no1x1"),
    ], reference="bottleneck", split="val", steps=6000, eval_every=500)

# The paper's face numbers beside which the face reports print ours.
# Table 9 (AFLW2000-3D, NME % of the gt box, 68 points): only the binary HPM network ("Ours").
PAPER_TABLE9 = {"face_hpm_binary": {"[0,30]": 2.47, "(30,60]": 3.01, "(60,90]": 4.31, "mean": 3.26}}
# Table 12 (300W Indoor & Outdoor; pixel accuracy, mean accuracy, mean IU in %, as FCN computes them).
PAPER_TABLE12 = {
    "seg_bottleneck_real": {"pixel_acc": 97.98, "mean_acc": 77.23, "mean_iu": 69.29},
    "seg_bottleneck_binary": {"pixel_acc": 97.41, "mean_acc": 70.35, "mean_iu": 62.49},
    "seg_hpm_binary": {"pixel_acc": 97.91, "mean_acc": 76.02, "mean_iu": 68.05},
}


# ---- data ------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")


def make_data(kind: str, seed: int = 0, n_train: int | None = None, n_test: int | None = None,
              resolution: int | None = None, difficulty: float | None = None,
              splits: tuple[str, ...] = ("train", "test")):
    """Synthetic sets for `kind`, a key of `tinybin.data.KINDS` (pose | face | segmentation), made
    by the kind's generator with `DATA`'s sizes unless given, one per name in `splits`.

    Default (train, test). The val split has n_test samples and its own sample seeds; a split not
    named is never constructed (the calibration experiments pass ("train", "val")).
    """
    from .data import get_kind
    gen = get_kind(kind).generator
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValueError(f"make_data: splits must be a non-empty subset of {SPLITS}, got {splits!r}")
    d = dict(DATA)
    for k, v in dict(n_train=n_train, n_test=n_test, resolution=resolution, difficulty=difficulty).items():
        if v is not None:
            d[k] = v
    out = []
    for split in splits:
        n = d["n_train"] if split == "train" else d["n_test"]
        ds = gen(n, resolution=d["resolution"], seed=seed, difficulty=d["difficulty"], split=split)
        out.append(ds)
    return tuple(out)


def synthetic_head_fraction(n: int = 2000, resolution: int = 64, difficulty: float | None = None,
                            seed: int = 0) -> float:
    """Median head size / crop side of SyntheticPose crops (training split, no augmentation).

    The denominator of the matched PCKh threshold (`tinybin.metrics`, step 3 of the derivation);
    `metrics.SYNTHETIC_POSE_HEAD_FRACTION` stores it at the defaults.
    """
    (train,) = make_data("pose", seed, n_train=n, resolution=resolution, difficulty=difficulty, splits=("train",))
    return float(np.median(train.batch(np.arange(n))["head_size"]) / resolution)


# ---- one run -----------------------------------------------------------------------------------

def result_path(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    return os.path.join(root, exp, f"{row}__seed{seed}.json")


def load_recipe(path: str) -> dict:
    """Read a recipe file: {"steps": .., "binary": {...}, "real": {...}}; top-level keys other than
    binary / real apply to both. Returns {"all": {...}, "binary": {...}, "real": {...}}."""
    from .train import TrainConfig
    with open(path) as fh:
        raw = json.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe is a JSON object")
    out = {"all": {k: v for k, v in raw.items() if k not in ("binary", "real")},
           "binary": dict(raw.get("binary", {})), "real": dict(raw.get("real", {}))}
    known = set(TrainConfig.__dataclass_fields__) | {"warmup_fraction", "progressive_fraction",
                                                      "reverse_init_fraction"}
    for part in out.values():
        unknown = set(part) - known
        if unknown:
            raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
    return out


def train_settings(exp: Experiment, row: Row, overrides: dict | None = None, recipe: dict | None = None) -> dict:
    """The merged training settings of one row (precedence in the module docstring)."""
    binary = bool(row.net.get("binary", True))
    rec = RECIPE if recipe is None else recipe
    layers = [dict(BUDGET)]
    exp_layer = {}
    if exp.steps:
        exp_layer["steps"] = exp.steps
    if exp.eval_every:
        exp_layer["eval_every"] = exp.eval_every
    layers += [exp_layer, dict(rec.get("all", {})), dict(rec.get("binary" if binary else "real", {})),
               dict(row.train), dict(overrides or {})]
    kw: dict = {}
    for layer in layers:
        if "lr" in layer and "lr_end" not in layer:
            layer["lr_end"] = layer["lr"] * LR_DROP
        if "warmup_steps" in layer:
            kw.pop("warmup_fraction", None)
        kw.update(layer)
    if "stage_fraction" in kw:  # sequential stacks: `steps` is the row's total budget
        total = kw["steps"]
        kw["steps"] = max(1, int(round(kw.pop("stage_fraction") * total)))
        kw["finetune_steps"] = int(round(kw.pop("finetune_fraction", 0.0) * total))
    if "warmup_fraction" in kw:
        kw["warmup_steps"] = int(round(kw.pop("warmup_fraction") * kw["steps"]))
    for key in ("progressive", "reverse_init"):  # issue 16: stages as fractions of the budget
        if f"{key}_fraction" in kw:
            kw[f"{key}_steps"] = max(1, int(round(kw.pop(f"{key}_fraction") * kw["steps"])))
    return kw


def _json_rows(a: np.ndarray) -> list:
    """Nested lists with None for NaN (valid JSON)."""
    return [[None if not math.isfinite(v) else v for v in map(float, r)] for r in np.asarray(a)]


def run_one(exp: Experiment, row: Row, seed: int, root: str | None = None, quick: bool = False,
            progress: bool = True, overrides: dict | None = None, recipe: dict | None = None,
            write: bool | None = None, work_root: str | None = None) -> dict:
    """Train and evaluate one (row, seed); return its result dict, and write it under `root`.

    work_root: where the checkpoints of the run in progress go (`partial_dir`); default `root`
    when writing, else none.

    write: default True for full runs (root defaults to results/) and, for quick runs, only when a
    `root` is given. Experiments with split "val" build only the train and val splits.
    """
    from . import count_parameters
    from .models import HourGlass
    from .train import TrainConfig, Trainer, evaluate

    if write is None:
        write = (not quick) or root is not None
    root = RESULTS if root is None else root
    train_kw = train_settings(exp, row, overrides, recipe)
    teacher = train_kw.get("distill_teacher")
    if isinstance(teacher, str) and teacher.startswith("@"):  # "@row": that row's network, same seed
        train_kw["distill_teacher"] = ensure_teacher(exp, teacher[1:], seed, root, quick, progress, overrides,
                                                     recipe, write, work_root)
    data_kw = {}
    if quick:  # a smoke-sized run so every code path executes in CI
        train_kw.update(steps=4, batch_size=4, eval_samples=16, finetune_steps=min(train_kw.get("finetune_steps", 0), 2),
                        warmup_steps=min(train_kw.get("warmup_steps", 0), 2))
        for k in ("progressive_steps", "reverse_init_steps"):  # issue 16 stages: one step each
            if train_kw.get(k):
                train_kw[k] = 1
        data_kw = dict(n_train=32, n_test=16, resolution=32)
        train_kw.update(overrides or {})  # explicit flags still win (benchmarks set --steps)
        if train_kw.get("eval_every") and "eval_every" not in (overrides or {}):
            train_kw["eval_every"] = max(1, train_kw["steps"] // 2)
    val_mode = exp.split == "val"
    if not val_mode:
        train_kw["eval_every"] = 0  # no periodic look at the test split
    # A killed run resumes from its last checkpoint under `work_root` (bit-exact, see tinybin.train).
    # ckpt_every is set whether or not this run checkpoints, so its stored config does not depend
    # on where it ran.
    train_kw.setdefault("ckpt_every", CKPT_EVERY)
    if work_root is None and write:
        work_root = root
    work = partial_dir(exp.name, row.name, seed, work_root) if work_root else None
    eval_n = train_kw.pop("eval_samples")
    cfg = TrainConfig(seed=seed, eval_samples=eval_n, flip_test=row.data != "segmentation", **train_kw)
    net_kw = dict(row.net)
    if quick:
        net_kw.update(width=_quick_width(net_kw), depth=2, resolution=32)
    net = HourGlass.downscaled(seed=seed, **net_kw)
    paper_net = dict(row.net)
    paper_net.pop("width", None)
    paper_width = 192 if row.name == "hpm_f192" else 256
    try:
        paper_params = count_parameters(HourGlass.paper(width=paper_width, seed=None, **paper_net))
    except TypeError:
        paper_params = None
    splits = ("train", "val") if val_mode else ("train", "test")
    train, evalset = make_data(row.data, seed=seed, splits=splits, **data_kw)
    t0 = time.time()
    trainer = Trainer(net, train, cfg, val=evalset if val_mode else None, progress=progress, out_dir=work)
    history = trainer.fit(resume=work is not None)
    train_time = time.time() - t0
    if is_teacher(exp, row):
        from .serialization import save as save_ckpt
        save_ckpt(net, teacher_path(exp.name, row.name, seed, _teacher_root(root, write, work_root)))
    res = evaluate(net, evalset, eval_n, flip=cfg.flip_test, return_distances=True)
    metrics = {k: v for k, v in res.items() if k not in ("errors", "distances")}
    per_stack = None
    if net.config["stacks"] > 1 and row.data == "pose":  # every stack's output (Table 11)
        per_stack = []
        for k in range(1, net.config["stacks"] + 1):
            r_k = evaluate(_FirstStacks(net, k), evalset, eval_n, flip=cfg.flip_test)
            per_stack.append({"stack": k, **{m: r_k[m] for m in ("pckh", "pckh_matched", "matched_threshold")}})
    out = {
        "experiment": exp.name, "row": row.name, "label": row.label, "seed": seed, "quick": quick,
        "split": exp.split, "metrics": metrics,
        "params": count_parameters(net), "paper_scale_params": paper_params,
        "paper": row.paper, "paper_params": row.paper_params,
        "train_time_s": round(max(train_time, trainer.train_time), 1), "code": code_version(),
        "step_time_s": round(trainer.train_time / max(cfg.total_steps(net.config["stacks"]), 1), 4),
        "forward_ms": forward_ms(net, evalset.batch(np.arange(min(16, len(evalset))))["image"]),
        "net_config": net.config, "train_config": asdict(cfg),
        "data": {"kind": row.data, **DATA, **data_kw, "splits": list(splits)},
        "loss_first": float(np.mean(history["loss"][:20])), "loss_last": float(np.mean(history["loss"][-20:])),
        "loss_curve": [round(float(v), 5) for v in history["loss"][:: max(1, len(history["loss"]) // 100)]],
    }
    if per_stack is not None:
        out["metrics_per_stack"] = per_stack
    if "distances" in res:
        out["distances"] = _json_rows(res["distances"])
    elif row.data == "face":
        out["nme_per_image"] = [round(float(v), 6) for v in res["errors"]]
    if val_mode:
        ev = history.get("eval_metrics", [])
        out["val_curve"] = {"step": list(history["eval_step"]),
                            **{k: [e.get(k) for e in ev] for k in (ev[0] if ev else {})}}
    if write:
        write_result(result_path(exp.name, row.name, seed, root), out)
    if work:
        shutil.rmtree(work, ignore_errors=True)
    return out


CKPT_EVERY = 500  # steps between the checkpoints of a run in progress


# ---- distillation teachers (issue 16) -----------------------------------------------------------
# A row whose training settings say distill_teacher="@name" learns from the network of row `name`
# of the same experiment and seed. That row's run keeps its trained weights (a tinybin checkpoint)
# at `<root>/.teachers/<exp>/<name>__seed<k>.npz` (like .partial/, not committed); a distilling run
# whose teacher file is missing trains the teacher row first (writing its result too). The teacher
# run is the same deterministic run either way; with --jobs > 1 two workers may both train it
# (identical weights, atomic writes). Quick runs that write nothing keep teachers in a temp folder.

_QUICK_TEACHERS: list[str] = []


def teacher_path(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    return os.path.join(root, ".teachers", exp, f"{row}__seed{seed}.npz")


def is_teacher(exp: Experiment, row: Row) -> bool:
    """Whether some row of `exp` distills from `row` (its run then keeps its weights)."""
    return any(r.train.get("distill_teacher") == f"@{row.name}" for r in exp.rows)


def _teacher_root(root: str, write: bool, work_root: str | None) -> str:
    if work_root:
        return work_root
    if write:
        return root
    if not _QUICK_TEACHERS:
        import tempfile
        _QUICK_TEACHERS.append(tempfile.mkdtemp(prefix="tinybin-teachers-"))
    return _QUICK_TEACHERS[0]


def ensure_teacher(exp: Experiment, name: str, seed: int, root: str | None, quick: bool, progress: bool,
                   overrides, recipe, write, work_root) -> str:
    """The checkpoint path of row `name`'s trained network for `seed`; trains the row when missing."""
    row = exp.row(name)
    w = ((not quick) or root is not None) if write is None else write
    r = RESULTS if root is None else root
    wr = work_root if work_root is not None else (r if w else None)
    path = teacher_path(exp.name, name, seed, _teacher_root(r, w, wr))
    if not os.path.exists(path):
        run_one(exp, row, seed, root=root, quick=quick, progress=progress, overrides=overrides, recipe=recipe,
                write=write, work_root=work_root)
    return path


def partial_dir(exp: str, row: str, seed: int, root: str = RESULTS) -> str:
    """Checkpoints of a run in progress: `<root>/.partial/<exp>/<row>__seed<k>/` (not committed;
    removed once the result file is written). An interrupted `run` resumes from here."""
    return os.path.join(root, ".partial", exp, f"{row}__seed{seed}")


def code_version() -> dict:
    """Which code made a result: the tinybin version and, in a git checkout, the commit and whether
    the tree had uncommitted changes (None outside a checkout)."""
    from . import __version__
    out: dict = {"tinybin": __version__, "commit": None, "dirty": None}
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode == 0:
            out["commit"] = rev.stdout.strip()
            st = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no", "--", "."],
                                capture_output=True, text=True, timeout=10)
            out["dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _quick_width(net_kw: dict) -> int:
    """The smallest of 16, 32, 64, ... at which the row's network builds at R = 32, D = 2 (quick
    runs; 16 suits every block at its defaults, deep or high-cardinality hpm blocks need more)."""
    from .models import HourGlass
    kw = {k: v for k, v in net_kw.items() if k not in ("width", "depth", "resolution")}
    for w in (16, 32, 64, 128, 256):
        try:
            HourGlass.downscaled(seed=None, **{**kw, "width": w, "depth": 2, "resolution": 32})
            return w
        except ValueError:
            continue
    raise ValueError(f"quick run: no width up to 256 builds {net_kw}")


def forward_ms(net, images: np.ndarray, repeats: int = 7) -> float:
    """Median wall time (ms) of one eval-mode forward pass of `net` on `images` (N, R, R, 3), after
    one warm-up pass; the network's mode is restored. Absolute times depend on the machine and its
    load: compare rows by ratios of medians, ideally measured in one process (`forward_times`)."""
    from .tensor import Tensor, no_grad
    x = Tensor(np.ascontiguousarray(images, dtype=np.float32))
    was = net.training
    net.eval()
    try:
        with no_grad():
            net(x)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                net(x)
                ts.append(time.perf_counter() - t0)
    finally:
        net.train(was)
    return round(float(np.median(ts)) * 1e3, 3)


def forward_times(nets: dict, images: np.ndarray, rounds: int = 7) -> dict[str, float]:
    """Median forward time (ms) of each network in `nets` {name: net}, measured in interleaved
    rounds (one forward of each per round) so that machine load affects all of them alike."""
    ts = {k: [] for k in nets}
    for k, n in nets.items():
        forward_ms(n, images, repeats=1)  # warm-up (Numba compilation, caches)
    for _ in range(rounds):
        for k, n in nets.items():
            ts[k].append(forward_ms(n, images, repeats=1))
    return {k: float(np.median(v)) for k, v in ts.items()}


class _FirstStacks:
    """`net` seen through its first k stacks only: forward returns stack k's logits, so that
    `evaluate` scores an intermediate stack (Table 11's per-stack accuracy)."""

    def __init__(self, net, k: int):
        self.net, self.k = net, k

    @property
    def training(self) -> bool:
        return self.net.training

    def train(self, mode: bool = True):
        self.net.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.net(x, num_stacks=self.k)[-1]


_LEAF_LIST = re.compile(r"\[[\s\d.,eE+\-nulNaIfity]*\]")


# Fields of a result that differ between two runs of the same job (wall-clock measurements).
TIMING_FIELDS = ("train_time_s", "step_time_s", "forward_ms")


def result_files(root: str) -> dict[str, dict]:
    """{path relative to `root`: result dict without `TIMING_FIELDS`} for every result file under
    `root` (runs in progress, under hidden folders such as `.partial/`, are skipped): what must be
    identical whichever way the jobs ran (one process, worker processes, a Dask cluster)."""
    out = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for n in sorted(names):
            if n.endswith(".json") and "__seed" in n:
                path = os.path.join(dirpath, n)
                with open(path) as fh:
                    r = json.load(fh)
                out[os.path.relpath(path, root)] = {k: v for k, v in r.items() if k not in TIMING_FIELDS}
    return out


def write_result(path: str, obj: dict) -> None:
    """Atomic JSON write with lists of numbers on one line each (distances stay compact)."""
    from .serialization import _atomic_write
    text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=True)
    text = _LEAF_LIST.sub(lambda m: "[" + ",".join(p.strip() for p in m.group(0)[1:-1].split(",")) + "]"
                          if m.group(0)[1:-1].strip() else "[]", text)
    _atomic_write(path, ".json", "w", lambda fh: fh.write(text + "\n"))


# ---- many runs: local processes or a Dask cluster ------------------------------------------------

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "TINYBIN_BLAS_THREADS")


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread-count variables to 1 while worker processes are spawned (they read them
    before importing NumPy / Numba), then restore this process's environment."""
    old = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: "1" for k in _THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _job(exp_name: str, row_name: str, seed: int, quick: bool, overrides: dict | None,
         recipe: dict | None, work_root: str | None = None) -> dict:
    """One (row, seed) in a worker process or on a Dask worker: single-threaded, returns the dict.
    Local workers checkpoint under `work_root` (the client's results folder), so a killed run
    resumes; Dask workers, which may not see that folder, do not."""
    from .threads import set_num_threads
    set_num_threads(1)
    exp = get(exp_name)
    return run_one(exp, exp.row(row_name), seed, quick=quick, progress=False, overrides=overrides,
                   recipe=recipe, write=False, work_root=work_root)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run(name: str, seeds: int = 3, root: str | None = None, rows: list[str] | None = None, quick: bool = False,
        progress: bool = True, first_seed: int = 0, jobs: int = 1, scheduler=None,
        overrides: dict | None = None, recipe: dict | None = None) -> list[dict]:
    """Train every (row, seed) of experiment `name` whose result file does not exist yet.

    jobs == 1 and no scheduler: one after the other in this process. jobs > 1: that many spawned
    worker processes, each single-threaded. scheduler: the address of a Dask scheduler (or a
    `dask.distributed.Client`); the jobs run on its workers. In every case this process writes
    the returned result files, which are identical up to the timing fields. Quick runs write only
    when `root` is given. Returns the results of all (row, seed) in (seed, row) order.
    """
    exp = get(name)
    write = (not quick) or root is not None
    root = RESULTS if root is None else root
    if rows:
        for r in rows:
            exp.row(r)
    todo, found = [], {}
    for seed in range(first_seed, first_seed + seeds):
        for row in exp.rows:
            if rows and row.name not in rows:
                continue
            path = result_path(exp.name, row.name, seed, root)
            if write and os.path.exists(path):
                with open(path) as fh:
                    found[(row.name, seed)] = json.load(fh)
            else:
                todo.append((row.name, seed))
    todo.sort(key=lambda t: not is_teacher(exp, exp.row(t[0])))  # distillation teachers first (stable)
    if scheduler is not None:
        found.update(_run_dask(exp, todo, scheduler, root, write, quick, progress, overrides, recipe))
    elif jobs > 1 and len(todo) > 1:
        found.update(_run_pool(exp, todo, jobs, root, write, quick, progress, overrides, recipe))
    else:
        for row_name, seed in todo:
            print(f"[{exp.name}] {row_name} seed {seed}", flush=True)
            found[(row_name, seed)] = run_one(exp, exp.row(row_name), seed, root if write else None, quick=quick,
                                              progress=progress, overrides=overrides, recipe=recipe, write=write)
    order = [(r.name, s) for s in range(first_seed, first_seed + seeds) for r in exp.rows
             if not rows or r.name in rows]
    return [found[k] for k in order if k in found]


def _bar(total: int, desc: str, progress: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    kw = {} if progress else {"disable": True}  # else TQDM_DISABLE=1 still silences it
    return tqdm(total=total, desc=desc, unit="job", dynamic_ncols=True, **kw)


def _collect(exp, pending, get_result, root, write, progress, what):
    """Write each finished job's result; report failures after the others have finished."""
    done, failed = {}, []
    bar = _bar(len(pending), f"{exp.name} ({what})", progress)
    try:
        for key, result in get_result():
            row_name, seed = key
            if isinstance(result, BaseException):
                failed.append((key, result))
                print(f"[{exp.name}] {row_name} seed {seed} failed: {type(result).__name__}: {result}",
                      file=sys.stderr, flush=True)
            else:
                if write:
                    write_result(result_path(exp.name, row_name, seed, root), result)
                done[key] = result
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(pending)} jobs failed, first: {failed[0][0]}: "
                           f"{type(failed[0][1]).__name__}: {failed[0][1]}") from failed[0][1]
    return done


def _run_pool(exp, todo, jobs, root, write, quick, progress, overrides, recipe):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = mp.get_context("spawn")
    with _single_thread_env(), ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as ex:
        futs = {ex.submit(_job, exp.name, r, s, quick, overrides, recipe, root if write else None): (r, s)
                for r, s in todo}

        def results():
            for f in as_completed(futs):
                e = f.exception()
                yield futs[f], (e if e is not None else f.result())
        try:
            return _collect(exp, todo, results, root, write, progress, f"{min(jobs, len(todo))} processes")
        except KeyboardInterrupt:
            for f in futs:
                f.cancel()
            raise


def _run_dask(exp, todo, scheduler, root, write, quick, progress, overrides, recipe):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'tinybin[cluster]'") from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futs = {client.submit(_job, exp.name, r, s, quick, overrides, recipe, pure=False,
                              key=f"tinybin-{exp.name}-{r}-{s}-{time.time_ns()}"): (r, s) for r, s in todo}

        def results():
            for f in as_completed(list(futs)):
                e = f.exception()
                yield futs[f], (e if e is not None else f.result())
        return _collect(exp, todo, results, root, write, progress, "dask")
    finally:
        if own:
            client.close()


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


# ---- report ------------------------------------------------------------------------------------

def load_results(name: str, root: str = RESULTS) -> dict[str, list[dict]]:
    """{row name: [result dicts sorted by seed]} from the JSON files of experiment `name`."""
    exp = get(name)
    folder = os.path.join(root, exp.name)
    out: dict[str, list[dict]] = {r.name: [] for r in exp.rows}
    if not os.path.isdir(folder):
        return out
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".json") or "__seed" not in fn:
            continue
        with open(os.path.join(folder, fn)) as fh:
            r = json.load(fh)
        if r.get("row") in out:
            out[r["row"]].append(r)
    for v in out.values():
        v.sort(key=lambda r: r["seed"])
    return out


def _distances(result: dict) -> np.ndarray | None:
    d = result.get("distances")
    if d is None:
        return None
    return np.array([[np.nan if v is None else v for v in row] for row in d], np.float64)


def score_of(result: dict, metric: str, threshold: float | None = None) -> float | None:
    """One result's score. metric: pckh | pckh_matched | nme | mean_iu, or "pckh@" with
    `threshold` (recomputed from the stored distances). None where the result cannot give it
    (results of the first protocol have no distances and no pckh_matched)."""
    from . import metrics as M
    m = result["metrics"]
    if metric == "mean_iu":
        return float(m["mean_iu"] * 100 if m["mean_iu"] <= 1 else m["mean_iu"])
    if metric in ("pckh", "nme"):
        return float(m[metric])
    if metric == "pckh_matched" and m.get("pckh_matched") is not None:
        return float(m["pckh_matched"])
    d = _distances(result)
    if d is None:
        return None
    if metric == "pckh_matched":
        res = result.get("data", {}).get("resolution") or result.get("net_config", {}).get("resolution", 64)
        threshold = M.matched_threshold(res)
    elif metric != "pckh@" or threshold is None:
        raise ValueError(f"score_of: unknown metric {metric!r}")
    return M.pckh_from_distances(d, threshold)["mean"]


def _mean_std(vals: list[float]) -> dict:
    v = np.array(vals, np.float64)
    return dict(n=len(v), mean=float(v.mean()) if len(v) else None,
                std=float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None))


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> dict:
    """Mean and t-interval of a[s] - b[s] over the seeds s present in both (None scores skipped).

    half = t_{(1+level)/2, n-1} * sd / sqrt(n) with sd the sample std (ddof 1) of the differences;
    n < 2 gives half = None. Returns dict(n, mean, half, lo, hi, seeds).
    """
    from scipy import stats
    seeds = sorted(s for s in set(a) & set(b) if a[s] is not None and b[s] is not None)
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    n = len(d)
    if n == 0:
        return dict(n=0, mean=None, half=None, lo=None, hi=None, seeds=[])
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return dict(n=n, mean=mean, half=half, lo=None if half is None else mean - half,
                hi=None if half is None else mean + half, seeds=seeds)


def _metric_keys(exp: Experiment, threshold: float | None) -> list[str]:
    if exp.metric != "pckh":
        return [exp.metric]
    return ["pckh", "pckh_matched"] + (["pckh@"] if threshold is not None else [])


def _by_seed(results: list[dict], key: str, threshold: float | None) -> dict[int, float | None]:
    return {r["seed"]: score_of(r, key, threshold) for r in results}


def summarize(name: str, root: str = RESULTS, threshold: float | None = None) -> list[dict]:
    """One dict per row: label, n seeds, mean, std (ddof=1 when n > 1) of the experiment's metric,
    params, minutes, paper values; `scores` {metric: mean/std/n} and `diff` {metric: paired
    difference against the experiment's reference row} for pckh and pckh_matched (pose)."""
    exp = get(name)
    res = load_results(name, root)
    keys = _metric_keys(exp, threshold)
    ref = res.get(exp.reference, []) if exp.reference else []
    rows = []
    for row in exp.rows:
        rs = res[row.name]
        scores, diff = {}, {}
        for k in keys:
            by = _by_seed(rs, k, threshold)
            scores[k] = _mean_std([v for v in by.values() if v is not None])
            if exp.reference and row.name != exp.reference:
                diff[k] = paired_difference(by, _by_seed(ref, k, threshold))
        main = scores[exp.metric]
        vals = [v for v in _by_seed(rs, exp.metric, None).values()]
        rows.append(dict(row=row.name, label=row.label, n=main["n"], mean=main["mean"], std=main["std"],
                         values=vals, scores=scores, diff=diff,
                         params=rs[0]["params"] if rs else None,
                         paper_scale_params=rs[0].get("paper_scale_params") if rs else None,
                         minutes=float(np.mean([r["train_time_s"] for r in rs]) / 60) if rs else None,
                         matched_threshold=next((r["metrics"].get("matched_threshold") for r in rs
                                                 if r["metrics"].get("matched_threshold") is not None), None),
                         paper=row.paper, paper_params=row.paper_params))
    return rows


def _fmt_ms(s: dict) -> str:
    return "–" if not s["n"] else f"{s['mean']:.1f} ± {s['std']:.1f} ({s['n']})"


def _fmt_diff(d: dict | None) -> str:
    if not d or not d["n"]:
        return "–"
    if d["half"] is None:
        return f"{d['mean']:+.1f} (1)"
    return f"{d['mean']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}] ({d['n']})"


def report(name: str, root: str = RESULTS, threshold: float | None = None) -> str:
    """Markdown table of experiment `name` from its result files.

    Per row: mean ± std over seeds and, against the reference row, the paired difference over the
    seeds both rows have: mean [95% t-interval] (pairs), at PCKh@0.5 and at pckh_matched (pose),
    and at PCKh@`threshold` recomputed from the stored distances when given. "–": not available
    (e.g. results of the first protocol have no pckh_matched).
    """
    if name in REPORT_LAYOUTS:
        return REPORT_LAYOUTS[name](root)
    exp = get(name)
    summ = summarize(name, root, threshold)
    keys = _metric_keys(exp, threshold)
    ref_label = exp.row(exp.reference).label if exp.reference else None
    mt = next((s["matched_threshold"] for s in summ if s["matched_threshold"] is not None), None)
    names = {"pckh": "PCKh@0.5 %", "nme": "NME % (lower is better)", "mean_iu": "mean IU %",
             "pckh_matched": "PCKh matched" + (f" (@{mt:.2f}) %" if mt else " %"),
             "pckh@": f"PCKh@{threshold:g} %" if threshold is not None else ""}
    head = ["row"]
    for k in keys:
        head.append(f"{names[k]}, mean ± std (seeds)")
        if exp.reference:
            head.append(f"{names[k].split(' %')[0]}: Δ vs ref, mean [95% CI] (pairs)")
    head += ["paper"] + (["paper Δ vs ref"] if exp.reference else []) + [
        "params (ours, downscaled)", "params at paper scale (ours / paper)", "train min/run"]
    lines = [f"### {exp.source}: {exp.title}", ""]
    if exp.reference:
        lines += [f"Reference row: {ref_label}. Δ = row - reference, paired over shared seeds.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper_ref = exp.row(exp.reference).paper if exp.reference else None
    for s in summ:
        cells = [s["label"]]
        for k in keys:
            cells.append("not run" if not s["n"] and k == exp.metric else _fmt_ms(s["scores"][k]))
            if exp.reference:
                cells.append("ref" if s["row"] == exp.reference else _fmt_diff(s["diff"].get(k)))
        cells.append("–" if s["paper"] is None else f"{s['paper']}")
        if exp.reference:
            cells.append("ref" if s["row"] == exp.reference else
                         ("–" if s["paper"] is None or paper_ref is None else f"{s['paper'] - paper_ref:+.1f}"))
        if not s["n"]:
            cells += ["–", f"– / {s['paper_params'] or '–'}", "–"]
        else:
            pp = "–" if s["paper_scale_params"] is None else f"{s['paper_scale_params'] / 1e6:.2f}M"
            cells += [f"{s['params']:,}", f"{pp} / {s['paper_params'] or '–'}", f"{s['minutes']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if exp.comparisons:
        lines += ["", "| comparison | " + " | ".join(f"{names[k].split(' %')[0]}: Δ, mean [95% CI] (pairs)"
                                                  for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for label, (ea, ra), (eb, rb) in exp.comparisons:
            a = load_results(ea, root).get(ra, [])
            b = load_results(eb, root).get(rb, [])
            cells = [_fmt_diff(paired_difference(_by_seed(a, k, threshold), _by_seed(b, k, threshold)))
                     for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    res = load_results(name, root)
    lines += _per_stack_lines(exp, res)
    if exp.timing:
        lines += _timing_lines(exp, res)
    lines += REPORT_SECTIONS.get(name, lambda *a: [])(exp, summ, keys)
    return "\n".join(lines)


def _per_stack_lines(exp: Experiment, res: dict[str, list[dict]]) -> list[str]:
    """Report section: the accuracy of every stack's output of the stacked rows (mean ± std over
    seeds) and its paired difference against stack 1 of the same network."""
    keys = ("pckh", "pckh_matched")
    out = []
    for row in exp.rows:
        rs = [r for r in res[row.name] if r.get("metrics_per_stack")]
        if not rs:
            continue
        if not out:
            out = ["", "Per-stack accuracy (every stack's output of the same trained network; Δ vs its stack 1, "
                   "paired over seeds)", "",
                   "| row | stack | " + " | ".join(f"{k} %, mean ± std (seeds) | {k}: Δ vs stack 1 [95% CI]"
                                                  for k in keys) + " |", "|---|---|" + "---|---|" * len(keys)]
        n_st = max(len(r["metrics_per_stack"]) for r in rs)
        for k in range(n_st):
            cells = [row.label, str(k + 1)]
            for key in keys:
                by = {r["seed"]: r["metrics_per_stack"][k][key] for r in rs if k < len(r["metrics_per_stack"])}
                first = {r["seed"]: r["metrics_per_stack"][0][key] for r in rs}
                cells.append(_fmt_ms(_mean_std(list(by.values()))))
                cells.append("ref" if k == 0 else _fmt_diff(paired_difference(by, first)))
            out.append("| " + " | ".join(cells) + " |")
    return out


def _timing_lines(exp: Experiment, res: dict[str, list[dict]]) -> list[str]:
    """Report section: each row's forward time (median over its runs of `forward_ms`, batch of 16
    test crops, eval mode) and the ratio to the reference row paired over seeds. The runs may
    have shared the machine with other jobs: notebook 07 measures the ratio in one process."""
    ref = {r["seed"]: r.get("forward_ms") for r in res.get(exp.reference, [])} if exp.reference else {}
    out = ["", "Forward time (eval mode, batch 16; median over runs; ratio to the reference paired over seeds)", "",
           "| row | forward ms | ratio to reference, mean (pairs) |", "|---|---|---|"]
    for row in exp.rows:
        t = {r["seed"]: r.get("forward_ms") for r in res[row.name] if r.get("forward_ms")}
        ms = f"{np.median(list(t.values())):.1f}" if t else "–"
        ratios = [t[s] / ref[s] for s in t if ref.get(s)]
        rat = "ref" if row.name == exp.reference else (f"{np.mean(ratios):.3f} ({len(ratios)})" if ratios else "–")
        out.append(f"| {row.label} | {ms} | {rat} |")
    return out


def curves_report(name: str, root: str = RESULTS) -> str:
    """Validation curves of a val experiment (calibration, pilot): per row and checkpoint step, the
    mean over seeds of pckh / pckh_matched, and the paired difference against the reference row."""
    exp = get(name)
    res = load_results(name, root)
    lines = [f"### {exp.title} (validation split)", ""]
    keys = ("pckh", "pckh_matched")
    ref = {r["seed"]: r for r in res.get(exp.reference, [])} if exp.reference else {}
    for row in exp.rows:
        rs = [r for r in res[row.name] if r.get("val_curve")]
        if not rs:
            continue
        steps = rs[0]["val_curve"]["step"]
        head = ["step", *keys] + ([f"Δ {k} vs ref" for k in keys] if exp.reference and row.name != exp.reference
                                  else [])
        lines += [f"{row.label} ({len(rs)} seeds)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, st in enumerate(steps):
            cells = [str(st)]
            for k in keys:
                v = [r["val_curve"][k][i] for r in rs if k in r["val_curve"] and i < len(r["val_curve"][k])]
                cells.append(f"{np.mean(v):.1f}" if v else "–")
            if exp.reference and row.name != exp.reference:
                for k in keys:
                    a = {r["seed"]: r["val_curve"][k][i] for r in rs if i < len(r["val_curve"].get(k, []))}
                    b = {s: r["val_curve"][k][i] for s, r in ref.items()
                         if r.get("val_curve") and i < len(r["val_curve"].get(k, []))}
                    cells.append(_fmt_diff(paired_difference(a, b)))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# The selection rule of the calibration sweep, fixed before its results existed: for each network
# kind (binary, real), the cell with the highest validation PCKh@0.5 averaged over seeds and over
# the last two checkpoints (steps 1750 and 2000 of 2000: less noisy than the last point alone);
# PCKh@0.5 rather than pckh_matched because the matched threshold (2.06 head sizes at R = 64) is
# near saturation on validation and separates the cells less. Ties within 0.5 points go to the
# smaller learning rate, then to no warm-up, then to clipping (the paper's reference, XNOR-Net,
# clips). A kind is chosen only when every cell of it has a result.
SELECT_LAST = 2
SELECT_TIE = 0.5


def calibration_choice(root: str = RESULTS) -> dict[str, dict]:
    """{"binary": {...}, "real": {...}}: per network kind the chosen row and its training settings
    (lr, lr_end, warm-up, clipping), its selection score, and every cell's score; a kind whose
    cells are not all done maps to {"missing": [row names]}. See the rule above."""
    exp = get("calibration")
    res = load_results("calibration", root)
    out: dict[str, dict] = {}
    for kind in ("binary", "real"):
        rows = [r for r in exp.rows if bool(r.net.get("binary", True)) == (kind == "binary")]
        missing = [r.name for r in rows if not res[r.name]]
        if missing:
            out[kind] = {"missing": missing}
            continue
        scores = {}
        for r in rows:
            per_seed = [float(np.mean(x["val_curve"]["pckh"][-SELECT_LAST:])) for x in res[r.name]]
            scores[r.name] = float(np.mean(per_seed))
        best = max(scores.values())

        def order(r):
            t = r.train
            return (t["lr"], bool(t.get("warmup_steps") or t.get("warmup_fraction")), t.get("clip_latent") is None)
        near = sorted((r for r in rows if scores[r.name] >= best - SELECT_TIE), key=order)
        pick = near[0]
        settings = {k: v for k, v in pick.train.items() if k in ("lr", "lr_end", "warmup_steps", "warmup_fraction",
                                                                   "clip_latent")}
        out[kind] = {"row": pick.name, "label": pick.label, "score": scores[pick.name], "best": best,
                     "settings": settings, "scores": scores}
    return out


def calibration_report(root: str = RESULTS) -> str:
    """The selection rule applied to results/calibration, as text."""
    lines = ["### Recipe chosen on the validation split", "",
             f"Rule: highest validation PCKh@0.5, mean of the last {SELECT_LAST} checkpoints; ties within "
             f"{SELECT_TIE} points go to the smaller lr, then no warm-up, then clipping.", ""]
    for kind, c in calibration_choice(root).items():
        if "missing" in c:
            lines.append(f"- {kind}: not chosen yet, {len(c['missing'])} cells to run")
        else:
            lines.append(f"- {kind}: {c['label']} (score {c['score']:.1f}, best cell {c['best']:.1f}); "
                         f"settings {json.dumps(c['settings'])}")
    return "\n".join(lines)


PAPER_TABLE1_PARTS = {  # paper Table 1, PCKh per part on MPII validation
    "bottleneck_real": {"Head": 94.9, "Shoulder": 85.8, "Elbow": 76.9, "Wrist": 71.3, "Hip": 78.1,
                        "Knee": 70.1, "Ankle": 63.2},
    "bottleneck_binary": {"Head": 90.5, "Shoulder": 79.6, "Elbow": 63.0, "Wrist": 57.2, "Hip": 71.1,
                          "Knee": 58.2, "Ankle": 53.4},
}


def parts_report(name: str, root: str = RESULTS) -> str:
    """Per-part PCKh (mean over seeds) of a pose experiment, with the paper's Table 1 values
    where the paper gives them ("ours / paper")."""
    exp = get(name)
    if exp.metric != "pckh":
        raise ValueError(f"parts_report: {name} is not a pose experiment")
    res = load_results(name, root)
    parts = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"]
    lines = ["| part | " + " | ".join(r.label for r in exp.rows) + " |",
             "|---|" + "---|" * len(exp.rows)]
    for part in parts:
        cells = []
        for row in exp.rows:
            vals = [r["metrics"]["pckh_parts"][part] for r in res[row.name]]
            ours = f"{np.mean(vals):.1f}" if vals else "–"
            paper = PAPER_TABLE1_PARTS.get(row.name, {}).get(part)
            cells.append(ours if paper is None else f"{ours} / {paper}")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- faces: Table 9 and Table 12 layouts ---------------------------------------------------------

FACE_ALPHA = 0.07            # the paper's / FAN's CED range and failure threshold on AFLW2000-3D (box NME)
PAPER_RESOLUTION = 256       # the paper's input crops


def face_matched_alpha(resolution: int = 64, alpha: float = FACE_ALPHA) -> float:
    """The NME threshold whose tolerance in heatmap cells equals ``alpha``'s at the paper's 256 px.

    NME divides by the gt box sqrt(w h), so it is scale-free as a formula; but the network sees
    the face through a stride-4 heatmap. Both the paper's crops (FAN: side = 200 (w + h) / 190 of
    the landmark box) and ours (``SyntheticFace``: (w + h) / 2 = 0.475 R, the same rule) put the
    box at the same fraction of the crop, so one heatmap cell is ``4 / (0.475 R)`` of the box:
    3.3% NME at R = 256, 13% at R = 64. An error of c cells is NME = c * 4 / (0.475 R); equal
    tolerance in cells means ``alpha * 256 / R`` (0.28 at R = 64 for alpha = 0.07).
    """
    return float(alpha) * PAPER_RESOLUTION / float(resolution)


def face_errors(result: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(per-image NME as plain ratios (M,), yaw in degrees (M,)) of one face result; None where the
    result does not hold them (``metrics.nme_per_image`` / top-level ``nme_per_image``, ``metrics.yaw``)."""
    m = result.get("metrics", {})
    e = m.get("nme_per_image", result.get("nme_per_image"))
    y = m.get("yaw", result.get("yaw"))
    e = None if e is None else np.asarray(e, np.float64)
    y = None if y is None else np.asarray(y, np.float64)
    if e is not None and y is not None and e.shape != y.shape:
        raise ValueError(f"face_errors: {len(e)} errors but {len(y)} yaw angles in {result.get('row')}")
    return e, y


FACE_BINS = ("[0,30]", "(30,60]", "(60,90]")


def face_scores(result: dict, alpha: float = FACE_ALPHA, matched_alpha: float | None = None) -> dict:
    """NME % per |yaw| bin and mean of the bin means (Table 9's "Mean", 3DDFA's protocol), AUC and
    failure rate (%) at ``alpha`` and at the matched threshold, recomputed from the stored per-image
    NME and yaw. Empty dict when the result holds no per-image errors."""
    from . import metrics as M
    e, y = face_errors(result)
    if e is None:
        return {}
    res = result.get("data", {}).get("resolution") or 64
    ma = face_matched_alpha(res, alpha) if matched_alpha is None else matched_alpha
    out = {"all": float(np.mean(e) * 100), "auc": M.auc(e, alpha) * 100, "fr": M.failure_rate(e, alpha) * 100,
           "auc_matched": M.auc(e, ma) * 100, "fr_matched": M.failure_rate(e, ma) * 100}
    if y is not None:
        by = M.nme_by_yaw(e, y)
        out.update({b: by[b] * 100 for b in FACE_BINS})
        out["mean"] = by["mean"] * 100
        out["counts"] = by["counts"]
    return out


def nme_floor(resolution: int = 64, stride: int = 4, sigma: float = 1.0, n: int = 300, seed: int = 0,
              kind: str = "face_yaw90") -> dict:
    """The NME of a perfect network: decode the exact Gaussian targets (what training regresses)
    of ``n`` synthetic faces with ``tinybin.heatmaps.decode`` (argmax + quarter-cell step) and
    compare with the true points. What is left is the quantisation of the stride-``stride`` map.

    Uses the train split of seed ``seed`` (ground truth only; nothing is chosen from it).
    Returns dict(all, [0,30], (30,60], (60,90], mean (%), cells: mean point error in heatmap cells,
    per_image (n,) ratios, resolution, stride).
    """
    from . import heatmaps as hm
    from . import metrics as M
    (ds,) = make_data(kind, seed=seed, n_train=n, resolution=resolution, splits=("train",))
    b = ds.batch(np.arange(n))
    side = resolution // stride
    maps, _ = hm.render(hm.image_to_heatmap(b["points"], stride), (side, side), sigma)
    pts, _ = hm.decode(maps)
    pred = hm.heatmap_to_image(pts, stride)
    e = M.nme(pred, b["points"], norm="box")
    by = M.nme_by_yaw(e, b["yaw"])
    cells = float(np.mean(np.linalg.norm(pred - b["points"], axis=-1)) / stride)
    return {"all": float(e.mean() * 100), **{k: by[k] * 100 for k in FACE_BINS}, "mean": by["mean"] * 100,
            "cells": cells, "per_image": e, "resolution": resolution, "stride": stride}


def claim_verdict(diff: dict | None, direction: int) -> str:
    """What a paired difference says about a claim of the paper.

    diff: `tinybin.experiments.paired_difference` output (n, mean, lo, hi: 95% CI of row - reference).
    direction: the sign the paper reports for row - reference (+1 or -1; 0: the paper gives no
    direction). Returns "agrees" (CI excludes 0 on the paper's side), "disagrees" (CI excludes 0 on
    the other side), "unresolved" (CI contains 0, or no direction), "not run" (no pairs) or
    "unresolved (1 pair)".
    """
    if direction not in (-1, 0, 1):
        raise ValueError(f"claim_verdict: direction must be -1, 0 or +1, got {direction!r}")
    if not diff or not diff.get("n"):
        return "not run"
    if diff.get("lo") is None or diff.get("hi") is None:
        return "unresolved (1 pair)"
    side = 1 if diff["lo"] > 0 else (-1 if diff["hi"] < 0 else 0)
    if side == 0 or direction == 0:
        return "unresolved"
    return "agrees" if side == direction else "disagrees"


def face_summary(results: dict[str, list[dict]] | None = None, root: str = RESULTS) -> dict:
    """Everything the Table 9 report prints, as numbers: per row the seeds' ``face_scores`` and
    mean ± std of each; paired differences (binary HPM - binary bottleneck, real HPM - binary HPM)
    per bin, mean, AUC and failure rate; and the two claims' verdicts. ``results``: {row: [result
    dicts]} (default: ``load_results("face", root)``)."""
    exp = get("face")
    results = load_results("face", root) if results is None else results
    keys = (*FACE_BINS, "mean", "all", "auc", "fr", "auc_matched", "fr_matched")
    rows, per_seed = [], {}
    for row in exp.rows:
        sc = {r["seed"]: face_scores(r) for r in results.get(row.name, [])}
        sc = {k: v for k, v in sc.items() if v}
        per_seed[row.name] = sc
        rows.append(dict(row=row.name, label=row.label, n=len(sc), paper=PAPER_TABLE9.get(row.name),
                         scores={k: _mean_std([v[k] for v in sc.values() if k in v]) for k in keys}))
    pairs = {}
    for label, a, b in (("binary HPM - binary bottleneck", "face_hpm_binary", "face_bottleneck_binary"),
                        ("real HPM - binary HPM", "face_hpm_real", "face_hpm_binary")):
        pairs[label] = {k: paired_difference({s: v[k] for s, v in per_seed[a].items() if k in v},
                                             {s: v[k] for s, v in per_seed[b].items() if k in v}) for k in keys}
    d = pairs["binary HPM - binary bottleneck"]
    hb, bb = per_seed["face_hpm_binary"], per_seed["face_bottleneck_binary"]
    shared = [s for s in hb if s in bb and "(60,90]" in hb[s] and "(60,90]" in bb[s]]
    large_vs_small = paired_difference({s: hb[s]["(60,90]"] - bb[s]["(60,90]"] for s in shared},
                                       {s: hb[s]["[0,30]"] - bb[s]["[0,30]"] for s in shared})
    claims = [
        dict(claim="binary HPM beats binary bottleneck (mean NME lower)", diff=d["mean"],
             verdict=claim_verdict(d["mean"], -1)),
        dict(claim="... most on large yaw: (HPM - bottleneck) at (60,90] below that at [0,30]",
             diff=large_vs_small, verdict=claim_verdict(large_vs_small, -1)),
    ]
    res = next((r.get("data", {}).get("resolution") for rs in results.values() for r in rs), None) or 64
    return dict(rows=rows, pairs=pairs, claims=claims, per_seed=per_seed, resolution=res,
                matched_alpha=face_matched_alpha(res))


def _fmt2(st: dict, nd: int = 2) -> str:
    return "–" if not st["n"] else f"{st['mean']:.{nd}f} ± {st['std']:.{nd}f}"


def _fmt_d2(d: dict | None, nd: int = 2) -> str:
    if not d or not d["n"]:
        return "–"
    if d["half"] is None:
        return f"{d['mean']:+.{nd}f} (1)"
    return f"{d['mean']:+.{nd}f} [{d['lo']:+.{nd}f}, {d['hi']:+.{nd}f}] ({d['n']})"


def face_report(root: str = RESULTS, results: dict | None = None, floor: dict | None = None) -> str:
    """Table 9's layout (NME % per |yaw| bin and mean, ours mean ± std over seeds, the paper's
    "Ours" row beside), AUC and failure rate at 0.07 and at the matched threshold, the NME floor of
    the heatmap quantisation, and the paired differences with 95% CIs and the claims' verdicts.
    ``floor``: a ``nme_floor`` dict (computed when not given)."""
    exp = get("face")
    sm = face_summary(results, root)
    R, ma = sm["resolution"], sm["matched_alpha"]
    if floor is None or floor.get("resolution") != R:     # the floor at the results' resolution
        floor = nme_floor(R)
    k = R / PAPER_RESOLUTION
    lines = [f"### {exp.source}: {exp.title}", "",
             f"NME in % of sqrt(w h) of the gt box, all 68 points; Mean = mean of the three bin means (3DDFA's "
             f"protocol). Ours: SyntheticFace at R = {R}, stride 4, mean ± std over seeds. AUC and FR in %, at "
             f"{FACE_ALPHA:g} (the paper's range) and at {ma:.2f} (the same tolerance in heatmap cells as "
             f"{FACE_ALPHA:g} at 256 px). One heatmap cell is {100 * 4 / (0.475 * R):.1f}% NME here, "
             f"{100 * 4 / (0.475 * PAPER_RESOLUTION):.1f}% at 256 px: multiply our NME by {k:.2f} to compare "
             f"errors in cells with the paper's.", "",
             "| network | [0,30] | (30,60] | (60,90] | Mean | Mean x R/256 | AUC@0.07 | FR@0.07 | "
             f"AUC@{ma:.2f} | FR@{ma:.2f} | seeds |", "|" + "---|" * 11]
    for r in sm["rows"]:
        sc = r["scores"]
        if not r["n"]:
            lines.append(f"| {r['label']} | not run yet |" + " |" * 8 + " 0 |")
            continue
        m = sc["mean"]
        scaled = "–" if not m["n"] else f"{m['mean'] * k:.2f}"
        lines.append(f"| {r['label']} | " + " | ".join(_fmt2(sc[b]) for b in (*FACE_BINS, "mean")) +
                     f" | {scaled} | " + " | ".join(_fmt2(sc[x], 1) for x in ("auc", "fr", "auc_matched", "fr_matched"))
                     + f" | {r['n']} |")
    for name, vals in PAPER_TABLE9.items():
        lines.append(f"| paper: \"Ours\" ({exp.row(name).label}, AFLW2000-3D, 256 px) | " +
                     " | ".join(f"{vals[b]:.2f}" for b in (*FACE_BINS, "mean")) + f" | {vals['mean']:.2f} | – | – | – | – | – |")
    lines.append(f"| NME floor: decoded true Gaussian targets (R = {floor['resolution']}, stride "
                 f"{floor['stride']}; {floor['cells']:.2f} cells per point) | " +
                 " | ".join(f"{floor[b]:.2f}" for b in (*FACE_BINS, "mean")) +
                 f" | {floor['mean'] * k:.2f} | – | – | – | – | – |")
    lines += ["", "Paired differences over shared seeds, mean [95% CI] (pairs); NME: negative = first row better.",
              "", "| difference | [0,30] | (30,60] | (60,90] | Mean | AUC@0.07 | FR@0.07 |", "|" + "---|" * 7]
    for label, d in sm["pairs"].items():
        lines.append(f"| {label} | " + " | ".join(_fmt_d2(d[b]) for b in (*FACE_BINS, "mean")) + " | " +
                     " | ".join(_fmt_d2(d[x], 1) for x in ("auc", "fr")) + " |")
    lines += ["", "| paper claim | ours: Δ NME %, mean [95% CI] (pairs) | verdict |", "|---|---|---|"]
    for c in sm["claims"]:
        lines.append(f"| {c['claim']} | {_fmt_d2(c['diff'])} | {c['verdict']} |")
    return "\n".join(lines)


SEG_SCORES = ("pixel_acc", "mean_acc", "mean_iu")


def seg_scores(result: dict) -> dict:
    """Pixel accuracy, mean accuracy, mean IU (%) and per-class IU (%, list) of one table12 result."""
    m = result["metrics"]
    out = {k: float(m[k]) * 100 for k in SEG_SCORES}
    out["iu"] = [float("nan") if v is None else float(v) * 100 for v in m.get("iu", [])]
    return out


def table12_summary(results: dict[str, list[dict]] | None = None, root: str = RESULTS) -> dict:
    """Per row mean ± std of the three scores and the per-class IU means; paired differences
    (binary HPM - binary bottleneck, binary HPM - real bottleneck, binary bottleneck - real bottleneck)
    and the verdicts of the two claims (binary HPM beats binary bottleneck; binary HPM almost matches
    the real network: its gap to real is less than half the binary bottleneck's, paired per seed)."""
    exp = get("table12")
    results = load_results("table12", root) if results is None else results
    per_seed = {row.name: {r["seed"]: seg_scores(r) for r in results.get(row.name, [])} for row in exp.rows}
    rows = []
    for row in exp.rows:
        sc = per_seed[row.name]
        ius = np.array([v["iu"] for v in sc.values()], np.float64) if sc else np.zeros((0, 0))
        rows.append(dict(row=row.name, label=row.label, n=len(sc), paper=PAPER_TABLE12.get(row.name),
                         scores={k: _mean_std([v[k] for v in sc.values()]) for k in SEG_SCORES},
                         iu=np.nanmean(ius, 0).tolist() if len(ius) else None))

    def by(name, key):
        return {s: v[key] for s, v in per_seed[name].items()}
    pairs = {}
    for label, a, b in (("binary HPM - binary bottleneck", "seg_hpm_binary", "seg_bottleneck_binary"),
                        ("binary HPM - real bottleneck", "seg_hpm_binary", "seg_bottleneck_real"),
                        ("binary bottleneck - real bottleneck", "seg_bottleneck_binary", "seg_bottleneck_real")):
        pairs[label] = {k: paired_difference(by(a, k), by(b, k)) for k in SEG_SCORES}
    real, hpm, bn = by("seg_bottleneck_real", "mean_iu"), by("seg_hpm_binary", "mean_iu"), by(
        "seg_bottleneck_binary", "mean_iu")
    shared = sorted(set(real) & set(hpm) & set(bn))
    half_gap = paired_difference({s: real[s] - hpm[s] for s in shared},
                                 {s: 0.5 * (real[s] - bn[s]) for s in shared})
    d = pairs["binary HPM - binary bottleneck"]["mean_iu"]
    claims = [dict(claim="binary HPM beats binary bottleneck (mean IU higher)", diff=d,
                   verdict=claim_verdict(d, +1)),
              dict(claim="binary HPM almost matches real: (real - HPM) < (real - binary bottleneck) / 2",
                   diff=half_gap, verdict=claim_verdict(half_gap, -1))]
    return dict(rows=rows, pairs=pairs, claims=claims, per_seed=per_seed)


def table12_report(root: str = RESULTS, results: dict | None = None) -> str:
    """Table 12's layout (pixel accuracy, mean accuracy, mean IU; ours mean ± std over seeds beside
    the paper's 300W numbers), per-class IU, paired differences with 95% CIs and the verdicts."""
    from .skeletons import FACE_PARTS
    exp = get("table12")
    sm = table12_summary(results, root)
    lines = [f"### {exp.source}: {exp.title}", "",
             "Ours: SyntheticFaceParts (masks from the 68 points), labels at the heatmap resolution "
             "(stride 4), confusion accumulated over the test set as FCN does; mean ± std over seeds, %. "
             "Paper: 300W Indoor & Outdoor at 256 px.", "",
             "| network | pixel acc. | mean acc. | mean IU | paper: pixel acc. | mean acc. | mean IU | seeds |",
             "|" + "---|" * 8]
    for r in sm["rows"]:
        p = r["paper"] or {}
        ours = " | ".join(_fmt2(r["scores"][k]) for k in SEG_SCORES) if r["n"] else "not run yet | – | –"
        lines.append(f"| {r['label']} | {ours} | " + " | ".join(f"{p[k]:.2f}" if k in p else "–" for k in SEG_SCORES)
                     + f" | {r['n']} |")
    lines += ["", "Per-class IU %, mean over seeds:", "",
              "| network | " + " | ".join(FACE_PARTS) + " |", "|---|" + "---|" * len(FACE_PARTS)]
    for r in sm["rows"]:
        cells = ["–"] * len(FACE_PARTS) if r["iu"] is None else [f"{v:.1f}" for v in r["iu"]]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences over shared seeds, mean [95% CI] (pairs), points of %; paper's Δ beside:", "",
              "| difference | pixel acc. | mean acc. | mean IU | paper Δ mean IU |", "|---|---|---|---|---|"]
    names = {"binary HPM": "seg_hpm_binary", "binary bottleneck": "seg_bottleneck_binary",
             "real bottleneck": "seg_bottleneck_real"}
    for label, d in sm["pairs"].items():
        a, b = (names[x] for x in label.split(" - "))
        pd_ = PAPER_TABLE12[a]["mean_iu"] - PAPER_TABLE12[b]["mean_iu"]
        lines.append(f"| {label} | " + " | ".join(_fmt_d2(d[k]) for k in SEG_SCORES) + f" | {pd_:+.2f} |")
    lines += ["", "| paper claim | ours: Δ mean IU, mean [95% CI] (pairs) | verdict |", "|---|---|---|"]
    for c in sm["claims"]:
        lines.append(f"| {c['claim']} | {_fmt_d2(c['diff'])} | {c['verdict']} |")
    return "\n".join(lines)


# Experiments whose report has its own layout (the paper's table), instead of the generic one.
REPORT_LAYOUTS = {"face": face_report, "table12": table12_report}


def gap_closed(summ: list[dict], key: str, ceiling: str) -> dict[str, dict | None]:
    """Per row, the fraction of the real-binary gap it closes at metric `key`:

        closed = mean_s (row_s - ref_s) / mean_s (ceiling_s - ref_s)

    (paired differences against the reference row, `summarize`'s diff), with the 95% interval of
    the numerator divided by the same gap (the gap's own uncertainty is not propagated; it is
    printed beside). None where either difference is missing or the gap is not positive."""
    by = {s["row"]: s for s in summ}
    gap = by[ceiling]["diff"].get(key)
    out: dict[str, dict | None] = {}
    for s in summ:
        d = s["diff"].get(key)
        if not gap or not gap["n"] or gap["mean"] is None or gap["mean"] <= 0 or not d or not d["n"]:
            out[s["row"]] = None
            continue
        g = gap["mean"]
        out[s["row"]] = dict(mean=d["mean"] / g, lo=None if d["lo"] is None else d["lo"] / g,
                             hi=None if d["hi"] is None else d["hi"] / g, n=d["n"], gap=g)
    return out


def _beyond_section(exp: Experiment, summ: list[dict], keys: list[str]) -> list[str]:
    """Report section of `beyond`: the fraction of the real-binary gap each row closes."""
    lines = ["", f"Fraction of the real-binary gap closed, (row - {exp.reference}) / (real - {exp.reference}), "
             "paired over seeds; [95% CI of the numerator / mean gap]", "",
             "| row | " + " | ".join(f"{k}: gap closed" for k in keys) + " |", "|---|" + "---|" * len(keys)]
    closed = {k: gap_closed(summ, k, "real") for k in keys}
    for s in summ:
        cells = [s["label"]]
        for k in keys:
            c = closed[k].get(s["row"])
            if s["row"] == exp.reference:
                cells.append("0 (ref)")
            elif c is None:
                cells.append("–")
            elif c["lo"] is None:
                cells.append(f"{c['mean']:.2f} ({c['n']})")
            else:
                cells.append(f"{c['mean']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] ({c['n']}; gap {c['gap']:.1f} pts)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# Extra report sections after an experiment's table: name -> fn(exp, summary rows, metric keys).
REPORT_SECTIONS = {"beyond": _beyond_section}


def _overrides(a) -> dict:
    """CLI training overrides (only the flags that were given)."""
    o = {}
    for flag, key in (("steps", "steps"), ("lr", "lr"), ("lr_end", "lr_end"), ("warmup", "warmup_steps"),
                      ("eval_every", "eval_every"), ("eval_samples", "eval_samples"), ("batch_size", "batch_size")):
        v = getattr(a, flag, None)
        if v is not None:
            o[key] = v
    if getattr(a, "clip_latent", None) is not None:
        o["clip_latent"] = None if a.clip_latent <= 0 else a.clip_latent
    return o


def _add_run_args(r, seeds: int) -> None:
    r.add_argument("--seeds", type=int, default=seeds)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--rows", nargs="*", default=None, help="only these rows")
    r.add_argument("--results", default=None, help="results folder (default: results/; quick runs write "
                                                    "only when it is given)")
    r.add_argument("--quick", action="store_true", help="tiny smoke runs")
    r.add_argument("--jobs", type=int, default=None, help="worker processes (default: number of cores)")
    r.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    r.add_argument("--recipe", default=None, help="recipe JSON: {\"steps\": .., \"binary\": {..}, \"real\": {..}}")
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--lr", type=float, default=None, help="learning rate (lr_end = lr / 5 unless given)")
    r.add_argument("--lr-end", type=float, default=None)
    r.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    r.add_argument("--clip-latent", type=float, default=None, help="clamp latent weights to [-c, c]; 0: off")
    r.add_argument("--eval-every", type=int, default=None, help="validation interval (val experiments)")
    r.add_argument("--eval-samples", type=int, default=None)
    r.add_argument("--batch-size", type=int, default=None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinybin.experiments",
                                 description="Run the paper's ablations on downscaled synthetic data.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments and their rows")
    r = sub.add_parser("run", help="train every (row, seed) not done yet (resumable)")
    r.add_argument("experiment", nargs="+", help=f"one or more of {sorted(EXPERIMENTS)}")
    _add_run_args(r, 3)
    c = sub.add_parser("calibrate", help="the calibration sweep on the validation split (results/calibration)")
    _add_run_args(c, 1)
    p = sub.add_parser("report", help="print tables from the result files")
    p.add_argument("experiment", nargs="*", help="default: all")
    p.add_argument("--results", default=RESULTS, help="results folder (default: ./results)")
    p.add_argument("--threshold", type=float, default=None, help="also PCKh at this threshold, from distances")
    p.add_argument("--curves", action="store_true", help="validation curves (calibration, pilot)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            for e in EXPERIMENTS.values():
                print(f"{e.name:<12} {e.source:<24} {e.title}")
                for row in e.rows:
                    print(f"    {row.name:<34} {row.label}")
        elif a.cmd in ("run", "calibrate"):
            names = ["calibration"] if a.cmd == "calibrate" else a.experiment
            recipe = load_recipe(a.recipe) if a.recipe else None
            jobs = default_jobs() if a.jobs is None else a.jobs
            if jobs < 1:
                raise ValueError(f"--jobs must be >= 1, got {jobs}")
            for name in names:
                exp = get(name)
                over = _overrides(a)
                if exp.name == "calibration" and set(over) & {"lr", "lr_end", "warmup_steps", "clip_latent"}:
                    raise ValueError("calibration rows set lr, warm-up and clipping themselves; "
                                     "only --steps, --eval-every, --eval-samples, --batch-size apply")
                run(name, a.seeds, a.results, a.rows, a.quick, first_seed=a.first_seed, jobs=jobs,
                    scheduler=a.scheduler, overrides=over, recipe=recipe)
                if not a.quick or a.results:
                    root = a.results or RESULTS
                    print(report(name, root))
                    if exp.split == "val":
                        print(curves_report(name, root))
        else:
            for name in a.experiment or list(EXPERIMENTS):
                print(curves_report(name, a.results) if a.curves else report(name, a.results, a.threshold))
                if name == "calibration":
                    print()
                    print(calibration_report(a.results))
                print()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
