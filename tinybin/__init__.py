"""tinybin: hierarchical binary CNNs for landmark localization (Bulat & Tzimiropoulos, TPAMI 2018),
written from scratch in NumPy + Numba: autograd, binary layers with straight-through estimators,
bit-packed XNOR-popcount inference, the paper's blocks and hourglass networks, training and
evaluation.

    import tinybin as tb
    from tinybin import HourGlass, Tensor, no_grad
"""
from . import functional, gradcheck, losses, nn, optim, threads
from .nn import Module, Parameter, count_parameters
from .serialization import load, save
from .tensor import Function, Tensor, no_grad

__version__ = "0.1.0"

threads.apply_defaults()  # the thread policy (BLAS and Numba, default 1 thread): threads.py

__all__ = ["Tensor", "Function", "no_grad", "Module", "Parameter", "count_parameters", "save", "load",
           "functional", "nn", "losses", "optim", "gradcheck"]


def __getattr__(name):  # lazy: the heavier modules import only when asked for
    import importlib
    if name in ("blocks", "models", "packed", "heatmaps", "metrics", "viz", "train", "transforms",
                "skeletons", "experiments", "kernels", "data"):
        return importlib.import_module(f".{name}", __name__)
    if name == "HourGlass":
        from .models import HourGlass
        return HourGlass
    raise AttributeError(f"module 'tinybin' has no attribute {name!r}")
