"""synthgen/pixels.py: uint8 pixels <-> [-1, 1], the one conversion every reader and writer uses."""
import numpy as np
import torch

from synthgen.pixels import from_uint8_images, to_uint8, to_uint8_images, to_unit


def test_every_pixel_value_survives_a_round_trip_and_spans_the_unit_range():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    unit = to_unit(pixels)
    assert unit.dtype == torch.float32 and unit.min() == -1.0 and unit.max() == 1.0
    assert torch.equal(to_uint8(unit), pixels)


def test_out_of_range_values_clamp_and_halves_round_to_nearest():
    unit = torch.tensor([-3.0, -1.0, 0.0, 1.0, 7.0, 2 / 255 - 1])
    assert to_uint8(unit).tolist() == [0, 0, 128, 255, 255, 1]  # 127.5 rounds half to even: 128


def test_image_batches_change_layout_and_round_trip():
    images = torch.arange(2 * 4 * 5 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 4, 5, 3)
    unit = from_uint8_images(images.numpy())  # files and the segmenter's input: (B, H, W, C)
    assert unit.shape == (2, 3, 4, 5) and unit.dtype == torch.float32
    assert torch.equal(unit[1, 2], to_unit(images[1, :, :, 2]))  # channel c of the image is plane c
    back = to_uint8_images(unit.requires_grad_())  # a generator's output, still attached to its graph
    assert isinstance(back, np.ndarray) and back.dtype == np.uint8
    assert np.array_equal(back, images.numpy())
