import numpy as np
import pytest
import torch
from PIL import Image

from synthgen.anchors.codecs import (
    CorruptFileError, MaskRangeError, decode, gaussian_heatmaps, heatmap_peaks, read_file, to_input, to_target,
    write_decoded,
)
from synthgen.anchors.spec import DomainSpec, load_domain_spec

SEG = load_domain_spec("seg")
LANDMARK = load_domain_spec("landmark")


def test_mask_resize_is_nearest_and_keeps_ids(tmp_path):
    small = (np.arange(32 * 32).reshape(32, 32) * 7 % 19).astype(np.uint8)
    ids = np.kron(small, np.ones((2, 2), np.uint8))  # 2x2 blocks: a nearest downscale is exact
    Image.fromarray(ids, mode="L").save(tmp_path / "m.png")
    out = read_file(SEG, tmp_path / "m.png", 32)
    assert out.dtype == np.uint8 and np.array_equal(out, small)
    up = read_file(SEG, tmp_path / "m.png", 96)  # upscaling invents no in-between class
    assert set(np.unique(up)) == set(np.unique(small))


def test_mask_id_out_of_range_names_file_and_value(tmp_path):
    ids = np.zeros((16, 16), np.uint8)
    ids[3, 5] = 23
    Image.fromarray(ids, mode="L").save(tmp_path / "bad.png")
    with pytest.raises(MaskRangeError, match=r"bad\.png: class id 23 at pixel \(x=5, y=3\)") as info:
        read_file(SEG, tmp_path / "bad.png", 16)
    assert "\n" not in str(info.value)


def test_palette_and_colour_masks_read_as_ids(tmp_path):
    ids = np.tile(np.arange(19, dtype=np.uint8), (19, 1))
    p = Image.fromarray(ids, mode="P")
    p.putpalette([v for c in SEG.palette for v in c])
    p.save(tmp_path / "p.png")
    p.convert("RGB").save(tmp_path / "rgb.png")
    assert np.array_equal(read_file(SEG, tmp_path / "p.png", 19), ids)
    assert np.array_equal(read_file(SEG, tmp_path / "rgb.png", 19), ids)
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "odd.png")
    with pytest.raises(MaskRangeError, match=r"colour \(1, 2, 3\)"):
        read_file(SEG, tmp_path / "odd.png", 4)


def test_corrupt_image_is_a_corrupt_file_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CorruptFileError, match="x.png"):
        read_file(SEG, tmp_path / "x.png", 16)


def test_image_input_range_and_channels(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(tmp_path / "w.png")
    gray = read_file(DomainSpec(name="s", kind="image", channels=1), tmp_path / "w.png", 16)
    assert gray.shape == (1, 16, 16)
    x = to_input(DomainSpec(name="s", kind="image", channels=1), torch.from_numpy(gray[None]), 16)
    assert torch.allclose(x, torch.ones_like(x))


def test_keypoint_formats_agree(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 255, (68, 2)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 68\n{\n" + "".join(f"{x} {y}\n" for x, y in pts) + "}\n")
    (tmp_path / "a.txt").write_text("".join(f"{x} {y}\n" for x, y in pts))
    read = [read_file(LANDMARK, tmp_path / f"a.{ext}", 256) for ext in ("npy", "pts", "txt")]
    for r in read:
        np.testing.assert_allclose(r, pts, atol=1e-4)
    # Coordinates given for a 256 image, read at 64: pixel centres scale about -0.5.
    small = read_file(LANDMARK, tmp_path / "a.npy", 64, points_frame=256)
    np.testing.assert_allclose(small, (pts + 0.5) / 4 - 0.5, atol=1e-4)
    (tmp_path / "b.txt").write_text("1 2\n3 4\n")
    with pytest.raises(CorruptFileError, match="expected 68 points"):
        read_file(LANDMARK, tmp_path / "b.txt", 64)


def test_heatmap_peaks_recover_subpixel_points():
    pts = torch.tensor([[[10.3, 20.7], [40.0, 5.25], [0.0, 63.0]]])
    maps = gaussian_heatmaps(pts, 64, 0.02)
    assert maps.shape == (1, 3, 64, 64) and torch.isclose(maps.amax(), torch.tensor(1.0), atol=0.1)
    np.testing.assert_allclose(heatmap_peaks(maps).numpy(), pts.numpy(), atol=0.02)


def test_decode_contract_and_mask_file(tmp_path):
    logits = torch.randn(2, 19, 8, 8)
    dec = decode(SEG, logits)
    assert dec["mask"].dtype == np.uint8 and dec["mask"].shape == (2, 8, 8)
    assert np.array_equal(dec["mask"], logits.argmax(1).numpy())
    (png,) = write_decoded(SEG, dec, 1, tmp_path, "s")
    img = Image.open(png)
    assert img.mode == "P" and np.array_equal(np.asarray(img), dec["mask"][1])
    assert img.getpalette()[3:6] == list(SEG.palette[1])
    assert np.array_equal(read_file(SEG, png, 8), dec["mask"][1])

    image = decode(DomainSpec(name="s", kind="image", channels=1), torch.zeros(2, 1, 8, 8))["image"]
    assert image.shape == (2, 8, 8, 1) and image.dtype == np.uint8 and int(image[0, 0, 0, 0]) == 128

    heat = gaussian_heatmaps(torch.full((2, 68, 2), 30.0), 64, LANDMARK.heatmap_sigma)
    kp = decode(LANDMARK, heat)
    assert kp["points"].shape == (2, 68, 2) and kp["points"].dtype == np.float32
    assert kp["map"].shape == (2, 64, 64) and kp["map"].dtype == np.uint8 and kp["map"].max() == 255
    files = write_decoded(LANDMARK, kp, 0, tmp_path, "k")
    assert [f.suffix for f in files] == [".png", ".npy"]
    np.testing.assert_allclose(np.load(files[1]), 30.0, atol=0.02)


def test_mask_input_is_one_hot_and_target_is_ids():
    ids = torch.randint(0, 19, (2, 8, 8), dtype=torch.uint8)
    x = to_input(SEG, ids, 8)
    assert x.shape == (2, 19, 8, 8) and torch.equal(x.argmax(1), ids.long()) and torch.all(x.sum(1) == 1)
    assert to_target(SEG, ids, 8).dtype == torch.long
