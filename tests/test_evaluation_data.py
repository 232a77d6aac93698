"""Tiny synthetic face-parsing pairs for the evaluation tests, and the pairs reader."""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_files import as_dataset
from synthgen.celebamask import CLASS_ID, PALETTE
from synthgen.dataset.reader import find_shards
from synthgen.evaluation.pairs import Pairs, PairsError, read_pairs

# Left and right eyes share one colour: only position tells them apart.
COLOURS = {"background": (30, 30, 60), "skin": (220, 170, 140), "l_eye": (20, 20, 20),
           "r_eye": (20, 20, 20), "hair": (90, 50, 20), "mouth": (200, 40, 60)}


def fake_faces(n: int, size: int = 32, seed: int = 0) -> Pairs:
    """Discs of skin with hair on top, two eyes and a mouth, jittered; noisy colours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cx, cy = size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2)
        r = size * rng.uniform(0.3, 0.38)
        m = np.zeros((size, size), np.uint8)
        m[(xx - cx) ** 2 + (yy - cy) ** 2 < r**2] = CLASS_ID["skin"]
        m[((xx - cx) ** 2 + (yy - cy) ** 2 < (1.2 * r) ** 2) & (yy < cy - 0.6 * r)] = CLASS_ID["hair"]
        e = max(1, size // 16)
        ey, ex = int(cy - 0.15 * r), int(0.4 * r)
        # the person's left eye is on the image's right (CelebAMask-HQ convention)
        m[ey - e : ey + e, int(cx) - ex - e : int(cx) - ex + e] = CLASS_ID["r_eye"]
        m[ey - e : ey + e, int(cx) + ex - e : int(cx) + ex + e] = CLASS_ID["l_eye"]
        my = int(cy + 0.45 * r)
        m[my - e : my + e, int(cx) - 2 * e : int(cx) + 2 * e] = CLASS_ID["mouth"]
        img = np.zeros((size, size, 3), np.float64)
        for name, colour in COLOURS.items():
            img[m == CLASS_ID[name]] = colour
        img += rng.normal(0, 8, img.shape)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
        masks[i] = m
    return Pairs(images, masks, [f"{i:06d}" for i in range(n)])


def _png(array: np.ndarray, palette: bool = False) -> bytes:
    img = Image.fromarray(array)
    if palette:  # class ids as palette indices, as `synthgen sample` writes masks
        img.putpalette([c for rgb in PALETTE for c in rgb])
        assert img.mode == "P"
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_pair_folder(pairs: Pairs, root: Path) -> Path:
    (root / "rgb").mkdir(parents=True)
    (root / "seg").mkdir()
    for key, img, mask in zip(pairs.keys, pairs.images, pairs.masks):
        (root / "rgb" / f"{key}.png").write_bytes(_png(img))
        (root / "seg" / f"{key}.png").write_bytes(_png(mask, palette=True))
    return root


def write_pair_shards(pairs: Pairs, root: Path, shard_size: int = 8) -> Path:
    """The layout `synthgen sample` writes: root/shards/000000.tar with key.rgb.png, key.seg.png."""
    (root / "shards").mkdir(parents=True)
    for s, start in enumerate(range(0, len(pairs), shard_size)):
        with tarfile.open(root / "shards" / f"{s:06d}.tar", "w") as tar:
            for i in range(start, min(start + shard_size, len(pairs))):
                for field, data in (("rgb.png", _png(pairs.images[i])),
                                    ("seg.png", _png(pairs.masks[i], palette=True)),
                                    ("json", b"{}")):
                    info = tarfile.TarInfo(f"{int(pairs.keys[i]):09d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return root


def test_fake_faces_have_distinct_eyes():
    pairs = fake_faces(2, size=32)
    assert pairs.images.shape == (2, 32, 32, 3) and pairs.masks.shape == (2, 32, 32)
    for name in ("skin", "hair", "l_eye", "r_eye", "mouth"):
        assert (pairs.masks == CLASS_ID[name]).any(), name


def test_folder_and_shards_read_the_same_pairs(tmp_path):
    pairs = fake_faces(10, size=24)
    folder = read_pairs(write_pair_folder(pairs, tmp_path / "folder"))
    shards = read_pairs(write_pair_shards(pairs, tmp_path / "sampled", shard_size=4))
    assert len(find_shards(tmp_path / "sampled")) == 3
    for read in (folder, shards):
        np.testing.assert_array_equal(read.images, pairs.images)
        np.testing.assert_array_equal(read.masks, pairs.masks)  # palette PNG read as ids
    assert shards.keys[0] == "000000000"
    first = read_pairs(tmp_path / "sampled", n=5, size=12)
    assert first.images.shape == (5, 12, 12, 3)
    assert set(np.unique(first.masks)) <= set(np.unique(pairs.masks))  # nearest: no blended ids


def test_pairs_errors_name_the_problem(tmp_path):
    with pytest.raises(PairsError, match="does not exist"):
        read_pairs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairsError, match="rgb/ \\+ seg/"):
        read_pairs(tmp_path / "empty")
    root = write_pair_folder(fake_faces(3, size=16), tmp_path / "few")
    with pytest.raises(PairsError, match="3 pairs, 5 were asked"):
        read_pairs(root, n=5)
    Image.new("RGB", (16, 16)).save(root / "seg" / "000000.png")
    with pytest.raises(PairsError, match="single-channel"):
        read_pairs(root)


def test_sample_folder_reads_only_complete_shards(tmp_path):
    root = write_pair_shards(fake_faces(12, size=16), tmp_path / "sampled", shard_size=4)
    as_dataset(root, {}, n_samples=12, shard_size=4, complete=(0, 2))  # shard 1 has no completion marker yet
    assert [p.name for p in find_shards(root)] == ["000000.tar", "000002.tar"]
    assert read_pairs(root).keys == [f"{i:09d}" for i in (0, 1, 2, 3, 8, 9, 10, 11)]
