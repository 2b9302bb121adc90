"""Command line: `python -m tinybin {demo,train,eval,bench,summary,predict} --help`.

demo     train a downscaled binary hierarchical hourglass and its real twin on synthetic poses,
         evaluate PCKh, pack the binary net, time packed vs float, write plots to runs/demo/
train    train a network on synthetic pose, face or part-segmentation data (resumable checkpoints)
eval     evaluate a checkpoint with the paper's metrics
bench    time the packed (XNOR-popcount) forward against the float forward of a network
summary  per-layer parameters, bytes and MACs, float vs packed
predict  landmarks on an image file of your own, drawn to a PNG and written to JSON
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


class CLIError(Exception):
    """An error to report in one line, without a traceback."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every default (also of options without a help text) and keeps the
    descriptions' line breaks."""

    def _format_action(self, action):
        if action.help is None and action.option_strings and action.default is not argparse.SUPPRESS:
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


# ---- argument types: a bad value is one `error:` line naming the flag, exit status 2 ----------

def _int_min(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {v}")
        return v
    parse.__name__ = f"integer >= {lo}"
    return parse


def _float_in(lo: float, hi: float = float("inf"), lo_open: bool = True):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = np.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
        if not ok:
            rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]" if np.isfinite(hi) else f"{'>' if lo_open else '>='} {lo:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {'in ' if np.isfinite(hi) else ''}{rng}, got {text}")
        return v
    parse.__name__ = "number"
    return parse


def _finite_any(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


def _recipe():
    """The calibrated training settings (binary, real) and the data settings of the experiments:
    the CLI defaults."""
    from .experiments import DATA, recommended
    return recommended(True), recommended(False), DATA


def _both(key: str, binary: dict, real: dict) -> str:
    """'5' or 'binary 0.01, real 0.005': a setting of the binary and the real recipe, for --help."""
    def fmt(v):
        return "off" if v is None else format(v, "g")
    b, r = binary.get(key), real.get(key)
    return fmt(b) if b == r else f"binary {fmt(b)}, real {fmt(r)}"


# ---- helpers ---------------------------------------------------------------------------------

def _net_args(p: argparse.ArgumentParser) -> None:
    from .blocks import BLOCKS
    g = p.add_argument_group("network (defaults: the downscaled preset)")
    g.add_argument("--block", default="hpm", choices=list(BLOCKS),
                   help="the residual block (tinybin.blocks.BLOCKS; default: hpm)")
    g.add_argument("--real", action="store_true", help="real-valued network (ReLU, float weights)")
    g.add_argument("--width", type=_int_min(4), default=None, help="channels F (downscaled: 64, paper: 256)")
    g.add_argument("--depth", type=_int_min(1), default=None, help="hourglass depth D (downscaled: 3, paper: 4)")
    g.add_argument("--resolution", type=_int_min(16), default=None,
                   help="input size R (downscaled: 64, paper: 256)")
    g.add_argument("--stacks", type=_int_min(1), default=1)
    g.add_argument("--improved", action="store_true", help="U-Net-like hourglass (paper Fig. 11)")
    g.add_argument("--pool", default="max", choices=["max", "avg"])
    g.add_argument("--relu-after-conv", action="store_true", help="the '+ReLU' variant (Table 4)")
    g.add_argument("--paper-scale", action="store_true", help="R=256, F=256, D=4 (paper)")


def _build(a, num_landmarks: int = 16):
    from .models import HourGlass
    kw = dict(block=a.block, binary=not a.real, stacks=a.stacks, improved=a.improved, pool=a.pool,
              relu_after_conv=a.relu_after_conv, num_landmarks=num_landmarks)
    for k in ("width", "depth", "resolution"):
        if getattr(a, k) is not None:
            kw[k] = getattr(a, k)
    return (HourGlass.paper if a.paper_scale else HourGlass.downscaled)(**kw)


def load_network(path: str):
    """Rebuild the network a checkpoint was saved from and load its weights (the file is checked
    before anything is built: `tinybin.serialization.load_network`)."""
    from . import serialization
    if not os.path.exists(path):
        raise CLIError(f"checkpoint {path!r} does not exist")
    try:
        return serialization.load_network(path)
    except ValueError as e:
        raise CLIError(f"cannot load checkpoint {path!r}: {e}") from None


def _checkpoint_meta(path: str) -> dict:
    from .serialization import NpzReader, read_meta
    with NpzReader(path) as z:
        return read_meta(z, path, "checkpoint")


def _check_out_stem(stem: str, what: str) -> None:
    """An output path stem whose folder must exist (checked before any work)."""
    folder = os.path.dirname(os.path.abspath(stem))
    if not os.path.isdir(folder):
        raise CLIError(f"{what}: folder {os.path.dirname(stem) or folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"{what}: folder {folder!r} is not writable")


def landmark_names(num_landmarks: int) -> list[str]:
    """Names of a network's output maps: MPII joints (16), iBUG-68 face points named by group
    (68, e.g. "jaw_1"), part classes (7), else "point_1", ..."""
    from .skeletons import FACE68_GROUPS, FACE_PARTS, MPII_JOINTS
    if num_landmarks == len(MPII_JOINTS):
        return list(MPII_JOINTS)
    if num_landmarks == 68:
        names = [""] * 68
        for group, idx in FACE68_GROUPS.items():
            for k, i in enumerate(idx):
                names[i] = f"{group}_{k + 1}"
        return names
    if num_landmarks == len(FACE_PARTS):
        return list(FACE_PARTS)
    return [f"point_{i + 1}" for i in range(num_landmarks)]


def _data(kind: str, n_train: int, n_test: int, resolution: int, seed: int, difficulty: float):
    from .experiments import make_data
    return make_data(kind, seed=seed, n_train=n_train, n_test=n_test, resolution=resolution,
                     difficulty=difficulty)


def _float_forward(net, x):
    from .tensor import Tensor, no_grad
    net.eval()
    with no_grad():
        out = net(Tensor(x))
    return out[-1].data if isinstance(out, list) else out.data


# ---- demo --------------------------------------------------------------------------------------

def cmd_demo(a) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from . import count_parameters, packed, viz
    from .experiments import DATA
    from .metrics import pckh, pckh_curve
    from .models import HourGlass
    from .train import TrainConfig, Trainer, annotated, evaluate, write_json

    out = a.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out!r} is a file, not a folder")
    os.makedirs(out, exist_ok=True)
    quick = a.quick or os.environ.get("TINYBIN_QUICK") == "1"
    steps = 3 if quick else a.steps
    R = 32 if quick else 64
    n_train, n_test = (32, 16) if quick else (3000, 400)
    print(f"tinybin demo: synthetic poses ({n_train} train / {n_test} test, {R}x{R}), "
          f"{steps} training steps per network -> {out}/", flush=True)
    t_start = time.time()
    train, test = _data("pose", n_train, n_test, R, a.seed, DATA["difficulty"])
    kw = dict(width=16, depth=2, resolution=32) if quick else {}
    nets = {"binary hpm": HourGlass.downscaled(block="hpm", binary=True, seed=a.seed, **kw),
            "real hpm": HourGlass.downscaled(block="hpm", binary=False, seed=a.seed, **kw)}
    untrained = evaluate(HourGlass.downscaled(block="hpm", binary=True, seed=a.seed + 1, **kw), test)
    # baseline "predict the mean pose": every test image gets the mean annotated training pose
    tr_b = train.batch(np.arange(min(len(train), 500)))
    mean_pose = np.nanmean(np.where(annotated(tr_b)[..., None] > 0, tr_b["points"], np.nan), axis=0)
    te = test.batch(np.arange(len(test)))
    mean_score = pckh(np.broadcast_to(mean_pose, te["points"].shape), te["points"], te["head_size"],
                      annotated(te) > 0)["mean"]
    results, histories = {}, {}
    for name, net in nets.items():
        print(f"\n== training the {name} hourglass ({count_parameters(net):,} parameters)", flush=True)
        cfg = TrainConfig.recommended(binary=net.config["binary"], steps=steps, batch_size=4 if quick else 16,
                                      seed=a.seed, eval_samples=len(test))
        tr = Trainer(net, train, cfg, val=test, out_dir=os.path.join(out, name.replace(" ", "_")),
                     progress=not a.no_progress)
        histories[name] = tr.fit(resume=False)
        results[name] = evaluate(net, test, return_predictions=True)
        results[name]["train_time"] = tr.train_time
        results[name]["step_time"] = tr.train_time / steps
        print(f"   PCKh@0.5 = {results[name]['pckh']:.1f}%  ({tr.train_time / 60:.1f} min, "
              f"{tr.train_time / steps:.2f} s/step)", flush=True)

    # pack the binary network, check it, time it
    bnet = nets["binary hpm"]
    p = packed.pack(bnet)
    imgs = te["image"][:16].astype(np.float32)
    ref = _float_forward(bnet, imgs)
    got = p(imgs)
    max_diff = float(np.abs(got - ref).max())
    from .timing import compare
    tt = compare({"float": lambda: _float_forward(bnet, imgs), "packed": lambda: p(imgs)}, rounds=5)
    t_float, t_packed = tt.median("float"), tt.median("packed")
    p.save(os.path.join(out, "binary_hpm.packed.npz"))
    from .serialization import save
    save(bnet, os.path.join(out, "binary_hpm.float.npz"))
    size_float = os.path.getsize(os.path.join(out, "binary_hpm.float.npz"))
    size_packed = os.path.getsize(os.path.join(out, "binary_hpm.packed.npz"))

    # plots
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    viz.plot_history(ax, {k: h["loss"] for k, h in histories.items()}, logy=True)
    ax.set_xlabel("step")
    ax.set_ylabel("sigmoid BCE loss")
    fig.savefig(os.path.join(out, "loss_curves.png"), dpi=110, bbox_inches="tight")
    curves = {k: pckh_curve(r["pred"], r["gt"], te["head_size"], r["annotated"]) for k, r in results.items()}
    fig = Figure(figsize=(6, 4))
    viz.plot_pckh_curve(fig.subplots(), curves)
    fig.savefig(os.path.join(out, "pckh_curve.png"), dpi=110, bbox_inches="tight")
    k = 8
    fig = viz.contact_sheet(te["image"][:k], results["binary hpm"]["pred"][:k], kind="pose",
                            titles=[f"binary #{i}" for i in range(k)])
    fig.savefig(os.path.join(out, "predictions.png"), dpi=110, bbox_inches="tight")

    rows = [("untrained binary hpm", untrained["pckh"], "–"), ("mean pose", mean_score, "–")]
    rows += [(n, r["pckh"], f"{r['train_time'] / 60:.1f} min") for n, r in results.items()]
    table = ["| network | PCKh@0.5 (%) | training |", "|---|---|---|"]
    table += [f"| {n} | {s:.1f} | {t} |" for n, s, t in rows]
    checks = {
        "binary beats untrained by > 20 points": results["binary hpm"]["pckh"] > untrained["pckh"] + 20,
        "binary beats mean pose by > 10 points": results["binary hpm"]["pckh"] > mean_score + 10,
        "packed output equals float output (max |diff| < 1e-4)": max_diff < 1e-4,
    }
    lines = ["# tinybin demo", "", f"Synthetic poses, {R}x{R}, {n_train} train / {n_test} test images, seed {a.seed}, "
             f"{steps} steps of RMSprop (batch {16 if not quick else 4}). Reproduce: `make demo`.", "",
             *table, "",
             f"Packed binary network: max |packed - float| = {max_diff:.2e}; forward of 16 images "
             f"{t_float * 1e3:.1f} ms float vs {t_packed * 1e3:.1f} ms packed ({t_float / t_packed:.2f}x); "
             f"file {size_float / 1024:.0f} KiB float32 vs {size_packed / 1024:.0f} KiB packed "
             f"({size_float / size_packed:.1f}x smaller).", "",
             "Checks: " + ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in checks.items()), "",
             f"Total time {(time.time() - t_start) / 60:.1f} min.", "",
             "Files: loss_curves.png, pckh_curve.png, predictions.png, binary_hpm.packed.npz, "
             "binary_hpm/checkpoint.npz, real_hpm/checkpoint.npz"]
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w") as fh:
        fh.write(text + "\n")
    write_json(os.path.join(out, "summary.json"), {
        "pckh": {n: r["pckh"] for n, r in results.items()}, "untrained": untrained["pckh"],
        "mean_pose": mean_score, "max_diff": max_diff, "t_float": t_float, "t_packed": t_packed,
        "size_float": size_float, "size_packed": size_packed, "checks": checks, "steps": steps})
    print("\n" + text)
    return 0 if (quick or all(checks.values())) else 1


# ---- train / eval ------------------------------------------------------------------------------

def train_config(a, loss: str):
    """The `train` command's TrainConfig: the calibrated recipe for the network's kind (binary, or
    real with --real), the flags that were given on top. --lr alone ends the schedule at lr / 5."""
    from .experiments import LR_DROP
    from .train import TrainConfig
    given = {k: v for k, v in dict(steps=a.steps, batch_size=a.batch_size, lr=a.lr, lr_end=a.lr_end).items()
             if v is not None}
    if a.lr is not None and a.lr_end is None:
        given["lr_end"] = a.lr * LR_DROP
    if a.clip_latent is not None:
        given["clip_latent"] = a.clip_latent or None
    return TrainConfig.recommended(binary=not a.real, seed=a.seed, loss=a.loss or loss, augment=not a.no_augment,
                                   ckpt_every=a.ckpt_every, eval_every=a.eval_every, **given)


def cmd_train(a) -> int:
    from . import count_parameters
    from .data import get_kind
    from .train import Trainer
    kind = get_kind(a.data)
    net = _build(a, kind.num_landmarks)
    R = net.config["resolution"]
    train, test = _data(kind.name, a.n_train, a.n_test, R, a.seed, a.difficulty)
    cfg = train_config(a, kind.loss)
    print(f"training {net.config} ({count_parameters(net):,} parameters) -> {a.out}", flush=True)
    tr = Trainer(net, train, cfg, val=test, out_dir=a.out, progress=not a.no_progress)
    tr.fit(resume=not a.restart)
    res = tr.evaluate()
    res["data"] = dict(kind=kind.name, n_test=a.n_test, resolution=R, difficulty=a.difficulty, seed=a.seed)
    _print_json({k: v for k, v in res.items() if k not in ("errors",)})
    return 0


def _print_json(obj) -> None:
    """Valid JSON on stdout: NaN/Inf (e.g. an NME over no visible points) are written as null."""
    from .serialization import json_safe
    print(json.dumps(json_safe(obj), indent=1, allow_nan=False))


def cmd_eval(a) -> int:
    from .data import get_kind, kind_for_landmarks
    from .train import evaluate
    net = load_network(a.checkpoint)
    L = net.config["num_landmarks"]
    kind = get_kind(a.data) if a.data else kind_for_landmarks(L)
    if kind is None:
        raise CLIError(f"cannot tell the data kind of a {L}-landmark network; pass --data")
    if kind.num_landmarks != L:
        raise CLIError(f"the network has {L} output maps but {kind.name!r} data has {kind.num_landmarks}")
    _, test = _data(kind.name, 1, a.n, net.config["resolution"], a.seed, a.difficulty)
    res = evaluate(net, test)
    res["data"] = dict(kind=kind.name, n=a.n, resolution=net.config["resolution"], difficulty=a.difficulty,
                       seed=a.seed, split="test")
    _print_json({k: v for k, v in res.items() if k not in ("errors",)})
    return 0


# ---- bench / summary ---------------------------------------------------------------------------

def cmd_bench(a) -> int:
    from . import packed
    net = load_network(a.checkpoint) if a.checkpoint else _build(a)
    if not net.config["binary"]:
        raise CLIError("bench compares packed and float inference: give a binary network")
    R = net.config["resolution"]
    x = np.random.default_rng(0).random((a.batch, R, R, 3)).astype(np.float32)
    p = packed.pack(net)
    ref = _float_forward(net, x)
    got = p(x)
    got = got[-1] if isinstance(got, list) else got
    from .timing import compare
    if a.repeats < 1:
        raise CLIError(f"--repeats must be >= 1, got {a.repeats}")
    t = compare({"float": lambda: _float_forward(net, x), "packed": lambda: p(x)}, rounds=a.repeats)
    print(f"network {net.config}\nbatch {a.batch} at {R}x{R}: float {t.median('float') * 1e3:.1f} ms, "
          f"packed {t.median('packed') * 1e3:.1f} ms, speed-up {t.ratio('float', 'packed'):.2f}x "
          f"(median of {a.repeats} interleaved rounds), max |diff| {np.abs(got - ref).max():.2e}")
    return 0


def cmd_summary(a) -> int:
    from . import packed
    net = load_network(a.checkpoint) if a.checkpoint else _build(a)
    packed.summary(net)
    return 0


# ---- predict ---------------------------------------------------------------------------------

def cmd_predict(a) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from . import viz
    from .heatmaps import decode, heatmap_to_image
    from .images import read_image
    from .transforms import apply_affine, crop_transform, invert_affine, warp_image

    if not os.path.exists(a.image):
        raise CLIError(f"image {a.image!r} does not exist")
    # outputs: IMAGE.landmarks.png/.json next to the image, or --out STEM(.png/.json) as given
    if a.out:
        stem = a.out  # a stem: only a .png / .json ending is dropped (gh.v2 stays gh.v2)
        for ext in (".png", ".json"):
            stem = stem[:-len(ext)] if stem.endswith(ext) else stem
    else:
        stem = os.path.splitext(a.image)[0] + ".landmarks"
    _check_out_stem(stem, "--out")
    img = read_image(a.image)
    net = load_network(a.checkpoint)
    data = (_checkpoint_meta(a.checkpoint).get("data_settings") or {}).get("class", "")
    if not data or "Synthetic" in data:
        print("warning: this model was trained on tinybin's synthetic figures"
              + ("" if data else " (or its training data is not recorded)")
              + ": it is a teaching model, not a landmark detector for photographs", file=sys.stderr)
    R = net.config["resolution"]
    H, W = img.shape[:2]
    if a.center is not None:
        center = np.array(a.center, np.float64)
    else:
        center = np.array([(W - 1) / 2, (H - 1) / 2])
    scale = a.scale if a.scale is not None else max(H, W) / 200.0
    if not scale > 0:
        raise CLIError(f"--scale must be > 0, got {scale}")
    M = crop_transform(center, scale, R)
    crop = warp_image(img, M, R)
    maps = _float_forward(net, crop[None].astype(np.float32))[0]
    pts_hm, scores = decode(maps)
    pts = apply_affine(heatmap_to_image(pts_hm, 4), invert_affine(M))
    fig = Figure(figsize=(6, 6 * H / max(W, 1)))
    ax = fig.subplots()
    L = net.config["num_landmarks"]
    if L == 16:
        viz.draw_pose(ax, img, pts)
    elif L == 68:
        viz.draw_face(ax, img, pts)
    else:
        ax.imshow(img)
        ax.plot(pts[:, 0], pts[:, 1], "r.")
    ax.set_axis_off()
    fig.savefig(stem + ".png", dpi=100, bbox_inches="tight")
    with open(stem + ".json", "w") as fh:
        json.dump({"image": a.image, "center": center.tolist(), "scale": scale,
                   "names": landmark_names(L),
                   "points": np.round(pts, 2).tolist(), "scores": np.round(1 / (1 + np.exp(-scores)), 4).tolist()},
                  fh, indent=1)
    print(f"wrote {stem}.png and {stem}.json ({L} landmarks)")
    return 0


# ---- parser ------------------------------------------------------------------------------------

def _prog() -> str:
    """`tinybin` when run as the installed script, else `python -m tinybin`."""
    return "tinybin" if os.path.basename(sys.argv[0] or "") == "tinybin" else "python -m tinybin"


def build_parser() -> argparse.ArgumentParser:
    from .data import KINDS
    from .losses import LOSSES
    binary, real, data = _recipe()
    ap = argparse.ArgumentParser(prog=_prog(), description=__doc__, formatter_class=_Formatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def command(name, **kw):
        return sub.add_parser(name, formatter_class=_Formatter, **kw)

    d = command("demo", help="the main job (what `make demo` runs)")
    d.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder")
    d.add_argument("--steps", type=_int_min(1), default=700, help="training steps per network")
    d.add_argument("--seed", type=_int_min(0), default=0)
    d.add_argument("--quick", action="store_true", help="a few steps on tiny data (smoke test)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(fn=cmd_demo)

    t = command("train", help="train on synthetic data (resumes from OUT/checkpoint.npz)",
                description="Train a network on synthetic data. The defaults are the recipe of the "
                            "experiments (tinybin.experiments.recommended and DATA): the recipe "
                            "calibrated on the validation split, for a binary or a real network.")
    _net_args(t)
    t.add_argument("--data", default="pose", choices=list(KINDS), help="the data kind (tinybin.data.KINDS)")
    t.add_argument("--steps", type=_int_min(0), default=None,
                   help=f"default: the recipe's ({_both('steps', binary, real)})")
    t.add_argument("--batch-size", type=_int_min(1), default=None,
                   help=f"default: the recipe's ({_both('batch_size', binary, real)})")
    t.add_argument("--lr", type=_float_in(0), default=None,
                   help=f"default: the calibrated recipe's ({_both('lr', binary, real)})")
    t.add_argument("--lr-end", type=_float_in(0), default=None,
                   help="the learning rate after four geometric drops (= --lr: constant; default: "
                        "the recipe's, or --lr / 5 when --lr is given)")
    t.add_argument("--loss", default=None, choices=list(LOSSES),
                   help="tinybin.losses.LOSSES (None: the data kind's loss)")
    t.add_argument("--clip-latent", type=_float_in(0, lo_open=False), default=None,
                   help=f"clamp the latent binary weights to [-C, C]; 0: off (default: the recipe's, "
                        f"{_both('clip_latent', binary, real)})")
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--n-train", type=_int_min(1), default=data["n_train"])
    t.add_argument("--n-test", type=_int_min(1), default=data["n_test"])
    t.add_argument("--difficulty", type=_float_in(0, 1, lo_open=False), default=data["difficulty"])
    t.add_argument("--seed", type=_int_min(0), default=0)
    t.add_argument("--ckpt-every", type=_int_min(0), default=100, help="0: only at the end")
    t.add_argument("--eval-every", type=_int_min(0), default=0, help="0: only at the end")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--out", default=os.path.join("runs", "train"), help="output folder")
    t.set_defaults(fn=cmd_train)

    e = command("eval", help="evaluate a checkpoint on synthetic test data")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", choices=list(KINDS), default=None,
                   help="the data kind (None: the one whose landmark count the network has)")
    e.add_argument("--n", type=_int_min(1), default=data["n_test"], help="test images")
    e.add_argument("--difficulty", type=_float_in(0, 1, lo_open=False), default=data["difficulty"])
    e.add_argument("--seed", type=_int_min(0), default=0)
    e.set_defaults(fn=cmd_eval)

    b = command("bench", help="packed vs float forward time of a binary network")
    _net_args(b)
    b.add_argument("--checkpoint", default=None)
    b.add_argument("--batch", type=_int_min(1), default=1)
    b.add_argument("--repeats", type=_int_min(1), default=5)
    b.set_defaults(fn=cmd_bench)

    s = command("summary", help="per-layer parameters, bytes and MACs")
    _net_args(s)
    s.add_argument("--checkpoint", default=None)
    s.set_defaults(fn=cmd_summary)

    p = command("predict", help="landmarks on your own image",
                description="""Predict landmarks on IMAGE and write IMAGE.landmarks.png / .json next to it.

The network sees a square crop of side 200*SCALE pixels centred at (X, Y), resized to its input
resolution (the MPII convention: SCALE is the person's height / 200, the centre is the middle of
the person). Without --center the crop is centred on the image; without --scale it covers the
whole image (SCALE = max(height, width) / 200). For a face, SCALE ~ (box width + height) / 190.
A model trained on tinybin's synthetic figures is a teaching model, not a detector for photographs.""")
    p.add_argument("image", help="an image file (PNG, JPEG, TIFF, ...; 8/16-bit, float, greyscale, alpha)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `train` or `demo`")
    p.add_argument("--center", nargs=2, type=_finite_any, metavar=("X", "Y"), default=None)
    p.add_argument("--scale", type=_float_in(0), default=None, metavar="S")
    p.add_argument("--out", default=None,
                   help="output path stem: writes STEM.png and STEM.json (None: IMAGE.landmarks)")
    p.set_defaults(fn=cmd_predict)
    ap._commands = {"demo": d, "train": t, "eval": e, "bench": b, "summary": s, "predict": p}
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a, extra = ap.parse_known_args(argv)
    if extra:  # the subcommand's usage, not the top level's
        ap._commands[a.cmd].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return a.fn(a)
    except (CLIError, ValueError) as e:  # bad input that reached the library: one line, no traceback
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:  # a diverged training run (the last good checkpoint is kept)
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C; during training: stopped after a step, checkpointed
        msg = f"{ap.prog}: {e}" if str(e) else f"{ap.prog}: interrupted"
        if a.cmd == "train" and getattr(e, "checkpoint", None):
            msg += "; the same command resumes from it"
        print(f"\n{msg}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
