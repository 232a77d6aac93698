"""Plan, encoding and the shard writer on synthetic arrays (no generator needed)."""
from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthgen.anchors.spec import load_domain_spec
from synthgen.dataset.layout import is_complete, read_stats, sample_key, shard_paths
from synthgen.dataset.manifest import manifest_schema
from synthgen.sample.encode import EncodeOptions, EncodePool, SampleArrays, encode_mask, sample_fields
from synthgen.sample.plan import COMPUTE_BLOCK, PlanError, batches, blocks, plan_shards, shards_for_rank, step_size
from synthgen.sample.shard_writer import ShardWriter

SPECS = [load_domain_spec(n) for n in ("rgb", "seg", "sketch", "landmark")]


def test_plan_covers_indices_once_in_fixed_ranges():
    tasks = plan_shards(2000, 2500, 1000)
    assert [(t.shard, t.first_index, t.count) for t in tasks] == [(2, 2000, 1000), (3, 3000, 1000), (4, 4000, 500)]
    ranks = [shards_for_rank(tasks, r, 2) for r in range(2)]
    assert [t.shard for t in ranks[0]] == [2, 4] and [t.shard for t in ranks[1]] == [3]
    assert [len(b) for b in batches(tasks[2].indices, 128)] == [128, 128, 128, 116]
    assert [i for b in batches(range(7, 20), 4) for i in b] == list(range(7, 20))
    with pytest.raises(PlanError, match="multiple of the shard size"):
        plan_shards(10, 100, 1000)
    assert sample_key(1234) == "000001234" and "." not in sample_key(7)


def test_steps_are_whole_aligned_compute_blocks():
    assert COMPUTE_BLOCK == 8
    assert [step_size(b) for b in (1, 3, 8, 9, 32)] == [8, 8, 8, 16, 32]
    # steps end at block boundaries, so they never split a block inside a shard
    assert [b[0] for b in batches(range(10, 40), 3)] == [10, 16, 24, 32]
    assert [b[0] for b in batches(range(10, 40), 20)] == [10, 32]
    assert blocks([10, 11, 16]) == [list(range(8, 16)), list(range(16, 24))]
    assert blocks(range(0, 3)) == [list(range(8))]  # a partial block is computed whole


def test_mask_png_keeps_class_ids_and_palette():
    spec = SPECS[1]
    mask = np.random.default_rng(0).integers(0, 19, (16, 20), dtype=np.uint8)
    image = Image.open(io.BytesIO(encode_mask(mask, spec.palette, level=1)))
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), mask)
    assert image.convert("RGB").getpixel((0, 0)) == spec.palette[mask[0, 0]]


def fake_sample(index: int, rng: np.random.Generator) -> SampleArrays:
    return SampleArrays(
        index=index,
        arrays={
            "rgb": {"image": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)},
            "seg": {"mask": rng.integers(0, 19, (8, 8), dtype=np.uint8)},
            "sketch": {"image": rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)},
            "landmark": {"points": rng.random((68, 2), dtype=np.float32) * 8,
                         "map": rng.integers(0, 256, (8, 8), dtype=np.uint8)},
        },
        scores={"seg_confidence": 0.9, "seg_entropy": 0.3, "landmark_confidence": 0.5},
        meta={"shard": 0, "seed": 0, "truncation_psi": 1.0, "style_mix_layer": None, "class_index": None},
    )


def write_shard(out_dir, first=0, count=5, workers=2):
    [task] = plan_shards(first, count, 10)
    rng = np.random.default_rng(first)
    writer = ShardWriter(out_dir, task, manifest_schema(SPECS))
    with EncodePool(SPECS, EncodeOptions(), workers) as pool:
        futures = [pool.submit(fake_sample(i, rng)) for i in task.indices]
        for f in futures:
            writer.add(f.result())
    return task, writer.commit()


def test_shard_is_byte_reproducible_sorted_and_marked_complete(tmp_path):
    task, stats = write_shard(tmp_path / "a", workers=2)
    _, stats_again = write_shard(tmp_path / "b", workers=0)
    assert stats.sha256 == stats_again.sha256 and stats.count == 5
    tar_path = shard_paths(tmp_path / "a", task.name)["tar"]
    assert hashlib.sha256(tar_path.read_bytes()).hexdigest() == stats.sha256
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0} and {m.uname for m in members} == {""}
    assert names[:6] == [f"000000000.{f}" for f in sample_fields(SPECS, "png")]
    assert is_complete(tmp_path / "a", task)
    assert read_stats(shard_paths(tmp_path / "a", task.name)["stats"]).first_index == 0
    table = pq.read_table(shard_paths(tmp_path / "a", task.name)["manifest"])
    assert table.column("key").to_pylist() == [sample_key(i) for i in range(5)]
    assert table.column("quality").to_pylist() == pytest.approx([0.5] * 5)
    fractions = np.array(table.column("seg_class_fractions").to_pylist())
    np.testing.assert_allclose(fractions.sum(1), 1.0, rtol=1e-5)
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_incomplete_shard_is_not_complete_and_abort_leaves_nothing(tmp_path):
    [task] = plan_shards(0, 3, 10)
    writer = ShardWriter(tmp_path, task, manifest_schema(SPECS))
    with EncodePool(SPECS, EncodeOptions(), 0) as pool:
        writer.add(pool.submit(fake_sample(0, np.random.default_rng(0))).result())
    with pytest.raises(RuntimeError, match="missing samples"):
        writer.commit()
    writer.abort()
    assert not is_complete(tmp_path, task)
    assert not list(tmp_path.rglob("*.tar*"))


def test_samples_out_of_order_are_refused(tmp_path):
    [task] = plan_shards(0, 3, 10)
    writer = ShardWriter(tmp_path, task, manifest_schema(SPECS))
    with EncodePool(SPECS, EncodeOptions(), 0) as pool, pytest.raises(RuntimeError, match="expected 0"):
        writer.add(pool.submit(fake_sample(1, np.random.default_rng(0))).result())
    writer.abort()


def test_writer_thread_surfaces_encoding_errors_and_leaves_no_partial_shard(tmp_path):
    from synthgen.sample.sampler import ShardSink, _Commit, _Start

    [task] = plan_shards(0, 3, 10)
    sink = ShardSink(tmp_path, manifest_schema(SPECS), maxsize=2, on_sample=lambda: None)
    sink.start()
    broken = fake_sample(1, np.random.default_rng(0))
    del broken.arrays["seg"]
    with EncodePool(SPECS, EncodeOptions(), 2) as pool, pytest.raises(KeyError, match="seg"):
        try:
            sink.put(_Start(task))
            for sample in (fake_sample(0, np.random.default_rng(0)), broken, fake_sample(2, np.random.default_rng(0))):
                sink.put(pool.submit(sample))
            sink.put(_Commit())
        finally:
            sink.finish()
    assert not is_complete(tmp_path, task)
    assert not list(tmp_path.rglob("*.tar*"))
