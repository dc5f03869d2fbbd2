"""Pictures are read with Pillow and resized in NumPy exactly as OpenCV's INTER_AREA (the encoders
were trained through OpenCV): the same pixels, the same 224-px input, without OpenCV installed."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.picture.image import load_image, preprocess, resize_area


@pytest.mark.parametrize("shape,size", [((480, 640), (224, 224)), ((1000, 333), (224, 224)), ((300, 301), (320, 240)),
                                        ((100, 150), (224, 224)), ((500, 90), (224, 224)), ((224, 224), (224, 224))])
def test_resize_area_matches_opencv_within_one_level(shape, size):
    rng = np.random.default_rng(sum(shape))
    if shape[0] >= size[1] and shape[1] >= size[0]:
        rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8)  # noise: the hardest case for a mean
    else:  # a photo-like smooth picture: OpenCV samples a shrunk axis there, this averages it
        y, x = np.mgrid[0:shape[0], 0:shape[1]] / 40.0
        rgb = np.stack([127 + 120 * np.sin(y + c) * np.cos(x - c) for c in (0, 1, 2)], -1).astype(np.uint8)
    ours = resize_area(rgb, size).astype(int)
    theirs = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(int)
    assert ours.shape == theirs.shape == (size[1], size[0], 3)
    if shape[0] >= size[1] and shape[1] >= size[0]:  # both shrunk: OpenCV's area mean, to its rounding
        assert np.abs(ours - theirs).max() <= 1
    else:  # enlarged along an axis: close to OpenCV's
        assert np.abs(ours - theirs).mean() < 2.0


def test_pillow_reads_the_pixels_opencv_reads(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    assert np.array_equal(load_image(path), rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    assert np.array_equal(load_image(buf.getvalue()), rgb)
    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(load_image(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_preprocess_matches_the_opencv_pipeline_the_encoder_was_trained_on():
    rgb = np.random.default_rng(2).integers(0, 256, (375, 500, 3), dtype=np.uint8)
    x = preprocess(rgb)
    ref = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    ref = ((ref - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)).transpose(2, 0, 1)
    assert x.shape == (3, 224, 224)
    assert np.abs(x - ref).max() <= 1.0 / 255 / 0.224 + 1e-6  # one 8-bit level, through the widest std
