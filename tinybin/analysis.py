"""Looking inside trained networks: receptive fields of the hierarchical block (paper §7, Figs. 9
and 10), how "noisy and blurry" feature maps are (§8.2, Fig. 13), and capturing feature maps.

Receptive field. A stride-1 k x k convolution widens a receptive field by k - 1 pixels. In the
hpm block (Fig. 7e) the j-th 3x3 layer of a path therefore sees a (2j + 1) x (2j + 1) window of
the block's input, and its output goes straight to the concatenation: the block's output holds
channels of every scale 3, 5, ..., 2d + 1 for depth d (Fig. 9), and cardinality C (Fig. 10)
repeats the same scales C times at 1/C of the widths. `receptive_fields` computes this exactly
from the block's layers; `empirical_receptive_fields` measures it as the support of the gradient
of a centre output with respect to the input (on the block's real-valued twin, with positive
weights and inputs so that no ReLU hides a path), and the two agree (tests/test_analysis.py).

Noise. Fig. 13 says the binary networks' last-layer features are "more noisy and blurry" than the
real network's. Two numbers per feature map, averaged over channels:

- lag-1 spatial autocorrelation: the Pearson correlation of each pixel with its right and its lower
  neighbour (both pairs pooled). 1 for a smooth ramp, -1 for a checkerboard, near 0 for white noise;
  noisier maps score lower.
- high-frequency energy fraction: the share of the map's variance (power spectrum of the
  mean-removed map, periodic 2D DFT) at radial frequency above `cutoff` x Nyquist. 0 for a single
  low-frequency cosine, 1 for a checkerboard, and for white noise (flat spectrum) the area of the
  frequency square [-1/2, 1/2]^2 outside the disc of radius cutoff / 2: 1 - pi/16 ~ 0.80 at cutoff
  0.5; noisier maps score higher.

A constant channel has neither (zero variance): it is NaN and left out of the channel average.

Capturing. `capture(net, names, images)` runs the network once in eval mode and returns the
outputs of the named submodules, by wrapping their `forward` for the duration of the call (the
network code is untouched). `feature_layers(net)` names the first, middle and last feature maps of
an `HourGlass` in the sense of Fig. 13.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from .blocks import HPM
from .experiments import claim_verdict  # noqa: F401  (re-exported for the notebooks)
from .nn import Module
from .tensor import Tensor, no_grad


# ---- receptive fields ---------------------------------------------------------------------------

def receptive_fields(block: HPM) -> list[dict]:
    """Exact receptive field of each output channel group of an hpm block (stride-1 convs).

    Returns one dict per layer in the order of the block's concatenation (path 0 layers 0..d-1,
    path 1, ...): path, layer, channels (slice start, stop), rf (side of the square window of the
    block input the group sees: 1 + sum of (k - 1) over the layers on its path).
    The identity or 1x1 shortcut adds a 1x1 window, which never widens these.
    """
    if not isinstance(block, HPM):
        raise TypeError(f"receptive_fields: expects an hpm block (tinybin.blocks.HPM), got {type(block).__name__}")
    out, start = [], 0
    for p, path in enumerate(block.paths):
        rf = 1
        for j, conv in enumerate(path):
            if conv.stride != 1:
                raise ValueError("receptive_fields: only stride-1 layers are supported")
            rf += conv.kernel_size - 1
            out.append(dict(path=p, layer=j, channels=(start, start + conv.out_channels), rf=rf))
            start += conv.out_channels
    return out


def block_receptive_field(block: HPM) -> int:
    """The block's largest receptive field: 2 * depth + 1 for 3x3 layers."""
    return max(g["rf"] for g in receptive_fields(block))


def empirical_receptive_fields(block: HPM, size: int | None = None, seed: int = 0) -> list[int]:
    """Receptive field of each group of `receptive_fields(block)`, measured by backpropagation.

    Builds the block's real-valued twin (same widths, ReLU instead of Sign) in float64, eval mode
    (BatchNorm with running mean 0, variance 1: x / sqrt(1 + eps)), all conv weights and biases made
    positive and the input positive, so every ReLU passes and every path carries gradient. For each
    group, the gradient of the sum of its channels at the centre pixel with respect to an (1, S, S,
    Cin) input is non-zero exactly on the window the group sees; returns the side of that window.
    size: S (odd), default 2 * (block's analytic field) + 1 so that the window never touches the border.
    """
    if not isinstance(block, HPM):
        raise TypeError(f"empirical_receptive_fields: expects an hpm block, got {type(block).__name__}")
    twin = HPM(block.in_channels, block.out_channels, binary=False, depth=block.depth,
               cardinality=block.cardinality, constant_params=block.constant_params,
               rng=seed).to(np.float64).eval()
    for _, p in twin.named_parameters():
        p.data = np.abs(p.data) + 0.1
    S = size or 2 * block_receptive_field(block) + 1
    if S % 2 == 0:
        raise ValueError(f"empirical_receptive_fields: size must be odd, got {S}")
    rng = np.random.default_rng(seed)
    c = S // 2
    sides = []
    for g in receptive_fields(block):
        x = Tensor(rng.uniform(0.5, 1.5, (1, S, S, block.in_channels)), requires_grad=True)
        y = twin(x)
        mask = np.zeros(y.shape)
        mask[0, c, c, g["channels"][0]:g["channels"][1]] = 1.0
        y.backward(mask)
        support = np.abs(x.grad[0]).sum(-1) > 0            # (S, S)
        rows, cols = np.nonzero(support)
        if rows.min() == 0 or cols.min() == 0 or rows.max() == S - 1 or cols.max() == S - 1:
            raise ValueError(f"empirical_receptive_fields: size {S} is too small for this block")
        side_r, side_c = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        if side_r != side_c:  # pragma: no cover - square kernels give square windows
            raise RuntimeError(f"empirical_receptive_fields: non-square window {side_r} x {side_c}")
        sides.append(int(side_r))
    return sides


