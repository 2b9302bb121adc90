"""The command line: predict on image files of any kind, clear one-line errors, demo smoke run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinybin as tb
from tinybin.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=2, resolution=32, seed=0)
    path = d / "net.npz"
    tb.save(net, path)
    return str(path)


@pytest.mark.parametrize("mode,size,ext", [("RGB", (50, 37), "png"), ("L", (40, 90), "jpg"),
                                           ("RGBA", (33, 33), "png")])
def test_predict_writes_png_and_json_for_any_image(tmp_path, checkpoint, mode, size, ext, capsys):
    rng = np.random.default_rng(0)
    arr = (rng.random((size[1], size[0], len(mode))) * 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)
    path = tmp_path / f"img.{ext}"
    img.save(path)
    out = tmp_path / "pred"
    assert main(["predict", str(path), "--checkpoint", checkpoint, "--out", str(out)]) == 0
    assert (tmp_path / "pred.png").stat().st_size > 0
    data = json.loads((tmp_path / "pred.json").read_text())
    pts = np.array(data["points"])
    assert pts.shape == (16, 2) and np.isfinite(pts).all()
    assert data["scale"] == pytest.approx(max(size) / 200)


def test_predict_with_center_and_scale_maps_points_back_to_the_image(tmp_path, checkpoint):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--checkpoint", checkpoint, "--center", "30", "40",
                 "--scale", "0.2", "--out", str(tmp_path / "p")]) == 0
    pts = np.array(json.loads((tmp_path / "p.json").read_text())["points"])
    # the crop is 40 px wide around (30, 40): every prediction lies inside it
    assert (np.abs(pts - [30, 40]) <= 20.5).all()


def test_predict_errors_are_one_line(tmp_path, checkpoint, capsys):
    assert main(["predict", str(tmp_path / "missing.png"), "--checkpoint", checkpoint]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"this is not an image")
    assert main(["predict", str(tmp_path / "bad.png"), "--checkpoint", checkpoint]) == 2
    assert "cannot read" in capsys.readouterr().err
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "ok.png")
    assert main(["predict", str(tmp_path / "ok.png"), "--checkpoint", str(tmp_path / "nope.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=2, resolution=32)
    tb.packed.pack(net).save(tmp_path / "packed.npz")
    assert main(["predict", str(tmp_path / "ok.png"), "--checkpoint", str(tmp_path / "packed.npz")]) == 2
    assert "packed-network" in capsys.readouterr().err
    (tmp_path / "trunc.npz").write_bytes(open(checkpoint, "rb").read()[:500])
    assert main(["predict", str(tmp_path / "ok.png"), "--checkpoint", str(tmp_path / "trunc.npz")]) == 2
    assert "trunc.npz" in capsys.readouterr().err


def test_summary_bench_eval_run(checkpoint, capsys):
    assert main(["summary", "--checkpoint", checkpoint]) == 0
    assert "TOTAL" in capsys.readouterr().out
    assert main(["bench", "--checkpoint", checkpoint, "--repeats", "1"]) == 0
    assert "speed-up" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", checkpoint, "--n", "4"]) == 0
    assert "pckh" in capsys.readouterr().out


def test_help_of_every_subcommand():
    for cmd in ("demo", "train", "eval", "bench", "summary", "predict"):
        r = subprocess.run([sys.executable, "-m", "tinybin", cmd, "--help"], capture_output=True, text=True,
                           cwd=ROOT)
        assert r.returncode == 0 and "usage" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinybin", "predict", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "200*SCALE" in r.stdout


def test_cli_choices_come_from_the_registries():
    from tinybin.__main__ import build_parser
    from tinybin.blocks import BLOCKS
    from tinybin.data import KINDS
    from tinybin.losses import LOSSES
    sub = next(a for a in build_parser()._actions if a.dest == "cmd").choices
    opts = {a.dest: a for a in sub["train"]._actions}
    assert list(opts["block"].choices) == list(BLOCKS)
    assert list(opts["loss"].choices) == list(LOSSES) and opts["loss"].default is None
    assert list(opts["data"].choices) == list(KINDS)
    assert list({a.dest: a for a in sub["eval"]._actions}["data"].choices) == list(KINDS)


def test_demo_quick_writes_its_files(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-m", "tinybin", "demo", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in ("summary.md", "loss_curves.png", "pckh_curve.png", "predictions.png", "binary_hpm.packed.npz"):
        assert (tmp_path / f).exists(), f
    assert "| binary hpm |" in r.stdout
