import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from _anchor_data import write_keypoints, write_masks
from synthgen.anchors.codecs import MaskRangeError
from synthgen.anchors.data import DataFolderError, DomainDataset, StepBatchSampler, step_batch_indices
from synthgen.anchors.spec import load_domain_spec

SEG = load_domain_spec("seg")


def test_folder_is_read_recursively_and_preloaded(tmp_path):
    write_masks(tmp_path / "a", n=3)
    write_masks(tmp_path / "a" / "deeper", n=2, seed=1)
    (tmp_path / "a" / "notes.md").write_text("not a mask")
    ds = DomainDataset(SEG, tmp_path / "a", 16)
    assert len(ds) == 5 and ds.fully_preloaded and ds.skipped == []
    assert ds[0].shape == (16, 16)


def test_corrupt_files_are_skipped_and_reported(tmp_path):
    write_masks(tmp_path, n=3)
    for i in range(7):
        (tmp_path / f"broken_{i}.png").write_bytes(b"garbage")
    ds = DomainDataset(SEG, tmp_path, 16)
    assert len(ds) == 3 and len(ds.skipped) == 7
    report = ds.skipped_report()
    assert report.startswith("skipped 7 unreadable file(s): broken_0.png") and "and 2 more" in report


def test_out_of_range_mask_stops_with_file_and_value(tmp_path):
    write_masks(tmp_path, n=2)
    bad = np.zeros((8, 8), np.uint8)
    bad[1, 1] = 40
    Image.fromarray(bad, mode="L").save(tmp_path / "zz_bad.png")
    with pytest.raises(MaskRangeError, match=r"zz_bad\.png: class id 40"):
        DomainDataset(SEG, tmp_path, 16)


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataFolderError, match="does not exist"):
        DomainDataset(SEG, tmp_path / "nope", 16)
    with pytest.raises(DataFolderError, match="no seg files"):
        DomainDataset(SEG, tmp_path, 16)


def test_files_beyond_the_memory_budget_are_read_on_use(tmp_path):
    write_masks(tmp_path, n=4)
    full = DomainDataset(SEG, tmp_path, 16)
    lazy = DomainDataset(SEG, tmp_path, 16, preload_bytes=16 * 16 * 2)
    assert not lazy.fully_preloaded
    assert all(np.array_equal(full[i], lazy[i]) for i in range(4))


def test_webdataset_shard_field(tmp_path):
    write_masks(tmp_path / "m", n=3)
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for i, p in enumerate(sorted((tmp_path / "m").iterdir())):
            for field, data in (("seg.png", p.read_bytes()), ("json", b"{}")):
                info = tarfile.TarInfo(f"{i:09d}.{field}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    ds = DomainDataset(SEG, tmp_path / "s.tar", 16, field="seg.png")
    plain = DomainDataset(SEG, tmp_path / "m", 16)
    assert len(ds) == 3 and all(np.array_equal(ds[i], plain[i]) for i in range(3))


def test_keypoint_folder(tmp_path):
    write_keypoints(tmp_path, n=2, num_points=68)
    ds = DomainDataset(load_domain_spec("landmark"), tmp_path, 64, points_frame=32)
    assert ds[0].shape == (68, 2)


def test_batches_depend_only_on_seed_and_step():
    a = [step_batch_indices(s, 4, 10, seed=3) for s in range(8)]
    assert a == list(StepBatchSampler(10, 4, 3, 0, 8))
    assert list(StepBatchSampler(10, 4, 3, 5, 8)) == a[5:]  # a resumed run sees the same batches
    epoch0 = sorted(i for b in a[:2] for i in b) + sorted(a[2][:2])
    assert sorted(epoch0) == list(range(10))  # each epoch is a permutation
    ranks = [step_batch_indices(0, 2, 100, seed=0, rank=r, world_size=2) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1])