# ---- noise and blur of feature maps ---------------------------------------------------------------

def _as_hwc(maps) -> np.ndarray:
    a = np.asarray(maps.data if isinstance(maps, Tensor) else maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"expected feature maps (H, W), (H, W, C) or (N, H, W, C), got shape {a.shape}")
    if a.shape[1] < 2 or a.shape[2] < 2:
        raise ValueError(f"feature maps need at least 2 x 2 pixels, got {a.shape[1]} x {a.shape[2]}")
    return a                                                  # (N, H, W, C)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation over axes (1, 2) of (N, h, w, C) arrays; NaN where either has no variance."""
    a = a - a.mean(axis=(1, 2), keepdims=True)
    b = b - b.mean(axis=(1, 2), keepdims=True)
    va, vb = (a * a).sum((1, 2)), (b * b).sum((1, 2))
    tiny = 1e-24 * np.maximum(np.abs(a).max(axis=(1, 2)), np.abs(b).max(axis=(1, 2))) ** 2 * a.shape[1] * a.shape[2]
    ok = (va > tiny) & (vb > tiny)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, (a * b).sum((1, 2)) / np.sqrt(va * vb), np.nan)


def spatial_autocorrelation(maps, reduce: bool = True):
    """Lag-1 spatial autocorrelation of feature maps, per (image, channel), averaged.

    maps: (H, W), (H, W, C) or (N, H, W, C). For one map x: r_h = Pearson correlation of the pairs
    (x[i, j], x[i, j+1]), r_v of the pairs (x[i, j], x[i+1, j]); r = mean of those defined. A ramp
    gives exactly 1 (each neighbour is an affine function of the pixel), a checkerboard exactly -1,
    white noise about 0. Zero-variance maps give NaN. reduce: the NaN-ignoring mean over all maps
    (a float), else the (N, C) array.
    """
    a = _as_hwc(maps)
    r = np.stack([_pearson(a[:, :, :-1], a[:, :, 1:]), _pearson(a[:, :-1], a[:, 1:])])   # (2, N, C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN (constant) maps: NaN is the answer
        r = np.nanmean(r, axis=0)
    return _reduce(r, reduce)


