"""Several processes and hard kills: the shards do not depend on who wrote them or when.

Two ranks are started with `torchrun --nproc_per_node 2` and `--device cpu`, which makes
each process a gloo rank through Accelerate's PartialState(cpu=True) (`accelerate
launch --cpu --num_processes 2` would start only one process).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from sample_world import sample_args, shard_hashes
from synthgen.cli import main

pytestmark = pytest.mark.slow


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_two_ranks_write_the_shards_one_process_writes(world, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    result = CliRunner().invoke(main, sample_args(*world, single, n=50))
    assert result.exit_code == 0, result.output
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthgen.cli", *sample_args(*world, multi, n=50)]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("shards written") == 1  # only rank 0 reports
    assert shard_hashes(multi) == shard_hashes(single) and len(shard_hashes(multi)) == 5
    assert pq.read_table(multi / "manifest.parquet").column("index").to_pylist() == list(range(50))
    verify = CliRunner().invoke(main, ["verify", str(multi)])
    assert verify.exit_code == 0, verify.output
    ranks = [json.loads((multi / "stats" / f"{s:06d}.json").read_text())["rank"] for s in range(5)]
    assert ranks == [0, 1, 0, 1, 0]  # shard s -> rank s mod 2
    assert not (multi / ".sample.lock").exists()  # both ranks shared rank 0's lock; rank 0 removed it


def test_a_folder_locked_by_another_run_is_refused_by_every_rank(world, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    holder = {"host": "gpu-node-7", "pid": 4242, "started": "2026-01-01 00:00:00 +0000", "token": "x", "world_size": 4}
    (out / ".sample.lock").write_text(json.dumps(holder))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthgen.cli", *sample_args(*world, out, n=20)]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    assert (proc.stdout + proc.stderr).count("is being written by another `synthgen sample` run (pid 4242 on host "
                                             "gpu-node-7") == 2, proc.stdout + proc.stderr  # each rank says it once
    assert [p.name for p in out.iterdir()] == [".sample.lock"]  # no card, no shard


def test_dry_run_under_torchrun_shows_both_ranks(world, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthgen.cli", *sample_args(*world, tmp_path / "dry", "--dry-run", n=50)]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ranks        2: rank 0: 3, rank 1: 2") == 1


def test_kill_9_then_rerun_completes_without_duplicates(world, tmp_path):
    out, reference = tmp_path / "killed", tmp_path / "reference"
    args = sample_args(*world, out, n=400)
    proc = subprocess.Popen([sys.executable, "-m", "synthgen.cli", *args], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "stats" / "000003.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "stats").glob("*.json")))
    assert 4 <= done_before < 40, "the run ended before it could be killed mid-way"
    assert CliRunner().invoke(main, ["verify", str(out)]).exit_code == 1  # incomplete until resumed
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Warning: taking over the stale lock" in result.output  # the killed run's, same host, pid gone
    assert f"{40 - done_before} shards written, {done_before} already complete" in result.output
    assert pq.read_table(out / "manifest.parquet").column("index").to_pylist() == list(range(400))
    assert CliRunner().invoke(main, ["verify", str(out)]).exit_code == 0
    assert not list(out.rglob("*.tmp"))
    # The resumed shards are the shards an uninterrupted run writes.
    result = CliRunner().invoke(main, sample_args(*world, reference, n=60))
    assert result.exit_code == 0, result.output
    assert {k: v for k, v in shard_hashes(out).items() if k in shard_hashes(reference)} == shard_hashes(reference)


def test_default_device_auto_under_torchrun_on_cpu(world, tmp_path):
    """The default --device auto on a CPU-only machine must give two real ranks, not two rank 0s."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only launch")
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert CliRunner().invoke(main, sample_args(*world, single, n=40)).exit_code == 0
    args = sample_args(*world, multi, n=40)
    args[args.index("--device") + 1] = "auto"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthgen.cli", *args]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shard_hashes(multi) == shard_hashes(single)
    ranks = [json.loads((multi / "stats" / f"{s:06d}.json").read_text())["rank"] for s in range(4)]
    assert ranks == [0, 1, 0, 1]
    assert not list(multi.rglob("*.tmp"))


def test_temporary_names_are_private_to_each_writer(tmp_path):
    from synthgen.atomic_files import writer_tmp

    name = writer_tmp(tmp_path / "000000.tar").name
    assert name.startswith("000000.tar.") and name.endswith(f".{os.getpid()}.tmp")
