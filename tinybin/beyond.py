"""Beyond the paper: what each later fix of the same authors costs at deployment.

The options themselves live where they act: the XNOR-Net++ learned scales (arXiv:1909.13863) and
the PReLU after the binary convolution (arXiv:1904.05868) are `nn.PreActConv(scale=..., prelu=...)`
options, threaded through every block (`blocks.py`) and `HourGlass(scale=..., prelu=...)`; their
packed twins are `packed.PackedScaledPreActConv`; progressive quantization, reverse-order
initialisation and heatmap distillation are `train.TrainConfig` options (`train.quantization_state`,
`train.distillation_loss`). This module measures the deployment side:

    packed_bytes(net)            size in bytes of the packed .npz file of `net`
    deployment_costs(...)        per option: parameters, extra float multiplies per image, file bytes

    python -m tinybin.beyond [--paper]   prints the table (downscaled; --paper adds the paper scale)
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .nn import PreActConv, count_parameters

OPTIONS = [(s, p) for s in ("xnor", "learned_channel", "learned_spatial", "learned_rank1") for p in (False, True)]


def packed_bytes(net) -> int:
    """Bytes of the file `tinybin.packed.pack(net).save(path)` writes (compressed npz as saved)."""
    from .packed import pack
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.packed.npz")
        pack(net).save(path)
        return os.path.getsize(path)


def extra_multiplies(net) -> int:
    """Float multiplies per image that the options add after the XNOR convolutions: one per output
    element for a spatial or rank-1 Gamma (the channel Gamma replaces alpha: no extra), one per
    output element for PReLU (on the negative side; counted for all)."""
    n = 0
    from .tensor import Tensor, no_grad
    sizes = {}
    units = [m for m in net.modules() if isinstance(m, PreActConv) and m.binary]
    originals = {}
    for u in units:
        originals[id(u)] = u.forward

        def traced(x, _u=u, _f=u.forward):
            y = _f(x)
            sizes[id(_u)] = int(np.prod(y.shape[1:]))
            return y
        u.forward = traced
    was = net.training
    try:
        net.eval()
        R = net.config["resolution"]
        with no_grad():
            net(Tensor(np.zeros((1, R, R, 3), np.float32)))
    finally:
        for u in units:
            del u.forward
        net.train(was)
    for u in units:
        per = sizes.get(id(u), 0)
        n += per * (getattr(u, "scale_kind", "xnor") in ("learned_spatial", "learned_rank1"))
        n += per * bool(getattr(u, "prelu", False))
    return n


def deployment_costs(paper: bool = False, options=OPTIONS) -> list[dict]:
    """One dict per (scale, prelu): params, packed file bytes, extra float multiplies per image, for
    the binary hpm hourglass at the downscaled scale (R = F = 64, D = 3) or the paper's (256, 256, 4)."""
    from .models import HourGlass
    make = HourGlass.paper if paper else HourGlass.downscaled
    rows = []
    for scale, prelu in options:
        net = make(block="hpm", scale=scale, prelu=prelu, seed=0)
        rows.append(dict(scale=scale, prelu=prelu, params=count_parameters(net), bytes=packed_bytes(net),
                         extra_mults=extra_multiplies(net)))
        del net
    return rows


def format_costs(rows: list[dict], title: str) -> str:
    base = next(r for r in rows if r["scale"] == "xnor" and not r["prelu"])
    lines = [f"### {title}", "", "| scale | prelu | params | packed file bytes | vs xnor | extra float mults / image |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scale']} | {'yes' if r['prelu'] else 'no'} | {r['params']:,} | {r['bytes']:,} | "
                     f"{r['bytes'] / base['bytes']:.3f}x | {r['extra_mults']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a report
    import sys
    print(format_costs(deployment_costs(False), "Binary hpm, downscaled (R = 64, F = 64, D = 3)"))
    if "--paper" in sys.argv:
        print()
        print(format_costs(deployment_costs(True), "Binary hpm, paper scale (R = 256, F = 256, D = 4)"))
