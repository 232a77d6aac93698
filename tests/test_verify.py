"""`synthgen verify` finds missing and corrupt shards and exits nonzero."""
from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner

from sample_world import make_world, sample_args
from synthgen.cli import main
from synthgen.dataset.verify import verify_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    torch.set_num_threads(1)
    world = make_world(tmp_path_factory.mktemp("world"))
    out = tmp_path_factory.mktemp("ds") / "out"
    result = CliRunner().invoke(main, sample_args(*world, out, domains="rgb,seg", n=30))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    return shutil.copytree(dataset, tmp_path / "copy")


def test_clean_dataset_passes(dataset):
    result = CliRunner().invoke(main, ["verify", str(dataset)])
    assert result.exit_code == 0 and "3 shards: 3 ok, 0 missing, 0 corrupt" in result.output


def test_flipped_byte_is_corrupt(copy):
    tar = copy / "shards" / "000001.tar"
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1
    assert "000001: corrupt: tar sha256 differs from its stats" in result.output


def test_missing_stats_is_missing_and_merged_manifest_checked(copy):
    (copy / "stats" / "000002.json").unlink()
    (copy / "manifest.parquet").unlink()
    report = verify_dataset(copy)
    assert not report.ok
    assert [s.status for s in report.shards] == ["ok", "ok", "missing"]
    assert report.merged_problems == ["missing (written when every shard is complete)"]


def test_manifest_that_disagrees_with_its_shard_is_corrupt(copy):
    shutil.copy(copy / "manifests" / "000000.parquet", copy / "manifests" / "000001.parquet")
    report = verify_dataset(copy)
    assert [s.status for s in report.shards] == ["ok", "corrupt", "ok"]
    assert "manifest keys differ" in report.shards[1].problems[0]


def test_not_a_dataset_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert result.exit_code == 1 and "no dataset.json" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Usage:" not in result.output
