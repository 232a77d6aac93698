from pathlib import Path

import numpy as np
import pytest

from synthgen.celebamask import CLASS_ID, CLASS_NAMES
from synthgen.seeding import per_index_normal
from synthgen.toyfaces import (
    Z_DIM, Z_LAYOUT, ToyFacesError, render, render_background, render_batch, render_pool, seed_to_z,
)
from synthgen.toyfaces.face import face_from_z
from synthgen.toyfaces.latent import HAIR_STYLES
from synthgen.toyfaces.splits import SPLITS, SplitError, split_z

DOCS = Path(__file__).resolve().parents[1] / "docs" / "toyfaces.md"


@pytest.fixture(scope="module")
def faces64():
    zs = seed_to_z(7, range(24))
    return zs, [render(z, 64) for z in zs]


def test_seed_to_z_is_the_per_index_stream():
    z = seed_to_z(3, [5, 9])
    assert z.shape == (2, Z_DIM) and z.dtype == np.float32
    np.testing.assert_array_equal(z[1], per_index_normal(3, [9], Z_DIM)[0])


def test_same_z_same_bytes_and_seeds_differ():
    z = seed_to_z(0, [0])[0]
    a, b = render(z, 64), render(z.copy(), 64)
    assert a.keys() == b.keys() == {"rgb", "seg", "sketch", "landmark", "landmark_map"}
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    other = render(seed_to_z(1, [0])[0], 64)
    assert other["rgb"].tobytes() != a["rgb"].tobytes()
    assert not np.allclose(other["landmark"], a["landmark"])


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_sizes_shapes_and_class_ids(size):
    out = render(seed_to_z(0, [2])[0], size)
    assert out["rgb"].shape == (size, size, 3) and out["rgb"].dtype == np.uint8
    for key in ("seg", "sketch", "landmark_map"):
        assert out[key].shape == (size, size) and out[key].dtype == np.uint8
    assert out["landmark"].shape == (68, 2) and out["landmark"].dtype == np.float32
    assert out["seg"].max() < len(CLASS_NAMES)
    assert {CLASS_ID["skin"], CLASS_ID["nose"], CLASS_ID["l_eye"], CLASS_ID["r_eye"]} <= set(np.unique(out["seg"]))
    # landmarks scale with the image: the same face at twice the size
    half = render(seed_to_z(0, [2])[0], 32)["landmark"]
    np.testing.assert_allclose((out["landmark"] + 0.5) * 32 / size, half + 0.5, atol=1e-3)


def test_requested_domains_only():
    out = render(seed_to_z(0, [0])[0], 32, domains=("seg", "landmark"))
    assert set(out) == {"seg", "landmark", "landmark_map"}


def test_every_masked_class_shows_in_the_photo(faces64):
    zs, outs = faces64
    for z, out in zip(zs, outs):
        background = render_background(z, 64).astype(int)
        differs = np.abs(out["rgb"].astype(int) - background).max(axis=-1) > 6
        for c in np.unique(out["seg"]):
            if c != 0:
                assert differs[out["seg"] == c].any(), CLASS_NAMES[c]
        # and background pixels away from any part are the background layer (only
        # sub-pixel slivers that lost their block's vote may tint one)
        bg = np.pad(out["seg"] == 0, 1, constant_values=True)
        interior = bg[1:-1, 1:-1] & bg[:-2, 1:-1] & bg[2:, 1:-1] & bg[1:-1, :-2] & bg[1:-1, 2:]
        assert differs[interior].mean() < 0.005


def _near(seg, point, classes, radius):
    """Whether some pixel of `classes` lies within `radius` px of the point."""
    x, y = point
    ys, xs = np.ogrid[: seg.shape[0], : seg.shape[1]]
    disc = (xs - x) ** 2 + (ys - y) ** 2 <= radius**2
    return np.isin(seg[disc], classes).any()


def _contour(seg, point, radius):
    """Whether the point is within `radius` px of both skin and non-skin pixels."""
    x, y = point
    ys, xs = np.ogrid[: seg.shape[0], : seg.shape[1]]
    window = seg[(xs - x) ** 2 + (ys - y) ** 2 <= radius**2]
    return (window == CLASS_ID["skin"]).any() and (window != CLASS_ID["skin"]).any()


