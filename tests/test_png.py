"""The PNG writer of `synthgen sample`: any reader gets the very array back."""
import io

import numpy as np
import pytest
from PIL import Image

from synthgen.sample.png import png_bytes


def _smooth(h, w, c, seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(h), np.arange(w))[..., None] * rng.integers(1, 5, size=c)
    return (ramp + rng.integers(0, 3, size=(h, w, c))).astype(np.uint8)  # wraps past 255: the filter's modulo arithmetic


@pytest.mark.parametrize("shape", [(64, 64, 3), (17, 40, 3), (1, 1, 3)])
@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize("filtered", [True, False])
def test_rgb_round_trips_through_pillow(shape, level, filtered):
    pixels = _smooth(*shape)
    image = Image.open(io.BytesIO(png_bytes(pixels, level, filtered=filtered)))
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("shape", [(64, 64), (33, 20), (64, 64, 1)])
@pytest.mark.parametrize("filtered", [True, False])
def test_gray_round_trips_through_pillow(shape, filtered):
    pixels = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)  # every Paeth branch and wrap
    image = Image.open(io.BytesIO(png_bytes(pixels, 1, filtered=filtered)))
    assert image.mode == "L"
    assert np.array_equal(np.asarray(image), pixels.reshape(shape[:2]))


def test_palette_png_keeps_ids_and_colours():
    palette = [[0, 0, 0], [204, 0, 0], [0, 255, 255], [51, 51, 255]]
    ids = np.random.default_rng(2).integers(0, 4, size=(48, 64), dtype=np.uint8)
    image = Image.open(io.BytesIO(png_bytes(ids, 1, palette=palette)))
    assert image.mode == "P"
    assert np.array_equal(np.asarray(image), ids)  # pixel values are the class ids
    assert image.getpalette()[:12] == [c for rgb in palette for c in rgb]
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(palette, dtype=np.uint8)[ids])


def test_same_array_same_bytes():
    pixels = _smooth(64, 64, 3, seed=3)
    assert png_bytes(pixels, 1) == png_bytes(pixels.copy(), 1)


def test_smaller_than_raw_for_a_photo_like_image():
    pixels = _smooth(64, 64, 3, seed=4)
    assert len(png_bytes(pixels, 1)) < pixels.nbytes / 2


@pytest.mark.parametrize("pixels, palette, message", [
    (np.zeros((4, 4), np.float32), None, "uint8"),
    (np.zeros((4, 4, 4), np.uint8), None, r"\(H, W, 3\)"),
    (np.full((4, 4), 5, np.uint8), [[0, 0, 0]] * 3, "outside the palette"),
    (np.zeros((4, 4, 3), np.uint8), [[0, 0, 0]], "indices"),
])
def test_bad_input_is_refused(pixels, palette, message):
    with pytest.raises(ValueError, match=message):
        png_bytes(pixels, 1, palette=palette)
