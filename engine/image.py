"""Pictures in: reading, and the one preprocessing shared by training and the engine.

Training computes its image features with :func:`preprocess`, and the engine feeds the
exported encoder with the same function, so the two can never drift apart.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

# A picture claiming more pixels than this is refused before OpenCV allocates it (a 2^31-wide
# PNG header is 50 bytes). Phones make up to ~108 MP; everything is squashed to 224 px anyway.
MAX_PIXELS = 1 << 27  # 134 megapixels
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))  # read by OpenCV at its first decode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(ValueError):
    """An image file that cannot be read or decoded."""


def load_image(source: Union[str, Path, bytes]) -> np.ndarray:
    """Read a picture (path or encoded bytes) as an RGB uint8 array of shape (H, W, 3)."""
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        buf = np.frombuffer(bytes(source), np.uint8)
    else:
        p = Path(source)
        if not p.is_file():
            raise ImageReadError(f"cannot read image {name}: no such file")
        buf = np.fromfile(str(p), np.uint8)  # also works for non-ASCII paths on Windows
    bgr = _decode(buf, name) if buf.size else None
    if bgr is None:
        raise ImageReadError(f"cannot read image {name}: not a decodable picture (JPEG, PNG, BMP, WebP, TIFF)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _decode(buf: np.ndarray, name: str):
    """cv2.imdecode without the codecs' own chatter on stderr (libpng, libtiff, OpenCV's log):
    the user gets our one line. OpenCV raises for some bad headers and returns None for others."""
    from engine.midi.ports import quiet_stderr  # the one fd-2 silencer (C libraries print there)

    log = getattr(cv2.utils, "logging", cv2)  # OpenCV 5: cv2.utils.logging; 4.x (the installer's): cv2
    level = log.getLogLevel()
    log.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        with quiet_stderr():
            return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as e:
        if "MAX_IMAGE" in str(e):
            raise ImageReadError(f"cannot read image {name}: it claims more than "
                                 f"{MAX_PIXELS // 1_000_000} megapixels") from None
        return None
    finally:
        log.setLogLevel(level)


def preprocess(rgb: np.ndarray, size: int = 224,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, size, size): the whole frame squashed to a square
    (no crop, so nothing in the picture is lost), scaled to [0, 1], normalised per channel."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    x = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
