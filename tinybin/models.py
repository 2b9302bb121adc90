"""Hourglass networks of the paper (Bulat & Tzimiropoulos, §3 Fig. 2, §8 Figs. 11 and 12, Table 5).

`HourGlass` is Newell et al.'s hourglass built from any block of `tinybin.blocks` (paper §3, §4):

    stem   conv7x7/2 (3 -> F/4, real, bias) -> BN -> ReLU -> B(F/4->F/2) -> pool2 -> B(F/2->F/2) -> B(F/2->F)
    HG(n, x):                                              (recursive, depth D, Fig. 2)
        up  = B(x)                                         (skip branch)
        low = B(pool2(x)) -> HG(n-1) (or B at the bottom) -> B -> nearest upsample x2
        out = up + low
    head   B(F->F) -> P(F->F,1) (binary in binary nets) -> BN -> ReLU -> conv1x1 F->L (real, bias)

At the paper's scale (R = 256, F = 256, D = 4, L = 16) the stem widths are 64, 128, 128, 256, the
bottom of the hourglass is 4x4, and the binary `hpm` network has exactly 6,236,560 parameters, the
released model (notes/architecture.md §3). The stem blocks use the same block type as the rest.

`improved=True` is the U-Net-like hourglass of Fig. 11 (§8.1): no block on the skip branch; the
raw level input and the upsampled path are *concatenated* (2F channels) and the block right after
each merge (the `low3` of every level with an inner level, and the post-hourglass block) reads 2F
channels with no residual sum (shortcut=False; a 1x1 projection would give 6.3M instead of 5.8M).

`stacks=S` (Fig. 12, §8.2): stack i+1 reads  x_{i+1} = x_i + conv1x1_{L->F}(heatmaps_i) + features_i,
where x_1 is the stem output and features_i the output of stack i's `lin` (its last-but-one layer,
after BN -> ReLU). The features are added directly: 3 stacks then have 17,765,808 parameters
(paper 17.8M); Newell's extra 1x1 F->F on the feature path (`feature_proj=True`, used by the
`newell` preset) would give 17.90M. The heatmap projection is a real 1x1 conv with bias: it reads
the real-valued logits of only L channels, which a sign would all but erase, and it costs
L*F + F parameters per stack. Every stack has its own post-hourglass block, `lin` and output conv,
and `forward` returns the list of all S outputs (intermediate supervision).

`pool="avg"` swaps the stem and hourglass max-poolings for average pooling (Table 4); the
multi-scale blocks keep their own max-pooling branch. `models.parameter_table()` counts every
network of the paper's tables (docs/architecture-counts.md is generated from it).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import functional as F
from .blocks import BLOCKS, check_block_options, make_block
from .nn import (AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d, Module, PreActConv, Sequential, build_scales,
                 check_unit_options, count_parameters)
from .tensor import Tensor

POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


class _Builder:
    """Makes the network's blocks with its shared options and one random stream."""

    def __init__(self, block: str, binary: bool, relu_after_conv: bool, block_opts: dict, rng,
                 scale: str = "xnor", prelu: bool = False):
        self.block, self.binary, self.relu_after_conv = block, binary, relu_after_conv
        self.opts, self.rng, self.scale, self.prelu = block_opts, rng, scale, prelu

    def __call__(self, cin: int, cout: int, shortcut: bool = True):
        return make_block(self.block, cin, cout, binary=self.binary, relu_after_conv=self.relu_after_conv,
                          rng=self.rng, shortcut=shortcut, scale=self.scale, prelu=self.prelu, **self.opts)


class HourGlassLevel(Module):
    """One level of the recursive hourglass (Fig. 2; Fig. 11 when improved), F channels in.

    Output: F channels (up + low) or, improved, 2F channels (concat[x, low]).
    """

    def __init__(self, n: int, width: int, make: _Builder, pool: str, improved: bool):
        super().__init__()
        Fw = width
        self.n, self.improved = n, improved
        if not improved:
            self.up1 = make(Fw, Fw)                     # skip-branch block (removed in Fig. 11)
        self.pool = POOLS[pool](2)
        self.low1 = make(Fw, Fw)
        self.low2 = HourGlassLevel(n - 1, Fw, make, pool, improved) if n > 1 else make(Fw, Fw)
        inner_concat = improved and n > 1               # the inner level handed us concat (2F)
        self.low3 = make(2 * Fw if inner_concat else Fw, Fw, shortcut=not inner_concat)

    def forward(self, x: Tensor) -> Tensor:
        low = self.low3(self.low2(self.low1(self.pool(x))))
        low = F.upsample(low, 2, "nearest")
        if self.improved:
            return F.concat([x, low])                   # U-Net merge (Fig. 11): 2F channels
        return F.add(self.up1(x), low)


