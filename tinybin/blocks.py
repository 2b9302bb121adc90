"""The residual blocks of the paper (Bulat & Tzimiropoulos, §4, Fig. 7; §7, Figs. 9 and 10).

Every block maps (N, H, W, in_channels) -> (N, H, W, out_channels) and is built from the paper's
pre-activation unit `P(a->b, k)` = BN(a) -> Sign -> binary conv k x k (ReLU and a real conv with
bias when binary=False), `tinybin.nn.PreActConv`. Widths inside a block are fractions of its
*output* width F (this is what the authors' released model does in the stem).

    name               Fig.    branch (F = out_channels; p = 2x2 max-pool of x; up2 = bilinear x2)
    bottleneck         7a      P(in->F/2,1) -> P(F/2->F/2,3) -> P(F/2->F,1)         (mid_ratio=1/2)
    wide               7b      P(in->F,1)   -> P(F->F,3)     -> P(F->F,1)
    multiscale         7c      P(F/2->F,1)( concat[ P(F/4->F/4,3)(P(in->F/4,1)(x)),
                                                    up2(concat[P(in->F/8,3)(p),
                                                               P(F/8->F/8,3)(P(in->F/8,3)(p))]) ] )
    multiscale_no1x1   7d      concat[ P(in->F/2,3)(x),
                                       up2(concat[P(in->F/4,3)(p), P(F/4->F/4,3)(P(in->F/4,3)(p))]) ]
    wide_no1x1         §4.6.1  P(in->m,3) -> P(m->F,3), m = round(F * 5/16) (80 at F = 256; WideNo1x1)
    hpm                7e/1b   x1 = P(in->F/2,3)(x), x2 = P(F/2->F/4,3)(x1), x3 = P(F/4->F/4,3)(x2);
                               concat(x1, x2, x3)
    hpm, depth=d       9       widths F/2, F/4, ..., F/2**(d-1), F/2**(d-1), each fed by the previous
    hpm, cardinality=C 10      C parallel copies at 1/C of the widths, all outputs concatenated

up2 is the "UP" of Fig. 7 (bilinear, half-pixel centres).

Output = branch + shortcut, where the shortcut is the identity when in == out and the projection
P(in->out, 1) otherwise (binary BN -> Sign -> 1x1 in binary networks, as in the released model).
`shortcut=False` drops the residual sum altogether: the improved hourglass (Fig. 11) feeds 2F
concatenated channels into blocks whose branch alone makes F outputs, and the paper's 5.8M count
only fits with no projection there.

`scale` and `prelu` (every block; beyond the paper): the XNOR-Net++ learned scale of
every binary unit (shortcut projection included) and a PReLU after every branch conv (not on the
linear shortcut); see `tinybin.nn.PreActConv`.

`relu_after_conv=True` (the "+ReLU" row of Table 4) appends a ReLU to every conv of the *branch*;
the shortcut projection stays linear so the residual path is untouched (the exact spot is not
stated in the paper; this is our reading).
"""
from __future__ import annotations

import inspect

import numpy as np

from . import functional as F
from .nn import MaxPool2d, Module, PreActConv, Sequential, check_unit_options
from .tensor import Tensor

# wide_no1x1 (§4.6.1, "Bottleneck (wider) + no 1x1"): the paper only says the wider block was
# stripped of its 1x1 convs and "halved" to match the HPM network (5.8M in Table 2). Two 3x3 layers
# F -> m -> F with m = 5/16 F (m = 80 at F = 256) give 5,730,704 parameters for the binary
# paper-scale network (1.2% under 5.8M); m = 82 gives 5,870,736, and m = 81 gives 5,798,702 but is
# no round fraction of F. 5/16 keeps m whole at every width that is a multiple of 16.
WIDE_NO1X1_RATIO = 5 / 16


# The registry: every block class decorated with `@register_block`, by its `name`.
BLOCKS: dict[str, type[Block]] = {}

# keyword options every block takes (besides in_channels, out_channels)
COMMON_OPTIONS = ("binary", "relu_after_conv", "rng", "shortcut", "scale", "prelu")


