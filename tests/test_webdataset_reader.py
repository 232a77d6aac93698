"""Training consumers read the shards right: our pipeline, Hugging Face datasets, pandas."""
from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sample_world import make_world, sample_args
from synthgen.cli import main
from synthgen.dataset.reader import ShardReaderError, open_dataset
from synthgen.dataset.webdataset import decode_mask, shard_pipeline

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    torch.set_num_threads(1)
    world = make_world(tmp_path_factory.mktemp("world"))
    out = tmp_path_factory.mktemp("ds") / "out"
    result = CliRunner().invoke(main, sample_args(*world, out, n=30))
    assert result.exit_code == 0, result.output
    return out


def stored(dataset, key, field):
    with tarfile.open(dataset / "shards" / f"{int(key) // 10:06d}.tar") as tar:
        return tar.extractfile(f"{key}.{field}").read()


def test_pipeline_decodes_every_domain_to_the_documented_tensors(dataset):
    sample = next(iter(shard_pipeline(dataset, with_json=True)))
    assert sample["__key__"] == "000000000"
    assert sample["rgb"].shape == (3, 32, 32) and sample["rgb"].dtype == torch.float32
    assert 0 <= sample["rgb"].min() and sample["rgb"].max() <= 1
    assert sample["sketch"].shape == (1, 32, 32)
    assert sample["seg"].shape == (32, 32) and sample["seg"].dtype == torch.int64
    ids = np.asarray(Image.open(io.BytesIO(stored(dataset, "000000000", "seg.png"))))
    np.testing.assert_array_equal(sample["seg"].numpy(), ids)
    assert sample["landmark"].shape == (68, 2) and sample["landmark_map"].shape == (1, 32, 32)
    assert sample["json"]["index"] == 0


def test_the_former_import_path_still_serves_user_code():
    from synthgen.data.webdataset import shard_pipeline as former

    assert former is shard_pipeline


def test_mask_is_not_what_the_stock_rgb_decoder_gives(dataset):
    data = stored(dataset, "000000001", "seg.png")
    ids = decode_mask(data)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # what "rgb8" would hand over
    assert rgb.shape == (32, 32, 3) and ids.shape == (32, 32)
    assert int(ids.max()) < 19


def test_dataloader_workers_split_shards_without_duplicates(dataset):
    pipe = shard_pipeline(dataset, domains=["rgb", "seg"])
    keys = [k for batch in torch.utils.data.DataLoader(pipe, batch_size=4, num_workers=2) for k in batch["__key__"]]
    assert sorted(keys) == [f"{i:09d}" for i in range(30)]


def test_shuffled_pipeline_still_yields_each_sample_once(dataset):
    keys = [s["__key__"] for s in shard_pipeline(dataset, domains=["seg"], shuffle_buffer=8, seed=1)]
    assert sorted(keys) == [f"{i:09d}" for i in range(30)] and keys != sorted(keys)


def test_reader_errors_name_the_fix(dataset, tmp_path):
    with pytest.raises(ShardReaderError, match="not in this dataset"):
        shard_pipeline(dataset, domains=["depth"])
    with pytest.raises(ShardReaderError, match="no dataset.json"):
        shard_pipeline(tmp_path)
    with pytest.raises(ShardReaderError, match="no complete shard"):
        shard_pipeline(dataset, shards=[])


def test_hugging_face_datasets_loads_the_shards(dataset, tmp_path):
    import datasets
    shards = [str(p) for p in open_dataset(dataset).complete_shards()]
    ds = datasets.load_dataset("webdataset", data_files={"train": shards}, split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 30
    row = ds[3]
    assert row["__key__"] == "000000003"
    seg = row["seg.png"]
    assert seg.mode == "P"
    np.testing.assert_array_equal(np.asarray(seg), np.asarray(Image.open(io.BytesIO(stored(dataset, "000000003", "seg.png")))))
    assert np.asarray(row["landmark.npy"]).shape == (68, 2)
    assert row["json"]["index"] == 3


def test_manifest_loads_in_pandas_and_filters(dataset):
    df = pd.read_parquet(dataset / "manifest.parquet")
    assert len(df) == 30 and list(df["key"][:2]) == ["000000000", "000000001"]
    assert len(df["seg_class_fractions"][0]) == 19 and np.asarray(df["landmark_points"][0].tolist()).shape == (68, 2)
    assert len(df[df.quality >= df.quality.median()]) >= 15


def test_example_trains_from_the_shards(dataset, tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from train_segmentation import train_segmentation
    finally:
        sys.path.pop(0)
    result = train_segmentation(dataset=dataset, steps=3, batch_size=4, base_channels=4, shuffle=0,
                                out=tmp_path / "seg.safetensors")
    assert result["steps"] == 3 and 0 <= result["eval_miou"] <= 1 and np.isfinite(result["final_loss"])
    assert (tmp_path / "seg.safetensors").exists()
