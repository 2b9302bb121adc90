"""Write contact sheets of the synthetic data sets: docs/synthetic_pose.png and docs/synthetic_face.png.

Each sheet shows 16 samples at the default difficulty (0.5) with their landmarks drawn by
``tinybin.viz.contact_sheet`` (MPII skeleton: subject's right blue, left red; 68 face points with
their groups); the face sheet adds the same faces with their 7-class part masks below. Run from the repository root:

    .venv/bin/python scripts/make_contact_sheets.py [--resolution 128] [--difficulty 0.5] [--out docs]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from tinybin import data as datasets
from tinybin.viz import contact_sheet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    R, n = args.resolution, args.n

    pose = datasets.SyntheticPose(n, resolution=R, seed=args.seed, difficulty=args.difficulty).batch(range(n))
    titles = [f"facing {f:+.0f}" for f in pose["facing"]]
    path = os.path.join(args.out, "synthetic_pose.png")
    contact_sheet(pose["image"], pose["points"], kind="pose", visible=pose["visible"], titles=titles, path=path)
    print("wrote", path)

    face = datasets.SyntheticFace(n, resolution=R, seed=args.seed, difficulty=args.difficulty).batch(range(n))
    cols = min(n, 8)
    fig = contact_sheet(face["image"], face["points"], kind="face", ncols=cols,
                        titles=[f"yaw {y:+.0f}" for y in face["yaw"]])
    # Below: the same faces with their part masks (contact_sheet draws masks when given).
    fig2 = contact_sheet(face["image"], None, kind="face", masks=face["mask"], ncols=cols,
                         titles=["part mask"] * n)
    path = os.path.join(args.out, "synthetic_face.png")
    _stack_figures([fig, fig2], path)
    print("wrote", path)


def _stack_figures(figs, path) -> None:
    """Render figures to RGBA arrays and save them one above the other as one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image
    arrays = []
    for f in figs:
        canvas = FigureCanvasAgg(f)
        canvas.draw()
        arrays.append(np.asarray(canvas.buffer_rgba())[..., :3])
    w = max(a.shape[1] for a in arrays)
    arrays = [np.pad(a, ((0, 0), (0, w - a.shape[1]), (0, 0)), constant_values=255) for a in arrays]
    Image.fromarray(np.concatenate(arrays, 0)).save(path)


if __name__ == "__main__":
    main()