def register_block(cls: type[Block]) -> type[Block]:
    """Class decorator: make a `Block` subclass available by its `name` to `make_block`,
    `HourGlass(block=...)`, the experiments and the CLI's `--block`."""
    if not (isinstance(cls, type) and issubclass(cls, Block)):
        raise TypeError(f"register_block: {cls!r} is not a Block subclass")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name or name == Block.name:
        raise ValueError(f"register_block: {cls.__name__} needs its own class attribute `name`")
    old = BLOCKS.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"register_block: a block named {name!r} is already registered "
                         f"({BLOCKS[name].__name__})")
    BLOCKS[name] = cls  # (the same class again, e.g. its module reloaded, replaces the old one)
    return cls


def _int(v, what: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
        raise ValueError(f"{what} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _split(cout: int, parts: int, block: str, why: str) -> int:
    """cout / parts, or a ValueError saying which widths this block accepts."""
    if cout % parts != 0:
        raise ValueError(f"block {block!r} cannot split out_channels={cout}: {why} needs a multiple "
                         f"of {parts}")
    return cout // parts


def _ratio_width(cout: int, ratio, block: str) -> int:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError(f"block {block!r}: mid_ratio must be a positive number, got {ratio!r}")
    m = int(round(cout * ratio))
    if m < 1:
        raise ValueError(f"block {block!r}: mid_ratio={ratio} leaves no channel at out_channels={cout}")
    return m


class Block(Module):
    """Base class: the shortcut of every residual block.

    identity (in == out), projection P(in->out, 1) (in != out), or none (shortcut=False).
    Subclasses build `self.*` branch layers and end their forward with `self.merge(x, y)`.

    A subclass registered with `@register_block` is a block the networks, the experiments and the
    CLI accept by its `name`. It carries everything they need to know about it:

    - `widths(out_channels, **opts)`: its width rule. Returns the inner widths and raises
      ValueError for an out_channels it cannot split; `__init__` builds from what it returns, and
      `HourGlass` calls it to check a configuration without building anything.
    - its own keyword options: the keyword arguments of `__init__` after `shortcut` (e.g.
      `mid_ratio`, `depth`, `cardinality`).
    - `spatial_multiple`: its input height and width must be multiples of this (2 for the blocks
      with an internal 2x2 pooling branch).
    """

    name = "block"
    spatial_multiple = 1

    @classmethod
    def widths(cls, out_channels: int, **opts):
        """The block's inner widths for `out_channels` outputs (ValueError if it cannot split them)."""
        _int(out_channels, f"{cls.name}: out_channels")
        return ()

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The block's own keyword options (those of `__init__` after the common ones)."""
        params = list(inspect.signature(cls.__init__).parameters)
        return tuple(p for p in params if p not in ("self", "in_channels", "out_channels") + COMMON_OPTIONS)

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__()
        check_unit_options(binary, relu_after_conv, scale, prelu)
        self.scale_kind, self.prelu = scale, bool(prelu)
        self.in_channels = _int(in_channels, f"{self.name}: in_channels")
        self.out_channels = _int(out_channels, f"{self.name}: out_channels")
        self.binary, self.relu_after_conv = bool(binary), bool(relu_after_conv)
        self._rng = np.random.default_rng(rng)  # a Generator is passed through unchanged
        if not shortcut:
            self.shortcut_kind = "none"
        elif in_channels == out_channels:
            self.shortcut_kind = "identity"
        else:
            self.shortcut_kind = "projection"
            # linear on purpose (no +ReLU): the residual path stays a plain sum
            self.shortcut = PreActConv(in_channels, out_channels, 1, binary=binary, rng=self._rng,
                                       scale=scale)  # learned scale yes, PReLU no (linear path)

    def P(self, cin: int, cout: int, k: int) -> PreActConv:
        """The paper's unit P(cin -> cout, k) with this block's options (stride 1, padding k//2)."""
        return PreActConv(cin, cout, k, binary=self.binary, relu_after_conv=self.relu_after_conv,
                          rng=self._rng, scale=self.scale_kind, prelu=self.prelu)

    def merge(self, x: Tensor, y: Tensor) -> Tensor:
        """branch + shortcut (the "+" of Fig. 7)."""
        if self.shortcut_kind == "identity":
            return F.add(y, x)
        if self.shortcut_kind == "projection":
            return F.add(y, self.shortcut(x))
        return y

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f"{self.name} block: expected (N, H, W, {self.in_channels}) input, "
                             f"got {x.shape}")

    def extra_repr(self) -> str:
        kind = "binary" if self.binary else "real"
        return f"{kind} {self.in_channels}->{self.out_channels}, shortcut={self.shortcut_kind}"


@register_block
class Bottleneck(Block):
    """Fig. 7a, the pre-activation bottleneck of Newell et al.: 1x1 -> 3x3 -> 1x1, + shortcut.

    P(in->m,1) -> P(m->m,3) -> P(m->F,1) with m = mid_ratio * F (1/2: 128 at F = 256, as Newell).
    mid_ratio > 1/2 gives the "Bottleneck (wider)" real baseline of Table 3.
    """

    name = "bottleneck"

    @classmethod
    def widths(cls, out_channels: int, mid_ratio: float = 0.5) -> int:
        """m = round(mid_ratio * F), at least 1."""
        return _ratio_width(_int(out_channels, f"{cls.name}: out_channels"), mid_ratio, cls.name)

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True, mid_ratio: float = 0.5,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__(in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        self._layers(in_channels, out_channels, self.widths(self.out_channels, mid_ratio))

    def _layers(self, cin: int, cout: int, m: int) -> None:
        self.mid = m
        self.conv1 = self.P(cin, m, 1)
        self.conv2 = self.P(m, m, 3)
        self.conv3 = self.P(m, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        y = self.conv3(self.conv2(self.conv1(x)))
        return self.merge(x, y)


@register_block
class Wide(Bottleneck):
    """Fig. 7b: the bottleneck with its thin 3x3 layer widened to F: P(in->F,1) -> P(F->F,3) -> P(F->F,1)."""

    name = "wide"

    @classmethod
    def widths(cls, out_channels: int) -> int:
        """m = F."""
        return _ratio_width(_int(out_channels, f"{cls.name}: out_channels"), 1.0, cls.name)

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 scale: str = "xnor", prelu: bool = False):
        Block.__init__(self, in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        self._layers(in_channels, out_channels, self.widths(self.out_channels))


class _PooledPair(Module):
    """The right branch of Figs. 7c/7d: on pool(x), a 3x3 ("3x3") beside two 3x3s ("5x5"),
    concatenated and upsampled x2 bilinearly back to the input resolution."""

    def __init__(self, block: Block, cin: int, w: int):
        super().__init__()
        self.pool = MaxPool2d(2)
        self.a = block.P(cin, w, 3)       # receptive field 3x3 at half resolution
        self.b1 = block.P(cin, w, 3)      # 5x5 decomposed into two 3x3 (§4.3)
        self.b2 = block.P(w, w, 3)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"multi-scale block: the 2x2 pooling branch needs an even height and "
                             f"width, got {x.shape[1]}x{x.shape[2]}")
        p = self.pool(x)
        return F.upsample(F.concat([self.a(p), self.b2(self.b1(p))]), 2, "bilinear")


@register_block
class MultiScale(Block):
    """Fig. 7c (§4.3): a full-resolution 1x1 -> 3x3 branch beside a pooled multi-scale branch,
    concatenated (F/2) and projected back to F by a 1x1.

        left  = P(F/4->F/4,3)(P(in->F/4,1)(x))                            F/4 channels
        right = up2(concat[P(in->F/8,3)(p), P(F/8->F/8,3)(P(in->F/8,3)(p))]),  p = maxpool(x)   F/4
        y     = P(F/2->F,1)(concat[left, right]) + shortcut(x)
    """

    name = "multiscale"
    spatial_multiple = 2

    @classmethod
    def widths(cls, out_channels: int) -> int:
        """F/8, the width of each pooled sub-branch (F must be a multiple of 8)."""
        return _split(_int(out_channels, f"{cls.name}: out_channels"), 8, cls.name,
                      "the F/8-wide pooled sub-branches")

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__(in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        w8 = self.widths(self.out_channels)
        self.left1 = self.P(in_channels, 2 * w8, 1)
        self.left2 = self.P(2 * w8, 2 * w8, 3)
        self.right = _PooledPair(self, in_channels, w8)
        self.project = self.P(4 * w8, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        left = self.left2(self.left1(x))
        right = self.right(x)
        return self.merge(x, self.project(F.concat([left, right])))


@register_block
class MultiScaleNo1x1(Block):
    """Fig. 7d (§4.4): Fig. 7c without any 1x1 conv; the concat alone makes the F outputs.

        left  = P(in->F/2,3)(x)                                           F/2 channels
        right = up2(concat[P(in->F/4,3)(p), P(F/4->F/4,3)(P(in->F/4,3)(p))]),  p = maxpool(x)   F/2
        y     = concat[left, right] + shortcut(x)
    """

    name = "multiscale_no1x1"
    spatial_multiple = 2

    @classmethod
    def widths(cls, out_channels: int) -> int:
        """F/4, the width of each pooled sub-branch (F must be a multiple of 4)."""
        return _split(_int(out_channels, f"{cls.name}: out_channels"), 4, cls.name,
                      "the F/4-wide pooled sub-branches")

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 scale: str = "xnor", prelu: bool = False):
        super().__init__(in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        w4 = self.widths(self.out_channels)
        self.left = self.P(in_channels, 2 * w4, 3)
        self.right = _PooledPair(self, in_channels, w4)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return self.merge(x, F.concat([self.left(x), self.right(x)]))


@register_block
class WideNo1x1(Block):
    """§4.6.1 "Bottleneck (wider) + no 1x1": two 3x3 layers, P(in->m,3) -> P(m->F,3).

    The paper gives no layer list; m = round(mid_ratio * F) with mid_ratio = 5/16 by default
    (m = 80 at F = 256), so that the binary paper-scale network has 5,730,704 parameters against
    the 5.8M of Table 2 (no natural design hits 5.8M exactly).
    """

    name = "wide_no1x1"

    @classmethod
    def widths(cls, out_channels: int, mid_ratio: float = WIDE_NO1X1_RATIO) -> int:
        """m = round(mid_ratio * F), at least 1."""
        return _ratio_width(_int(out_channels, f"{cls.name}: out_channels"), mid_ratio, cls.name)

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 mid_ratio: float = WIDE_NO1X1_RATIO, scale: str = "xnor", prelu: bool = False):
        super().__init__(in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        m = self.widths(self.out_channels, mid_ratio)
        self.mid = m
        self.conv1 = self.P(in_channels, m, 3)
        self.conv2 = self.P(m, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return self.merge(x, self.conv2(self.conv1(x)))


def hpm_widths(out_channels: int, depth: int = 3, cardinality: int = 1, constant_params: bool = False,
               in_channels: int | None = None) -> list[int]:
    """Widths of one copy of the hierarchical branch: F/(2C), F/(4C), ..., the last two equal.

    depth=3, C=1 (Fig. 7e): [F/2, F/4, F/4]; depth=6 (Fig. 9): [F/2, F/4, F/8, F/16, F/32, F/32];
    C copies (Fig. 10) each get 1/C of these. The C * sum(widths) outputs add up to F.

    §7.2 builds the C copies so: every copy's first layer reads all the block's inputs, the later
    layers run at 1/C of the width. That keeps the first layers' weights and divides the later
    layers' by C, so the block shrinks as C grows (by 0.85x .. 0.77x of the network at C = 2 .. 8).
    `constant_params=True` instead keeps the block's number of weights at C = 1's (for a block
    with `in_channels` inputs; default in = out): each copy keeps the hierarchy's shape, a first
    layer of width a and later layers u * [2^(d-3), ..., 2, 1, 1], with a = F/C - u * 2^(d-2), and
    u is the integer whose 9 * C * (in * a + sum of consecutive products) comes closest to C = 1's
    (ties: the larger u, closer to §7.2's shape). The price: more of the outputs come from the
    first, 3x3-receptive-field layer (e.g. [10, 3, 3] per copy instead of [8, 4, 4] at F = 128,
    C = 8). The concatenation still gives exactly F channels.
    """
    depth = _int(depth, "hpm: depth", lo=2)
    cardinality = _int(cardinality, "hpm: cardinality")
    unit = _split(out_channels, 2 ** (depth - 1) * cardinality, "hpm",
                  f"depth={depth}, cardinality={cardinality} (smallest layer F/{2 ** (depth - 1) * cardinality})")
    widths = [unit * 2 ** (depth - 1 - i) for i in range(1, depth)]  # F/2C, F/4C, ..., F/2^(d-1)C
    widths = widths + [widths[-1]]
    if not isinstance(constant_params, bool):
        raise ValueError(f"hpm: constant_params must be True or False, got {constant_params!r}")
    if not constant_params or cardinality == 1:
        return widths
    cin = out_channels if in_channels is None else _int(in_channels, "hpm: in_channels")

    def weights(w: list[int], copies: int) -> int:
        return 9 * copies * (cin * w[0] + sum(a * b for a, b in zip(w, w[1:])))

    target = weights(hpm_widths(out_channels, depth, 1), 1)
    per = out_channels // cardinality
    pattern = [2 ** (depth - 3 - i) for i in range(depth - 2)] + [1]   # later layers, in units u
    best = None
    for u in range(1, per):
        a = per - u * sum(pattern)
        if a < 1:
            break
        w = [a] + [u * p for p in pattern]
        err = abs(weights(w, cardinality) - target)
        if best is None or err <= best[0]:
            best = (err, w)
    return best[1]


@register_block
class HPM(Block):
    """Fig. 7e (§4.5), "Hierarchical, Parallel & Multi-scale": the paper's block.

        x1 = P(in->F/2,3)(x);  x2 = P(F/2->F/4,3)(x1);  x3 = P(F/4->F/4,3)(x2)
        y  = concat[x1, x2, x3] + shortcut(x)

    Every layer has a path of length one to the output, and the stacked 3x3s see 3x3, 5x5 and 7x7
    windows. `depth=d` (Fig. 9) deepens the hierarchy, halving the width at each stage (the last
    two equal); `cardinality=C` (Fig. 10) runs C copies at 1/C of the widths, each first layer
    reading the whole input, and concatenates all of their outputs; `constant_params=True`
    rebalances the copies' widths so the block keeps C = 1's size (`hpm_widths`). Fig. 1b is this
    block at F = 192.
    """

    name = "hpm"

    @classmethod
    def widths(cls, out_channels: int, depth: int = 3, cardinality: int = 1, constant_params: bool = False,
               in_channels: int | None = None) -> list[int]:
        """`hpm_widths(out_channels, depth, cardinality, constant_params, in_channels)`."""
        return hpm_widths(_int(out_channels, f"{cls.name}: out_channels"), depth, cardinality, constant_params,
                          in_channels)

    def __init__(self, in_channels: int, out_channels: int, binary: bool = True,
                 relu_after_conv: bool = False, rng=None, shortcut: bool = True,
                 depth: int = 3, cardinality: int = 1, constant_params: bool = False, scale: str = "xnor",
                 prelu: bool = False):
        super().__init__(in_channels, out_channels, binary, relu_after_conv, rng, shortcut, scale, prelu)
        widths = self.widths(self.out_channels, depth, cardinality, constant_params, self.in_channels)
        self.depth, self.cardinality, self.widths = int(depth), int(cardinality), widths
        self.constant_params = bool(constant_params)
        paths = []
        for _ in range(self.cardinality):
            cins = [in_channels] + widths[:-1]
            paths.append(Sequential(*[self.P(a, b, 3) for a, b in zip(cins, widths)]))
        self.paths = Sequential(*paths)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        outs = []
        for path in self.paths:        # C parallel copies (Fig. 10); one for Fig. 7e
            h = x
            for conv in path:          # hierarchical: each 3x3 reads the previous one's output
                h = conv(h)
                outs.append(h)         # ... and every one of them goes straight to the output
        return self.merge(x, F.concat(outs))


def check_block_options(name: str, opts: dict | None) -> None:
    """ValueError for an unknown block name or an option the block does not take."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; allowed: {sorted(BLOCKS)}")
    own = BLOCKS[name].options()
    bad = sorted(set(opts or {}) - set(own) - set(COMMON_OPTIONS))
    if bad:
        raise ValueError(f"block {name!r} does not take option(s) {bad}; its options are "
                         f"{list(own) + list(COMMON_OPTIONS)}")


def make_block(name: str, in_channels: int, out_channels: int, **opts) -> Block:
    """Build the block `name` (a key of BLOCKS) mapping in_channels -> out_channels.

    opts: binary=True, relu_after_conv=False, rng=None, shortcut=True, and the block's own options
    (`BLOCKS[name].options()`). Raises ValueError, listing what is allowed, for an unknown name or
    option and for widths the block cannot split (e.g. out_channels not a multiple of 8 for
    multiscale).
    """
    check_block_options(name, opts)
    for k, default in (("scale", "xnor"), ("prelu", False)):
        if k in opts and opts[k] == default:
            del opts[k]  # blocks registered without these options still build by default
        elif k in opts and k not in inspect.signature(BLOCKS[name].__init__).parameters:
            raise ValueError(f"block {name!r} does not take option {k!r}")
    return BLOCKS[name](in_channels, out_channels, **opts)