class Stack(Module):
    """One hourglass of a stack with its head (Fig. 12): HG -> B -> lin -> out conv, and the
    projections that feed the next stack (absent in the last one)."""

    def __init__(self, width: int, depth: int, num_landmarks: int, make: _Builder, pool: str,
                 improved: bool, binary: bool, last: bool, feature_proj: bool, rng):
        super().__init__()
        Fw, L = width, num_landmarks
        self.last = last
        self.hg = HourGlassLevel(depth, Fw, make, pool, improved)
        self.post = make(2 * Fw if improved else Fw, Fw, shortcut=not improved)
        self.lin = PreActConv(Fw, Fw, 1, binary=binary, rng=rng,      # BN -> Sign -> binary 1x1
                              scale=make.scale)                      # (learned scale; no PReLU before ReLU)
        self.lin_bn = BatchNorm2d(Fw)                                  # then BN -> ReLU (real)
        self.out = Conv2d(Fw, L, 1, bias=True, rng=rng)                # the real last layer
        if not last:
            self.heat_proj = Conv2d(L, Fw, 1, bias=True, rng=rng)
            if feature_proj:                                           # Newell's ll_ (Table 5 baseline)
                self.feat_proj = Conv2d(Fw, Fw, 1, bias=True, rng=rng)
        self.feature_proj = feature_proj

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x (N, H, W, F) -> (logits (N, H, W, L), input of the next stack or None)."""
        feats = F.relu(self.lin_bn(self.lin(self.post(self.hg(x)))))
        logits = self.out(feats)
        if self.last:
            return logits, None
        f = self.feat_proj(feats) if self.feature_proj else feats
        return logits, F.add(F.add(x, self.heat_proj(logits)), f)


def _check_int(v, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
        raise ValueError(f"HourGlass: {name} must be an integer >= {lo}, got {v!r}")
    return int(v)


class HourGlass(Module):
    """Newell's hourglass with the paper's blocks: images (N, R, R, 3) in [0, 1] -> heatmap logits
    (N, R/4, R/4, L), or a list of S such outputs when stacks > 1. No sigmoid: the losses take logits.

    num_landmarks L, block (a key of tinybin.blocks.BLOCKS), binary (Sign vs ReLU in every block and
    in `lin`), width F, depth D (poolings inside the hourglass), stacks S, improved (Fig. 11),
    pool ("max" | "avg"), relu_after_conv (Table 4 "+ReLU"), resolution R, block_opts (e.g.
    {"depth": 6} or {"cardinality": 4} for hpm, {"mid_ratio": 0.75} for bottleneck), feature_proj
    (Newell's 1x1 F->F on the inter-stack feature path), seed (initialisation only; not in config).
    Beyond the paper: scale ("xnor" | "learned_channel" | "learned_spatial" |
    "learned_rank1", the XNOR-Net++ scale of every binary unit) and prelu (a PReLU after every
    block conv), see `tinybin.nn.PreActConv`. They enter `config` only when not the default, so
    configs of earlier networks are unchanged. The spatial scales are sized for `resolution` by one
    shape-only forward pass at construction (`nn.build_scales`); the initial weights and every
    other parameter are those of the same network with scale="xnor" (the scales are initialised
    from alpha = mean|W| and draw nothing from the random stream).

    Raises ValueError for a configuration that cannot be built, saying what is allowed: unknown
    block or pool, a width the block cannot split (the stem uses F/4, F/2 and F), a resolution that
    is not a multiple of 4 * 2**D (the bottom of the hourglass must be a whole number >= 1 of
    pixels; twice that for the multi-scale blocks, which pool once more inside), stacks < 1.
    """

    stride = 4  # heatmap pixel u <-> input pixel 4u + 1.5 (README, "Conventions")

    def __init__(self, num_landmarks: int = 16, block: str = "hpm", binary: bool = True, width: int = 256,
                 depth: int = 4, stacks: int = 1, improved: bool = False, pool: str = "max",
                 relu_after_conv: bool = False, resolution: int = 256, block_opts: dict | None = None,
                 feature_proj: bool = False, seed: int | np.random.Generator | None = 0,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__()
        cfg = _validate(num_landmarks, block, binary, width, depth, stacks, improved, pool,
                        relu_after_conv, resolution, block_opts, feature_proj)
        check_unit_options(cfg["binary"], cfg["relu_after_conv"], scale, prelu)
        if scale != "xnor":
            cfg["scale"] = scale
        if prelu:
            cfg["prelu"] = True
        self.config = cfg
        rng = np.random.default_rng(seed)
        Fw, L, S = cfg["width"], cfg["num_landmarks"], cfg["stacks"]
        make = _Builder(cfg["block"], cfg["binary"], cfg["relu_after_conv"],
                        dict(cfg["block_opts"] or {}), rng, scale, bool(prelu))

        # stem (Fig. 2): 7x7/2 real conv, then three blocks around one pooling: R -> R/4
        self.conv1 = Conv2d(3, Fw // 4, 7, stride=2, padding=3, bias=True, rng=rng)
        self.bn1 = BatchNorm2d(Fw // 4)
        self.stem1 = make(Fw // 4, Fw // 2)
        self.pool = POOLS[cfg["pool"]](2)
        self.stem2 = make(Fw // 2, Fw // 2)
        self.stem3 = make(Fw // 2, Fw)
        self.stacks = Sequential(*[
            Stack(Fw, cfg["depth"], L, make, cfg["pool"], cfg["improved"], cfg["binary"],
                  last=(i == S - 1), feature_proj=cfg["feature_proj"], rng=rng) for i in range(S)])
        build_scales(self, (1, cfg["resolution"], cfg["resolution"], 3))  # spatial learned scales only

    # ---- presets ---------------------------------------------------------------------------
    @classmethod
    def paper(cls, block: str = "hpm", binary: bool = True, **kw) -> "HourGlass":
        """The paper's scale: R = 256, F = 256, D = 4, L = 16 (binary hpm: 6,236,560 parameters)."""
        cfg = dict(num_landmarks=16, width=256, depth=4, resolution=256)
        cfg.update(kw)
        return cls(block=block, binary=binary, **cfg)

    @classmethod
    def downscaled(cls, block: str = "hpm", binary: bool = True, **kw) -> "HourGlass":
        """The notebooks' scale: R = 64, F = 64, D = 3, L = 16 (stem 16, 32, 32, 64; bottom 2x2).

        One batch-16 training step of the binary hpm net (forward, BCE, backward, RMSprop) takes
        about 0.09 s at one thread on the project's 2-core machine (README, "Training speed and
        data"; `benchmarks/bench_train.py`); the protocol's 5,500-step runs take about 10 minutes
        each, two in parallel. tinybin runs BLAS single-threaded by default (tinybin/threads.py):
        with both thread pools at their defaults the same step took 4.8 s on a busy machine.
        """
        cfg = dict(num_landmarks=16, width=64, depth=3, resolution=64)
        cfg.update(kw)
        return cls(block=block, binary=binary, **cfg)

    @classmethod
    def newell(cls, stacks: int = 8, **kw) -> "HourGlass":
        """Newell et al.'s real-valued stacked hourglass (the "[2]" column of Table 5): real
        bottleneck blocks, the 1x1 F->F on the inter-stack feature path; 8 stacks: 25.4M params."""
        cfg = dict(num_landmarks=16, width=256, depth=4, resolution=256, block="bottleneck",
                   binary=False, feature_proj=True, stacks=stacks)
        cfg.update(kw)
        return cls(**cfg)

    @classmethod
    def from_config(cls, config: dict, seed=0) -> "HourGlass":
        """Rebuild a network from its `config` (e.g. the one stored in a checkpoint)."""
        return cls(**config, seed=seed)

    # ---- forward ---------------------------------------------------------------------------
    def check_input(self, x) -> Tensor:
        """Tensor, array or nested list (N, R, R, 3), float, finite -> Tensor of the weights'
        dtype (float64 images are converted); otherwise ValueError."""
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        R = self.config["resolution"]
        if a.dtype not in (np.float32, np.float64):
            raise ValueError(f"HourGlass: expected float32 images (N, {R}, {R}, 3) in [0, 1], got dtype "
                             f"{a.dtype}" + (" (convert with images / 255)" if a.dtype == np.uint8 else ""))
        if a.ndim != 4 or a.shape[1:] != (R, R, 3):
            raise ValueError(f"HourGlass: expected images of shape (N, {R}, {R}, 3) (NHWC, "
                             f"resolution={R}), got {a.shape}")
        if a.shape[0] < 1:
            raise ValueError("HourGlass: empty batch")
        if not np.isfinite(a).all():
            raise ValueError("HourGlass: input images contain NaN or Inf")
        dtype = self.conv1.weight.data.dtype  # float64 images / nested lists meet float32 weights
        if a.dtype != dtype:
            return Tensor(a.astype(dtype))
        return x if isinstance(x, Tensor) else Tensor(a)

    def features(self, x) -> Tensor:
        """The stem: (N, R, R, 3) -> (N, R/4, R/4, F)."""
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.stem1(h)
        h = self.pool(h)
        return self.stem3(self.stem2(h))

    def forward(self, x, num_stacks: int | None = None) -> Tensor | list[Tensor]:
        """images (N, R, R, 3) -> logits (N, R/4, R/4, L); a list of S of them when stacks > 1.

        num_stacks=k runs only the first k stacks (sequential training, paper §8.2) and returns
        their k outputs as a list."""
        h = self.features(self.check_input(x))
        outs = []
        k = len(self.stacks) if num_stacks is None else int(num_stacks)
        if not 1 <= k <= len(self.stacks):
            raise ValueError(f"HourGlass: num_stacks must be in [1, {len(self.stacks)}], got {num_stacks}")
        for i, stack in enumerate(self.stacks):
            if i == k:
                break
            if i == k - 1 and not stack.last:
                outs.append(stack.out(F.relu(stack.lin_bn(stack.lin(stack.post(stack.hg(h)))))))
                break
            y, h = stack(h)
            outs.append(y)
        if num_stacks is not None:
            return outs
        return outs if len(outs) > 1 else outs[0]

    def stack_modules(self, i: int) -> list[Module]:
        """The modules stage i of sequential stack training updates (paper §8.2): stack i's
        hourglass and head, the stem for stage 0, and for i > 0 the projections of stack i-1's
        heatmaps and features that form stack i's input."""
        S = len(self.stacks)
        if not 0 <= i < S:
            raise ValueError(f"HourGlass: stack index must be in [0, {S}), got {i}")
        st = self.stacks[i]
        mods = [st.hg, st.post, st.lin, st.lin_bn, st.out]
        if i == 0:
            mods += [self.conv1, self.bn1, self.stem1, self.stem2, self.stem3]
        else:
            prev = self.stacks[i - 1]
            mods.append(prev.heat_proj)
            if prev.feature_proj:
                mods.append(prev.feat_proj)
        return mods

    def extra_repr(self) -> str:
        c = self.config
        return (f"{'binary' if c['binary'] else 'real'} {c['block']}, F={c['width']}, D={c['depth']}, "
                f"S={c['stacks']}, R={c['resolution']}, L={c['num_landmarks']}"
                + (", improved" if c["improved"] else ""))


def _validate(num_landmarks, block, binary, width, depth, stacks, improved, pool, relu_after_conv,
              resolution, block_opts, feature_proj) -> dict[str, Any]:
    """Check a configuration; return it as a JSON-serialisable dict (what `net.config` holds)."""
    L = _check_int(num_landmarks, "num_landmarks", 1)
    if block not in BLOCKS:
        raise ValueError(f"HourGlass: unknown block {block!r}; allowed: {sorted(BLOCKS)}")
    if pool not in POOLS:
        raise ValueError(f"HourGlass: pool must be one of {sorted(POOLS)}, got {pool!r}")
    for name, v in (("binary", binary), ("improved", improved), ("relu_after_conv", relu_after_conv),
                    ("feature_proj", feature_proj)):
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"HourGlass: {name} must be True or False, got {v!r}")
    S = _check_int(stacks, "stacks", 1)
    D = _check_int(depth, "depth", 1)
    Fw = _check_int(width, "width", 4)
    R = _check_int(resolution, "resolution", 1)
    if block_opts is not None and not isinstance(block_opts, dict):
        raise ValueError(f"HourGlass: block_opts must be a dict or None, got {type(block_opts).__name__}")
    opts = dict(block_opts or {})
    for k in ("binary", "relu_after_conv", "rng", "shortcut"):
        if k in opts:
            raise ValueError(f"HourGlass: block_opts may not set {k!r} (the network decides it)")
    check_block_options(block, opts)
    try:
        if json.loads(json.dumps(opts)) != opts:
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"HourGlass: block_opts must hold plain JSON values (numbers, strings), "
                         f"got {opts!r}") from None
    if Fw % 4:
        raise ValueError(f"HourGlass: width must be a multiple of 4 (the stem has F/4 and F/2 "
                         f"channels), got {Fw}")
    for w in (Fw // 2, Fw):
        try:
            BLOCKS[block].widths(w, **opts)
        except ValueError as e:
            raise ValueError(f"HourGlass: width={Fw} does not suit block {block!r} (its blocks have "
                             f"F/2={Fw // 2} and F={Fw} outputs): {e}") from None
    inner = BLOCKS[block].spatial_multiple
    per_px = 4 * 2 ** D * inner
    if R % per_px:
        why = f" (x{inner}: the {block} block pools inside)" if inner > 1 else ""
        dmax = _max_depth(R, block)
        alt = f"; or use depth <= {dmax}" if dmax >= 1 else ""
        raise ValueError(f"HourGlass: resolution={R} does not suit depth={D}: the stem divides it by 4 "
                         f"and the hourglass by 2**{D}, so it must be a multiple of {per_px}{why}, "
                         f"leaving a bottom of >= {per_px // (4 * 2 ** D)} px "
                         f"(e.g. {per_px * max(1, R // per_px)}){alt}")
    return {"num_landmarks": L, "block": block, "binary": bool(binary), "width": Fw, "depth": D,
            "stacks": S, "improved": bool(improved), "pool": pool, "relu_after_conv": bool(relu_after_conv),
            "resolution": R, "block_opts": opts or None, "feature_proj": bool(feature_proj)}


def _max_depth(R: int, block: str) -> int:
    d = 0
    while R % (4 * 2 ** (d + 1) * BLOCKS[block].spatial_multiple) == 0:
        d += 1
    return d


# ---- the paper's parameter counts ------------------------------------------------------------

# (source, row, paper's count in millions or None, HourGlass kwargs at paper scale, note)
PAPER_ROWS: list[tuple[str, str, float | None, dict, str]] = [
    ("Table 2", "Bottleneck (original), Fig. 7a", 3.5, dict(block="bottleneck"),
     "same-type stem; the released HPM stem would give 3.54M (notes §4)"),
    ("Table 2", "Wider, Fig. 7b", 11.3, dict(block="wide"), "stem blocks widened too"),
    ("Table 2", "Multi-Scale, Fig. 7c", 4.0, dict(block="multiscale"),
     "pooled 3x3s read all F inputs; same-type stem (HPM stem: 3.97M)"),
    ("Table 2", "MS without 1x1, Fig. 7d", 9.3, dict(block="multiscale_no1x1"),
     "same-type stem (HPM stem: 9.34M)"),
    ("Table 2", "Bottleneck (wider) + no 1x1", 5.8, dict(block="wide_no1x1"),
     "layer list not given: 3x3 F->m->F with m = 5/16 F = 80"),
    ("Table 2", "HPM at 192 channels, Fig. 1b", 4.0, dict(block="hpm", width=192),
     "F = 192 everywhere, stem scaled (48, 96, 96, 192); 4.0M not reproduced by any natural reading"),
    ("Table 2", "HPM (Ours, final), Fig. 7e", 6.2, dict(block="hpm"), "exactly the released model"),
    ("Table 3", "Bottleneck (wider), real", 7.0, dict(block="bottleneck", binary=False,
                                                      block_opts={"mid_ratio": 0.765625}),
     "mid width unstated: mid = 0.765625 F = 196 (0.75 F = 192 would give 6.8M)"),
    ("Table 3", "HPM (Ours, final), real", 6.2, dict(block="hpm", binary=False), "convs with bias"),
    ("Table 4", "HPM - AvgPool", 6.2, dict(block="hpm", pool="avg"), "pooling has no parameters"),
    ("Table 4", "HPM + ReLU", 6.2, dict(block="hpm", relu_after_conv=True), "ReLU has no parameters"),
    ("Table 5", "[2] Newell, 8 stacks, real", 25.0, dict(stacks=8, block="bottleneck", binary=False,
                                                        feature_proj=True),
     "real bottleneck, 1x1 F->F on the feature path as Newell"),
    ("Table 5", "Ours, bin.", 6.0, dict(block="hpm"), "the 6.2M network"),
    ("Table 5", "Ours[1x], real", 6.0, dict(block="hpm", binary=False), ""),
    ("Table 5", "Ours[8x], real", 25.0, dict(block="hpm", binary=False, stacks=8, width=192),
     "width unstated; 8 stacks at F = 256 would be 47M; F = 192 is the closest natural reading"),
    ("Table 10", "HG, Fig. 2", 6.2, dict(block="hpm"), ""),
    ("Table 10", "Improved HG, Fig. 11", 5.8, dict(block="hpm", improved=True),
     "no projection shortcut in the four 2F-input blocks"),
    ("Table 11", "1 stack", 6.2, dict(block="hpm"), ""),
    ("Table 11", "2 stacks", 11.0, dict(block="hpm", stacks=2),
     "paper's 11.0M contradicts its own +5.8M per stack: likely a typo for 12.0M"),
    ("Table 11", "3 stacks", 17.8, dict(block="hpm", stacks=3),
     "features added directly; heatmap projection real 1x1 L->F with bias"),
] + [
    ("Fig. 9", f"HPM depth {d}", None, dict(block="hpm", block_opts={"depth": d}),
     "widths F/2, F/4, ... halving, last two equal" + (" (2 channels at the end; 1 in the F/2 stem blocks)"
                                                      if d == 8 else "")) for d in (4, 5, 6, 7, 8)
] + [
    ("Fig. 10", f"HPM cardinality {c}", None, dict(block="hpm", block_opts={"cardinality": c}),
     "copies at 1/C of the widths, each reading all F inputs") for c in (2, 4, 8, 16)
] + [
    ("Fig. 10", f"HPM cardinality {c}, constant params", None,
     dict(block="hpm", block_opts={"cardinality": c, "constant_params": True}),
     "copies rebalanced to C = 1's size (wider first layer)") for c in (2, 4, 8, 16)
]


def parameter_table() -> list[dict[str, Any]]:
    """Build every network of the paper's tables at paper scale and count its parameters.

    Returns one dict per row: source, row, paper (millions or None), params (int), ratio
    (params / paper), config (HourGlass kwargs), note. Takes a few seconds (it allocates each
    network once; the largest has 27M parameters).
    """
    rows = []
    for source, row, paper, kw, note in PAPER_ROWS:
        net = HourGlass.paper(**kw)
        n = count_parameters(net)
        del net
        rows.append({"source": source, "row": row, "paper": paper, "params": n,
                     "ratio": None if paper is None else n / (paper * 1e6), "config": kw, "note": note})
    return rows


def format_parameter_table(rows: list[dict[str, Any]] | None = None) -> str:
    """The rows of `parameter_table()` as a markdown table."""
    rows = parameter_table() if rows is None else rows
    lines = ["| source | network | `HourGlass.paper(...)` | paper | tinybin | tinybin / paper | design choice |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        paper = "" if r["paper"] is None else f"{r['paper']:.1f}M"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        call = ", ".join(f"{k}={v!r}" for k, v in r["config"].items())
        lines.append(f"| {r['source']} | {r['row']} | `{call}` | {paper} | {r['params']:,} | {ratio} | {r['note']} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tinybin.models: print the table of docs/architecture-counts.md
    print(format_parameter_table())