PARTS = [
    (range(17, 22), ["l_brow"]), (range(22, 27), ["r_brow"]), (range(27, 36), ["nose"]),
    (range(36, 42), ["l_eye"]), (range(42, 48), ["r_eye"]), (range(48, 68), ["mouth", "u_lip", "l_lip"]),
]


@pytest.mark.parametrize("size,radius", [(64, 2.0), (128, 1.5)])
def test_landmarks_lie_on_the_parts_they_name(faces64, size, radius):
    zs, outs = faces64
    if size != 64:
        outs = [render(z, size) for z in zs[:8]]
    for out in outs:
        seg, points = out["seg"], out["landmark"]
        for group, names in PARTS:
            classes = [CLASS_ID[n] for n in names]
            for i in group:
                assert _near(seg, points[i], classes, radius), (i, names)
        for i in range(17):
            assert _contour(seg, points[i], radius), i


def test_discrete_parts_occur_and_match_the_mask():
    zs = seed_to_z(11, range(200))
    faces = [face_from_z(z) for z in zs]
    segs = render_batch(zs, 64, domains=("seg",))["seg"]
    has = lambda name: np.array([(s == CLASS_ID[name]).any() for s in segs])  # noqa: E731
    glasses = np.array([f.glasses for f in faces])
    hats = np.array([f.hat for f in faces])
    earrings = np.array([f.earrings for f in faces])
    opened = np.array([f.opening > 0.02 for f in faces])
    for flag in (glasses, hats, earrings, opened):
        assert 0.03 < flag.mean() < 0.6
    np.testing.assert_array_equal(has("eye_g"), glasses)
    np.testing.assert_array_equal(has("hat"), hats)
    np.testing.assert_array_equal(has("ear_r"), earrings)
    assert has("mouth")[opened].all()
    styles = [f.style for f in faces]
    assert {s: styles.count(s) > 0 for s in HAIR_STYLES} == {s: True for s in HAIR_STYLES}
    assert not has("hair")[np.array(styles) == "bald"].any()


def test_continuous_components_change_the_photo_smoothly():
    z = seed_to_z(0, [4])[0].astype(np.float64)
    base = render(z, 64)["rgb"].astype(float)
    for name in ("skin_tone", "light_azimuth", "head_width", "smile", "tx"):
        k = next(s.index for s in Z_LAYOUT if s.name == name)
        small, large = z.copy(), z.copy()
        small[k] += 0.01
        large[k] += 1.0
        d_small = np.abs(render(small, 64)["rgb"] - base)
        d_large = np.abs(render(large, 64)["rgb"] - base)
        assert d_small.mean() < 0.6 and d_small.max() < 60, name
        assert d_large.mean() > 5 * d_small.mean() and d_large.max() > 15, name


def test_batch_and_pool_equal_single_renders():
    zs = seed_to_z(2, range(5))
    batch = render_batch(zs, 32)
    assert batch["rgb"].shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(batch["seg"][3], render(zs[3], 32)["seg"])
    pooled = list(render_pool(zs, 32, workers=2, chunk_size=2))
    np.testing.assert_array_equal(np.concatenate([c["rgb"] for c in pooled]), batch["rgb"])


def test_bad_requests_name_the_problem():
    z = seed_to_z(0, [0])[0]
    with pytest.raises(ToyFacesError, match="32..256"):
        render(z, 31)
    with pytest.raises(ToyFacesError, match="choose from"):
        render(z, 64, domains=("depth",))
    with pytest.raises(ValueError, match="dimension 64"):
        render(np.zeros(10), 64)


def test_splits_are_disjoint_streams():
    seeds = [s.seed for s in SPLITS.values()]
    assert len(set(seeds)) == len(seeds)
    np.testing.assert_array_equal(split_z("test", [3]), seed_to_z(1000, [3]))
    with pytest.raises(SplitError, match="outside"):
        split_z("test", [SPLITS["test"].size])
    with pytest.raises(SplitError, match="unknown split"):
        split_z("nope", [0])


def test_latent_layout_is_complete_and_documented():
    assert [s.index for s in Z_LAYOUT] == list(range(Z_DIM))
    text = DOCS.read_text()
    for slot in Z_LAYOUT:
        assert f"`{slot.name}`" in text, slot.name
