"""The dataset reader on every image format, and the one rule for a complete shard."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from sample_world import sample_args
from synthgen.cli import main
from synthgen.dataset.layout import IMAGE_EXTENSIONS, is_complete, sample_key, shard_paths
from synthgen.dataset.reader import find_shards, iter_samples, open_dataset, shard_members
from synthgen.dataset.webdataset import shard_pipeline
from synthgen.evaluation.pairs import read_pairs

DOMAINS = "rgb,seg,landmark"


@pytest.fixture(scope="module")
def datasets(world, tmp_path_factory):
    """The same 20 samples written as png, jpeg and webp."""
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for image_format in ("png", "jpeg", "webp"):
        out[image_format] = root / image_format
        result = CliRunner().invoke(main, sample_args(*world, out[image_format], "--image-format", image_format,
                                                      domains=DOMAINS, n=20))
        assert result.exit_code == 0, result.output
    return out


def read_all(folder):
    """(key, sorted fields) of every sample the reader gives, and the fields' bytes."""
    dataset = open_dataset(folder)
    samples = [(key, fields) for tar in dataset.complete_shards() for key, fields in iter_samples(tar)]
    return [(key, sorted(fields)) for key, fields in samples], {(k, f): b for k, fields in samples for f, b in fields.items()}


@pytest.mark.parametrize("image_format", ["jpeg", "webp"])
def test_reader_gives_the_same_keys_and_fields_on_every_image_format(datasets, image_format):
    png, png_bytes = read_all(datasets["png"])
    other, other_bytes = read_all(datasets[image_format])
    photo = f"rgb.{IMAGE_EXTENSIONS[image_format]}"
    assert [key for key, _ in png] == [sample_key(i) for i in range(20)]
    assert other == [(key, sorted(photo if f == "rgb.png" else f for f in fields)) for key, fields in png]
    # only the photo depends on the format: labels and provenance are the same bytes
    assert {k: b for k, b in other_bytes.items() if k[1] != photo} == \
           {k: b for k, b in png_bytes.items() if k[1] != "rgb.png"}
    card = open_dataset(datasets[image_format])
    assert card.specs["rgb"]["fields"] == [photo]
    members = shard_members(card.complete_shards()[0])
    assert [m.name for m in members] == [f"{m.key}.{m.field}" for m in members]
    assert {m.field for m in members} == {photo, "seg.png", "landmark.npy", "landmark.png", "json"}


@pytest.mark.parametrize("image_format", ["jpeg", "webp"])
def test_every_consumer_reads_the_same_samples_on_every_image_format(datasets, image_format, tmp_path):
    png, other = datasets["png"], datasets[image_format]
    a, b = (list(shard_pipeline(d, domains=["rgb", "seg", "landmark"])) for d in (png, other))
    assert [s["__key__"] for s in a] == [s["__key__"] for s in b] == [sample_key(i) for i in range(20)]
    for x, y in zip(a, b):
        assert x["rgb"].shape == y["rgb"].shape == (3, 32, 32)
        assert torch.equal(x["seg"], y["seg"]) and torch.equal(x["landmark"], y["landmark"])
    pairs_png, pairs_other = read_pairs(png), read_pairs(other)
    assert pairs_png.keys == pairs_other.keys and (pairs_png.masks == pairs_other.masks).all()
    assert pairs_other.images.shape == pairs_png.images.shape == (20, 32, 32, 3)
    result = CliRunner().invoke(main, ["preview", str(other), "--n", "3", "--out", str(tmp_path / "g.png"),
                                       "--size", "8"])
    assert result.exit_code == 0 and "3 samples" in result.output
    result = CliRunner().invoke(main, ["verify", str(other)])
    assert result.exit_code == 0 and "2 shards: 2 ok, 0 missing, 0 corrupt" in result.output


@pytest.fixture
def copy(datasets, tmp_path):
    return shutil.copytree(datasets["png"], tmp_path / "copy")


def complete(folder):
    """Shard numbers each reader takes for complete."""
    dataset = open_dataset(folder)
    by_rule = [t.shard for t in dataset.shards() if is_complete(folder, t)]
    assert [p.name for p in dataset.complete_shards()] == [p.name for p in find_shards(folder)] == \
           [shard_paths(folder, f"{s:06d}")["tar"].name for s in by_rule]
    return by_rule


def test_a_full_shard_is_complete(copy):
    assert complete(copy) == [0, 1]


def test_a_tar_without_its_manifest_is_not_complete(copy):
    shard_paths(copy, "000001")["manifest"].unlink()
    assert complete(copy) == [0]


def test_a_truncated_tar_is_not_complete(copy):
    tar = shard_paths(copy, "000001")["tar"]
    tar.write_bytes(tar.read_bytes()[:-1024])
    assert complete(copy) == [0]
    keys = [s["__key__"] for s in shard_pipeline(copy, domains=["seg"])]
    assert keys == [sample_key(i) for i in range(10)]


def test_a_shard_whose_stats_cover_another_range_is_not_complete(copy):
    stats = shard_paths(copy, "000001")["stats"]
    record = json.loads(stats.read_text())
    stats.write_text(json.dumps({**record, "count": 5}))  # as left by an earlier, shorter run
    assert complete(copy) == [0]
    stats.write_text(json.dumps({**record, "first_index": 0}))
    assert complete(copy) == [0]


def test_a_shard_without_stats_or_tar_is_not_complete(copy):
    shard_paths(copy, "000000")["stats"].unlink()
    shard_paths(copy, "000001")["tar"].unlink()
    assert complete(copy) == []


def test_a_rerun_redoes_exactly_the_shards_that_are_not_complete(copy, world, datasets):
    tar = shard_paths(copy, "000001")["tar"]
    tar.write_bytes(tar.read_bytes()[:-1024])
    result = CliRunner().invoke(main, sample_args(*world, copy, domains=DOMAINS, n=20))
    assert result.exit_code == 0 and "1 shards written, 1 already complete" in result.output
    assert tar.read_bytes() == shard_paths(datasets["png"], "000001")["tar"].read_bytes()


def test_a_tar_cut_between_members_is_an_error_not_a_shorter_shard(tmp_path):
    """tarfile ends quietly at a cut that falls on a member boundary; the reader does not."""
    import io
    import tarfile

    path = tmp_path / "000000.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key in ("000000000", "000000001"):
            info = tarfile.TarInfo(f"{key}.json")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    assert [k for k, _ in iter_samples(path)] == ["000000000", "000000001"]
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:1024])  # the first member's header and data block: the second is gone
    with pytest.raises(tarfile.ReadError, match="cut short"):
        list(iter_samples(cut))
    with pytest.raises(tarfile.ReadError, match="cut short"):
        shard_members(cut)
