"""`synthgen sample --compute-procs`: blocks computed on one thread each, side by side in lane
processes (synthgen/sample/compute_lanes.py), give the same shards as one lane in-process."""
from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from sample_world import sample_args, shard_hashes
from synthgen.cli import main
from synthgen.sample import compute_lanes
from synthgen.sample.compute_lanes import ComputeLaneError, auto_lanes


def run(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_lanes_and_thread_counts_do_not_change_bytes(world, tmp_path, monkeypatch, start):
    if start not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start} here")
    monkeypatch.setattr(compute_lanes, "LANE_START", start)
    from synthgen.sample import sampler

    seen = []

    def counted(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return compute_block(*args, **kwargs)

    compute_block = sampler.compute_block
    one = tmp_path / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's threads: the blocks still run on one
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sampler, "compute_block", counted)
            run(sample_args(*world, one, "--compute-procs", "1"))
        assert torch.get_num_threads() == 2  # restored after sampling
    finally:
        torch.set_num_threads(threads)
    assert seen and set(seen) == {1}
    two = tmp_path / "two"
    run(sample_args(*world, two, "--compute-procs", "2"))
    assert shard_hashes(two) == shard_hashes(one)
    assert len(shard_hashes(one)) == 3


def test_auto_lanes_follow_threads_and_memory():
    assert auto_lanes(64, threads=4, available=64 << 30) == 4
    assert auto_lanes(64, threads=16, available=4 << 30) == 3  # about 1.2 GB per lane at 64 px
    assert auto_lanes(1024, threads=16, available=24 << 30) == 2  # a 1024-px block's maps are GBs
    assert auto_lanes(64, threads=8, available=1 << 28) == 1  # never fewer than one
    assert auto_lanes(64, threads=1, available=None) == 1


def test_a_lane_that_dies_is_one_clear_error(world, tmp_path):
    from synthgen.sample.plan import SampleConfig
    from synthgen.sample.sampler import open_lanes, prepare

    gen, anchors = world
    cfg = SampleConfig(out_dir=tmp_path / "out", generator=str(gen), anchors_dir=str(anchors),
                       domains=("rgb", "seg"), n_samples=400, shard_size=400, device="cpu", show_progress=False)
    prep = prepare(cfg, "test")
    with open_lanes(cfg, prep, procs=2) as lanes:
        blocks = lanes.run(range(400), shard=0)
        assert [s.index for s in next(blocks)] == list(range(8))
        for pid in list(lanes._executor._processes):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ComputeLaneError, match=r"compute process died while computing shard 0.*"
                                                   r"rerun the same command.*--compute-procs lower than 2"):
            for _ in blocks:
                pass


def test_a_spawned_lane_that_cannot_load_the_world_says_why(world, tmp_path, monkeypatch):
    monkeypatch.setattr(compute_lanes, "LANE_START", "spawn")  # forked lanes inherit the loaded models
    from synthgen.anchors.anchor import load_anchor, save_anchor
    from synthgen.sample.plan import SampleConfig
    from synthgen.sample.sampler import open_lanes, prepare

    gen, anchors = world
    copy = tmp_path / "anchors"
    copy.mkdir()
    (copy / "seg.safetensors").write_bytes((Path(anchors) / "seg.safetensors").read_bytes())
    cfg = SampleConfig(out_dir=tmp_path / "out", generator=str(gen), anchors_dir=str(copy),
                       domains=("rgb", "seg"), n_samples=16, shard_size=16, device="cpu", show_progress=False)
    prep = prepare(cfg, "test")
    changed = load_anchor(copy / "seg.safetensors")  # still a valid seg anchor, other weights
    with torch.no_grad():
        next(changed.regressor.parameters()).add_(1.0)
    save_anchor(changed, copy / "seg.safetensors")
    with pytest.raises(ComputeLaneError, match="the seg file changed on disk after sampling started: rerun"):
        with open_lanes(cfg, prep, procs=2):
            pass


def test_dry_run_names_the_lanes(world, tmp_path):
    result = run(sample_args(*world, tmp_path / "dry", "--dry-run", "--compute-procs", "3"))
    assert "compute      3 lane processes, one thread each (CPU)" in result.output
    assert not (tmp_path / "dry").exists()
