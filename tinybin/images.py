"""Reading image files as float32 RGB in [0, 1], whatever their PIL mode.

`read_image(path)` maps each mode's full range to [0, 1] instead of letting `convert("RGB")`
clip or truncate it (a 16-bit image would become almost white, a float image of 0.5 black):

    mode                       stored values           -> [0, 1]
    1 (bilevel)                {0, 1}                  as is
    L, P (palette), RGB, CMYK, 0..255                  / 255 (palette and colour spaces via RGB)
    YCbCr, LAB, HSV
    I;16, I;16L, I;16B, I;16N  0..65535                / 65535
    I (32-bit integer)         must lie in 0..65535    / 65535 (16-bit data, as older Pillow
                                                       opened 16-bit PNGs); other values refused
    F (32-bit float)           must lie in [0, 1]      as is; other values (or NaN) refused
    LA, La, PA, RGBA, RGBa     + alpha                 composited over white (what a viewer shows)

Greyscale becomes three equal channels. Images larger than PIL's `Image.MAX_IMAGE_PIXELS`
(decompression bombs) and files PIL cannot read raise ValueError, as do unknown modes.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

_EIGHT_BIT = {"L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}
_SIXTEEN = {"I;16", "I;16L", "I;16B", "I;16N"}


def _grey3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a


def image_to_array(im) -> np.ndarray:
    """A PIL image -> (H, W, 3) float32 in [0, 1] (see the module docstring for each mode)."""
    mode = im.mode
    if mode == "1":
        a = np.asarray(im, dtype=np.float32)
    elif mode in _SIXTEEN:
        a = np.asarray(im).astype(np.float32) / 65535.0
    elif mode == "I":
        raw = np.asarray(im)
        if raw.size and (raw.min() < 0 or raw.max() > 65535):
            raise ValueError(f"32-bit integer image with values in [{raw.min()}, {raw.max()}]: tinybin reads "
                             f"mode I as 16-bit data (0..65535); convert it to 8 or 16 bits")
        a = raw.astype(np.float32) / 65535.0
    elif mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
            raise ValueError("float image: values must be finite and in [0, 1] "
                             f"(got [{np.nanmin(a) if a.size else 0}, {np.nanmax(a) if a.size else 0}])")
    elif mode in _ALPHA:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return np.ascontiguousarray(rgba[..., :3] * alpha + (1.0 - alpha), dtype=np.float32)
    elif mode in _EIGHT_BIT:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    else:
        raise ValueError(f"image mode {mode!r} is not supported (use an 8- or 16-bit greyscale, RGB or "
                         f"RGBA image)")
    return np.ascontiguousarray(_grey3(a), dtype=np.float32)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) float32 in [0, 1]; ValueError for a file PIL cannot read,
    an unsupported mode, out-of-range values, or more pixels than `PIL.Image.MAX_IMAGE_PIXELS`."""
    from PIL import Image, UnidentifiedImageError
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image {path!r} does not exist" if not os.path.exists(path)
                         else f"image {path!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return image_to_array(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"image {path!r} is too large to read safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"cannot read {path!r} as an image ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"image {path!r}: {e}") from None