def high_frequency_fraction(maps, cutoff: float = 0.5, reduce: bool = True):
    """Share of a feature map's variance above `cutoff` x Nyquist (radial frequency), averaged.

    maps: (H, W), (H, W, C) or (N, H, W, C). For each map: P = |DFT2(x - mean)|^2 (periodic),
    frequencies fy, fx in cycles per pixel (Nyquist 1/2), radius rho = sqrt(fy^2 + fx^2) / (1/2);
    fraction = sum P[rho > cutoff] / sum P. A checkerboard (fy = fx = 1/2, rho = sqrt 2) gives 1,
    cos(2 pi x / W) gives 0 (rho = 2 / W). Zero-variance maps give NaN. reduce: NaN-ignoring mean
    over all maps (a float), else the (N, C) array.
    """
    if not 0 <= cutoff:
        raise ValueError(f"high_frequency_fraction: cutoff must be >= 0, got {cutoff}")
    a = _as_hwc(maps)
    a = a - a.mean(axis=(1, 2), keepdims=True)
    P = np.abs(np.fft.fft2(a, axes=(1, 2))) ** 2             # (N, H, W, C)
    fy = np.fft.fftfreq(a.shape[1])[:, None]
    fx = np.fft.fftfreq(a.shape[2])[None, :]
    rho = np.sqrt(fy ** 2 + fx ** 2) / 0.5                   # (H, W), 1 = Nyquist
    high = (rho > cutoff)[None, :, :, None]
    tot = P.sum((1, 2))
    scale = np.maximum(np.abs(a).max(axis=(1, 2)), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(tot > 1e-20 * (scale * a.shape[1] * a.shape[2]) ** 2, (P * high).sum((1, 2)) / tot, np.nan)
    return _reduce(f, reduce)


def _reduce(v: np.ndarray, reduce: bool):
    if not reduce:
        return v
    if np.all(np.isnan(v)):
        return float("nan")
    return float(np.nanmean(v))


def noise_summary(maps, cutoff: float = 0.5) -> dict:
    """{'autocorr': spatial_autocorrelation, 'high_freq': high_frequency_fraction, 'constant':
    share of zero-variance maps} of (N, H, W, C) (or (H, W, C), (H, W)) feature maps."""
    r = spatial_autocorrelation(maps, reduce=False)
    return dict(autocorr=_reduce(r, True), high_freq=high_frequency_fraction(maps, cutoff),
                constant=float(np.mean(np.isnan(r))))


# ---- capturing feature maps -------------------------------------------------------------------------

def capture(net: Module, names: Iterable[str], images: np.ndarray, inputs: bool = False) -> dict[str, np.ndarray]:
    """Run `images` (N, R, R, 3) through `net` once (eval mode, no gradients) and return
    {name: output array} of the named submodules (`dict(net.named_modules())` names); with
    inputs=True, their first input instead. The module's forward is wrapped for the call only; the
    network's mode is restored."""
    mods = dict(net.named_modules())
    names = list(names)
    missing = [n for n in names if n not in mods]
    if missing:
        raise ValueError(f"capture: no submodule named {missing}; e.g. {list(mods)[1:6]}")
    got: dict[str, np.ndarray] = {}
    wrapped = []

    def wrap(name, m):
        orig = m.forward

        def hooked(*args, **kwargs):
            y = orig(*args, **kwargs)
            t = args[0] if inputs else y
            got[name] = np.array(t.data if isinstance(t, Tensor) else t, copy=True)
            return y
        object.__setattr__(m, "forward", hooked)
        wrapped.append(m)

    for n in names:
        wrap(n, mods[n])
    was = net.training
    try:
        net.eval()
        with no_grad():
            net(Tensor(np.ascontiguousarray(images, dtype=np.float32)))
    finally:
        for m in wrapped:
            object.__delattr__(m, "forward")      # back to the class's forward
        net.train(was)
    return got


def block_order(net: Module, images: np.ndarray) -> list[str]:
    """Names of the network's residual blocks in the order the forward pass runs them."""
    from .blocks import Block
    order: list[str] = []
    mods = [(n, m) for n, m in net.named_modules() if isinstance(m, Block)]
    for n, m in mods:
        orig = m.forward

        def hooked(*a, _n=n, _o=orig, **k):
            order.append(_n)
            return _o(*a, **k)
        object.__setattr__(m, "forward", hooked)
    was = net.training
    try:
        net.eval()
        with no_grad():
            net(Tensor(np.ascontiguousarray(images[:1], dtype=np.float32)))
    finally:
        for _, m in mods:
            object.__delattr__(m, "forward")
        net.train(was)
    return order


MIN_MAP = 8  # narrower maps have too few neighbour pairs and frequencies to measure smoothness


def feature_layers(net: Module, images: np.ndarray, min_size: int = MIN_MAP) -> dict[str, tuple[str, bool]]:
    """Fig. 13's three layers of an `HourGlass`: {"first": (name, False), "middle": (name, False),
    "last": (name, True)} for `capture`: the output of the first residual block, of the block in
    the middle of the forward order, and the input of the last stack's output conv (the features
    "right before the very last layer"). The bool says whether to capture the module's input.

    The paper does not say which layer is its "middle" one. The middle of the forward order is
    the hourglass's lowest level, 2 x 2 pixels in the downscaled network (R = 64, D = 3), where a
    lag-1 autocorrelation has two pairs per row and every non-constant frequency is the Nyquist
    one; so "middle" is the middle of the blocks whose output is at least `min_size` pixels wide
    (all blocks if none is)."""
    order = block_order(net, images)
    outs = capture(net, order, images[:1])
    wide = [n for n in order if min(outs[n].shape[1:3]) >= min_size] or order
    last = f"stacks.{len(net.stacks) - 1}.out"
    return {"first": (order[0], False), "middle": (wide[len(wide) // 2], False), "last": (last, True)}


def feature_maps(net: Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """{"first", "middle", "last"} -> (N, h, w, C) feature maps of `feature_layers(net)`."""
    layers = feature_layers(net, images)
    out = {}
    for key, (name, inp) in layers.items():
        out[key] = capture(net, [name], images, inputs=inp)[name]
    return out


__all__ = ["claim_verdict", "receptive_fields", "block_receptive_field", "empirical_receptive_fields", "spatial_autocorrelation",
           "high_frequency_fraction", "noise_summary", "capture", "block_order", "feature_layers", "feature_maps"]
