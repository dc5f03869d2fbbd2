"""Pictures in: reading, and the one preprocessing shared by training and the engine.

Training computes its image features with :func:`preprocess`, and the engine feeds the
exported encoder with the same function, so the two can never drift apart. Decoding is
Pillow's; the resize is OpenCV's INTER_AREA computed in NumPy (:func:`resize_area`), so the
installed program needs no OpenCV (docs/install.md).
"""
from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageOps

# A picture claiming more pixels than this is refused from its header, before it is decoded (a
# 2^31-wide PNG header is 50 bytes). Phones make up to ~108 MP; everything is squashed to 224 px.
MAX_PIXELS = 1 << 27  # 134 megapixels
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(ValueError):
    """An image file that cannot be read or decoded."""


def load_image(source: Union[str, Path, bytes]) -> np.ndarray:
    """Read a picture (path or encoded bytes) as an RGB uint8 array of shape (H, W, 3): turned
    upright by its EXIF orientation, alpha dropped, 16-bit samples scaled to 8 (as OpenCV's
    IMREAD_COLOR, which the models were trained through)."""
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        p = Path(source)
        if not p.is_file():
            raise ImageReadError(f"cannot read image {name}: no such file")
        data = p.read_bytes()
    rgb = _decode(data, name) if data else None
    if rgb is None:
        raise ImageReadError(f"cannot read image {name}: not a decodable picture (JPEG, PNG, BMP, WebP, TIFF)")
    return rgb


def _decode(data: bytes, name: str):
    """Pillow's decode, or None for anything it cannot read (it raises many kinds for bad input)."""
    too_big = ImageReadError(f"cannot read image {name}: it claims more than {MAX_PIXELS // 1_000_000} megapixels")
    from engine.live.ports import quiet_stderr  # the one fd-2 silencer (libtiff prints there)

    try:
        with warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")  # the codecs' chatter about bad tags: the user gets our one line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise too_big
                im = ImageOps.exif_transpose(im)
                if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                    a = np.asarray(im).astype(np.uint32) >> 8  # 16-bit grey -> 8 bit
                    return np.repeat(np.clip(a, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
                if im.mode in ("F",):
                    return None
                return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_big from None
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, TypeError, IndexError, KeyError, EOFError,
            struct.error, MemoryError, RuntimeError, ZeroDivisionError, OverflowError):
        return None


def _shrink_axis0(x: np.ndarray, dst: int) -> np.ndarray:
    """OpenCV's INTER_AREA shrink along axis 0: each output sample is the mean of the input it
    covers, fractional at the edges (exact, through integer prefix sums: a 12-MP photo is one
    pass over its bytes)."""
    src = x.shape[0]
    scale = src / dst
    if x.dtype.kind == "f":
        cum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    else:  # integer prefix sums: exact
        cum = np.empty((src + 1,) + x.shape[1:], np.int64 if src > 8_000_000 else np.int32)
        cum[0] = 0
        np.cumsum(x, axis=0, out=cum[1:])
    pos = np.minimum(np.arange(dst + 1) * scale, src)
    i = np.minimum(np.floor(pos).astype(np.int64), src - 1)
    frac = (pos - i).reshape((-1,) + (1,) * (x.ndim - 1))
    integral = cum[i] + frac * x[i]  # the sum of the input over [0, pos)
    return (integral[1:] - integral[:-1]) / scale


def _blend_axis0(x: np.ndarray, dst: int) -> np.ndarray:
    """OpenCV's INTER_AREA when a picture is enlarged along either axis: a two-tap blend (a
    pixel's own value up to the last output it covers, then linear into the next)."""
    src = x.shape[0]
    scale = src / dst
    d = np.arange(dst)
    s = np.floor(d * scale).astype(np.int64)
    f = (d + 1) - (s + 1) / scale
    f = np.where(f <= 0, 0.0, f - np.floor(f))
    f = np.where(s >= src - 1, 0.0, f).reshape((-1,) + (1,) * (x.ndim - 1))
    s = np.minimum(s, src - 1)
    return (1.0 - f) * x[s] + f * x[np.minimum(s + 1, src - 1)]


def resize_area(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)`` for uint8 (H, W, C) pictures, in
    NumPy: ``size`` is (width, height). Shrinking (every picture larger than its target) matches
    OpenCV to 1 in 255 (its float rounding), and so does enlarging both ways."""
    width, height = size
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb.copy()
    if h >= height and w >= width:
        x = _shrink_axis0(rgb, height)
        x = _shrink_axis0(x.swapaxes(0, 1), width).swapaxes(0, 1)
    else:  # enlarged along an axis: OpenCV's blend there (and, unlike OpenCV, an area mean along a shrunk one)
        x = (_shrink_axis0 if h >= height else _blend_axis0)(rgb.astype(np.float64), height)
        x = (_shrink_axis0 if w >= width else _blend_axis0)(x.swapaxes(0, 1), width).swapaxes(0, 1)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def preprocess(rgb: np.ndarray, size: int = 224,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, size, size): the whole frame squashed to a square
    (no crop, so nothing in the picture is lost), scaled to [0, 1], normalised per channel."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    x = resize_area(rgb, (size, size)).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
