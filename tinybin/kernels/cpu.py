"""CPU detection and the choice of the XNOR-popcount kernel: the one place that looks at the CPU.

The fast kernel (``xnor_fast``) is written with target-independent LLVM vector intrinsics
(``llvm.ctpop`` on byte vectors, integer vector arithmetic, ``llvm.masked.store``), so it
compiles for every target Numba supports; what depends on the CPU is only the shape of its
register block, chosen here from the code target Numba compiles for:

- ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` exactly as Numba applies them (see ``code_target``:
  ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=`` builds the AVX2 kernel on any x86 host).
- x86 with AVX-512BW: 512-bit vectors, 32 registers. With VPOPCNTDQ the popcount is taken per
  64-bit lane (``vpopcntq``, no byte stage); otherwise per byte, which lowers to ``vpopcntb``
  with BITALG and to a ``vpshufb`` nibble lookup without.
- x86 with AVX2: 256-bit vectors, 16 registers; byte popcount = ``vpshufb`` nibble lookup.
- AArch64 (NEON): 128-bit vectors, 32 registers; byte popcount = ``cnt``.
- anything else (older x86, a CPU name this table does not know): 128-bit vectors, 16
  registers -- still correct, LLVM lowers the same IR with what the target has.

Block shape: ``ob`` output channels (a multiple of the 64-bit lanes of one vector) times ``pix``
output pixels per micro-kernel call; ``pix * ob / lanes`` byte accumulators plus the activation
broadcasts and the lookup constants must fit in the register file (weights are read from L1).
The choice is a pure function of the code target, which is also part of Numba's cache key
(triple, CPU name, features), so cached kernels never mix targets.

``TINYBIN_XNOR_FAST=0`` switches the fast kernel off (plain Numba loops); under
``NUMBA_DISABLE_JIT=1`` the NumPy rung runs instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from numba import config

__all__ = ["KernelChoice", "code_target", "choose", "CHOICE"]

# CPU names (LLVM spelling) without explicit NUMBA_CPU_FEATURES: what they imply.
_AVX512BW_NAMES = {
    "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
    "tigerlake", "rocketlake", "sapphirerapids", "graniterapids", "graniterapids-d",
    "emeraldrapids", "diamondrapids", "znver4", "znver5", "x86-64-v4",
}
_AVX2_NAMES = {
    "haswell", "broadwell", "skylake", "kabylake", "coffeelake", "cometlake", "alderlake",
    "raptorlake", "meteorlake", "arrowlake", "arrowlake-s", "lunarlake", "gracemont",
    "sierraforest", "grandridge", "clearwaterforest", "znver1", "znver2", "znver3",
    "x86-64-v3", "bdver4",
}


@dataclass(frozen=True)
class KernelChoice:
    """Which XNOR conv kernel runs, and the fast kernel's register block.

    name: human-readable ("fast 512-bit", "fast 256-bit", "fast 128-bit", "loops", "numpy")
    vector_bits: width of the fast kernel's vectors (0 when the fast kernel is off)
    ob: output channels per weight block; pix: output pixels per micro-kernel call
    reason: why this choice (the detected target or the switch that forced it)
    qword: popcount per 64-bit lane (AVX512-VPOPCNTDQ) instead of per byte with folds
    """

    name: str
    vector_bits: int
    ob: int
    pix: int
    reason: str
    qword: bool = False

    @property
    def fast(self) -> bool:
        return self.vector_bits > 0


def code_target() -> tuple[str, str, set[str]]:
    """(architecture, CPU name, enabled features) of the code Numba generates, as Numba does it.

    Numba's JIT target machine gets the CPU name ``NUMBA_CPU_NAME`` (default: the host's) and the
    feature string ``NUMBA_CPU_FEATURES`` -- which defaults to the HOST's features even when a
    CPU name is given. So ``NUMBA_CPU_NAME=haswell`` alone still generates AVX-512 code on an
    AVX-512 host; an AVX2-only target needs ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=``
    (empty: the CPU model's own features). Features are returned as LLVM names without '+'.
    """
    import llvmlite.binding as ll
    from numba.core.codegen import get_host_cpu_features

    arch = ll.get_process_triple().split("-")[0].lower()
    name = (config.CPU_NAME or ll.get_host_cpu_name()).lower()
    fstr = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    feats = set()
    if name in _AVX512BW_NAMES:  # the model's defaults, which explicit +/- entries override
        feats |= {"avx512f", "avx512bw", "avx2"}
    elif name in _AVX2_NAMES:
        feats |= {"avx2"}
    for f in (fstr or "").split(","):
        f = f.strip().lower()
        if f.startswith("+"):
            feats.add(f[1:])
        elif f.startswith("-"):
            feats.discard(f[1:])
    return arch, name, feats


def choose(arch: str, name: str, feats: set[str]) -> KernelChoice:
    """The kernel for a code target (pure function; see the module docstring)."""
    if config.DISABLE_JIT:
        return KernelChoice("numpy", 0, 0, 0, "NUMBA_DISABLE_JIT is set")
    if os.environ.get("TINYBIN_XNOR_FAST", "1") == "0":
        return KernelChoice("loops", 0, 0, 0, "disabled by TINYBIN_XNOR_FAST=0")
    where = f"{arch}, cpu {name}"
    if arch in ("x86_64", "i386", "i686", "x86"):
        if "avx512bw" in feats and "avx512f" in feats:
            if "avx512vpopcntdq" in feats:
                return KernelChoice("fast 512-bit qword", 512, 32, 4,
                                    f"{where}: AVX-512 VPOPCNTDQ", qword=True)
            return KernelChoice("fast 512-bit", 512, 32, 4, f"{where}: AVX-512BW")
        if "avx2" in feats:
            return KernelChoice("fast 256-bit", 256, 16, 2, f"{where}: AVX2")
        return KernelChoice("fast 128-bit", 128, 8, 2, f"{where}: no AVX2 (128-bit vectors)")
    if arch in ("aarch64", "arm64"):
        return KernelChoice("fast 128-bit", 128, 8, 4, f"{where}: NEON")
    return KernelChoice("fast 128-bit", 128, 8, 2, f"{where}: generic 128-bit vectors")


CHOICE = choose(*code_target())
