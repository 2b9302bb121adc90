"""Command line: `python -m tinybin {demo,train,eval,bench,summary,predict} --help`.

demo     train a downscaled binary hierarchical hourglass and its real twin on synthetic poses,
         evaluate PCKh, pack the binary net, time packed vs float, write plots to runs/demo/
train    train a network on synthetic pose or face data (resumable checkpoints)
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CLIError(Exception):
    """An error to report in one line, without a traceback."""


# ---- helpers ---------------------------------------------------------------------------------

def _net_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (defaults: the downscaled preset)")
    g.add_argument("--block", default="hpm", help="bottleneck | wide | multiscale | multiscale_no1x1 | wide_no1x1 | hpm")
    g.add_argument("--real", action="store_true", help="real-valued network (ReLU, float weights)")
    g.add_argument("--width", type=int, default=None, help="channels F (downscaled: 64, paper: 256)")
    g.add_argument("--depth", type=int, default=None, help="hourglass depth D (downscaled: 3, paper: 4)")
    g.add_argument("--resolution", type=int, default=None, help="input size R (downscaled: 64, paper: 256)")
    g.add_argument("--stacks", type=int, default=1)
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
    """Rebuild the network a checkpoint was saved from and load its weights."""
    from .models import HourGlass
    from .serialization import load, read_meta, read_npz
    if not os.path.exists(path):
        raise CLIError(f"checkpoint {path!r} does not exist")
    try:
        meta = read_meta(read_npz(path), path, "checkpoint")
        net = HourGlass.from_config(meta["config"])
        load(net, path)
    except (ValueError, TypeError, KeyError) as e:
        raise CLIError(f"cannot load checkpoint {path!r}: {e}") from None
    return net


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
    from .experiments import BUDGET, DATA
    from .metrics import pckh, pckh_curve
    from .models import HourGlass
    from .train import TrainConfig, Trainer, annotated, evaluate, write_json

    out = a.out
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
        cfg = TrainConfig(steps=steps, batch_size=4 if quick else 16, lr=BUDGET["lr"], lr_end=BUDGET["lr_end"],
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

def cmd_train(a) -> int:
    from . import count_parameters
    from .train import TrainConfig, Trainer
    kind = a.data
    L = {"pose": 16, "face": 68, "segmentation": 7}[kind]
    net = _build(a, L)
    R = net.config["resolution"]
    train, test = _data(kind, a.n_train, a.n_test, R, a.seed, a.difficulty)
    cfg = TrainConfig(steps=a.steps, batch_size=a.batch_size, lr=a.lr, lr_end=a.lr_end, seed=a.seed,
                      loss="ce" if kind == "segmentation" else a.loss, augment=not a.no_augment,
                      ckpt_every=a.ckpt_every, eval_every=a.eval_every)
    print(f"training {net.config} ({count_parameters(net):,} parameters) -> {a.out}", flush=True)
    tr = Trainer(net, train, cfg, val=test, out_dir=a.out)
    tr.fit(resume=not a.restart)
    res = tr.evaluate()
    print(json.dumps({k: v for k, v in res.items() if k not in ("errors",)}, indent=1))
    return 0


def cmd_eval(a) -> int:
    from .train import evaluate
    net = load_network(a.checkpoint)
    L = net.config["num_landmarks"]
    kind = a.data or {16: "pose", 68: "face", 7: "segmentation"}.get(L)
    if kind is None:
        raise CLIError(f"cannot tell the data kind of a {L}-landmark network; pass --data")
    _, test = _data(kind, 1, a.n, net.config["resolution"], a.seed, a.difficulty)
    res = evaluate(net, test, kind=kind if kind == "segmentation" else None)
    print(json.dumps({k: v for k, v in res.items() if k not in ("errors",)}, indent=1))
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
    from PIL import Image, UnidentifiedImageError

    from . import viz
    from .heatmaps import decode, heatmap_to_image
    from .transforms import apply_affine, crop_transform, invert_affine, warp_image

    if not os.path.exists(a.image):
        raise CLIError(f"image {a.image!r} does not exist")
    try:
        with Image.open(a.image) as im:
            img = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise CLIError(f"cannot read {a.image!r} as an image ({e})") from None
    net = load_network(a.checkpoint)
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
    stem = os.path.splitext(a.out or os.path.basename(a.image) + ".landmarks")[0]
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
                   "points": np.round(pts, 2).tolist(), "scores": np.round(1 / (1 + np.exp(-scores)), 4).tolist()},
                  fh, indent=1)
    print(f"wrote {stem}.png and {stem}.json ({L} landmarks)")
    return 0


# ---- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tinybin", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="the main job (what `make demo` runs)")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--steps", type=int, default=700, help="training steps per network")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quick", action="store_true", help="a few steps on tiny data (smoke test)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", help="train on synthetic data (resumes from OUT/checkpoint.npz)")
    _net_args(t)
    t.add_argument("--data", default="pose", choices=["pose", "face", "segmentation"])
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=2.5e-4)
    t.add_argument("--lr-end", type=float, default=5e-5)
    t.add_argument("--loss", default="bce", choices=["bce", "mse"])
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--n-train", type=int, default=3000)
    t.add_argument("--n-test", type=int, default=400)
    t.add_argument("--difficulty", type=float, default=0.5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--ckpt-every", type=int, default=100)
    t.add_argument("--eval-every", type=int, default=0)
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("--out", default="runs/train")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on synthetic test data")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", choices=["pose", "face", "segmentation"], default=None)
    e.add_argument("--n", type=int, default=400)
    e.add_argument("--difficulty", type=float, default=0.5)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(fn=cmd_eval)

    b = sub.add_parser("bench", help="packed vs float forward time of a binary network")
    _net_args(b)
    b.add_argument("--checkpoint", default=None)
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--repeats", type=int, default=5)
    b.set_defaults(fn=cmd_bench)

    s = sub.add_parser("summary", help="per-layer parameters, bytes and MACs")
    _net_args(s)
    s.add_argument("--checkpoint", default=None)
    s.set_defaults(fn=cmd_summary)

    p = sub.add_parser("predict", help="landmarks on your own image",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="""Predict landmarks on IMAGE and write IMAGE.landmarks.png / .json.

The network sees a square crop of side 200*SCALE pixels centred at (X, Y), resized to its input
resolution (the MPII convention: SCALE is the person's height / 200, the centre is the middle of
the person). Without --center the crop is centred on the image; without --scale it covers the
whole image (SCALE = max(height, width) / 200). For a face, SCALE ~ (box width + height) / 190.""")
    p.add_argument("image", help="PNG or JPEG, any size, RGB or greyscale")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `train` or `demo`")
    p.add_argument("--center", nargs=2, type=float, metavar=("X", "Y"), default=None)
    p.add_argument("--scale", type=float, default=None, metavar="S")
    p.add_argument("--out", default=None, help="output path stem (default: IMAGE.landmarks)")
    p.set_defaults(fn=cmd_predict)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad input that reached the library: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
