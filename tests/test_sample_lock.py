"""One `synthgen sample` run per output folder: `<out>/.sample.lock` (synthgen/sample/lock.py)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sample_world import sample_args
from synthgen.cli import main
from synthgen.sample import lock
from synthgen.sample.lock import LOCK_NAME, LockError


@pytest.fixture(scope="module")
def dataset(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    result = CliRunner().invoke(main, sample_args(*world, out, domains="rgb,seg", n=20))
    assert result.exit_code == 0, result.output
    return out


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def plant_lock(out: Path, **fields) -> Path:
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-01-01 00:00:00 +0000",
              "token": "someone-else", "world_size": 1, **fields}
    path = out / LOCK_NAME
    path.write_text(json.dumps(holder))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_finished_run_leaves_no_lock(dataset):
    assert not (dataset / LOCK_NAME).exists()


def test_a_live_lock_on_another_host_is_refused_and_nothing_changes(dataset, world, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    path = plant_lock(out, host="gpu-node-7", pid=4242, world_size=8)
    before = file_bytes(out)
    result = CliRunner().invoke(main, sample_args(*world, out, domains="rgb,seg", n=40))  # would extend it
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    line = result.output.strip()
    assert str(path) in line and "pid 4242 on host gpu-node-7" in line and "8 ranks" in line
    assert "wait for it to finish" in line and f"delete {path}" in line
    assert file_bytes(out) == before  # the card, every shard, the lock itself


def test_a_stale_lock_of_this_host_is_taken_over_with_a_warning(dataset, world, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    plant_lock(out, pid=dead_pid())
    result = CliRunner().invoke(main, sample_args(*world, out, domains="rgb,seg", n=30))
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in result.output.splitlines() if ln.startswith("Warning:")]
    assert len(warnings) == 1 and "taking over the stale lock" in warnings[0] and "no longer running" in warnings[0]
    assert "1 shards written, 2 already complete" in result.output
    assert not (out / LOCK_NAME).exists()


def test_a_reused_pid_is_not_the_dead_run(tmp_path):
    """The lock's process start time tells a live pid that was reused from the run that held it."""
    if lock.process_start(os.getpid()) is None:
        pytest.skip("needs /proc")
    plant_lock(tmp_path, pid=os.getpid(), process_start="1")  # our pid, but not our start time
    holder = lock.acquire(tmp_path)
    assert holder["pid"] == os.getpid() and json.loads((tmp_path / LOCK_NAME).read_text())["token"] == holder["token"]


def test_the_lock_goes_on_error_and_is_only_ever_removed_by_its_run(world, tmp_path, monkeypatch):
    from synthgen.sample import sampler

    def broken(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(sampler, "compute_block", broken)
    result = CliRunner().invoke(main, sample_args(*world, tmp_path / "out", domains="rgb", n=10))
    assert isinstance(result.exception, RuntimeError)
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    mine = lock.acquire(tmp_path)
    (tmp_path / LOCK_NAME).unlink()
    theirs = plant_lock(tmp_path, host="elsewhere")  # another run took the folder meanwhile
    lock.release(tmp_path, mine)
    assert theirs.exists()


def test_a_second_command_on_the_same_folder_is_refused_while_the_first_runs(world, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "synthgen.cli", *sample_args(*world, out, domains="rgb", n=4000)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "stats" / "000000.json").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second could start"
        stats = sorted(p.name for p in (out / "stats").glob("*.json"))
        card = (out / "dataset.json").read_bytes()
        result = CliRunner().invoke(main, sample_args(*world, out, domains="rgb", n=4000))
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert f"pid {first.pid} on host {socket.gethostname()}" in result.output and LOCK_NAME in result.output
        assert (out / "dataset.json").read_bytes() == card
        assert set(stats) <= {p.name for p in (out / "stats").glob("*.json")}  # the first run carries on
    finally:
        first.kill()
        first.wait()


class FakeState:
    def __init__(self, rank: int, world: int = 2):
        self.process_index, self.num_processes, self.is_main_process = rank, world, rank == 0


def test_ranks_share_rank_0s_lock_and_a_rank_that_cannot_see_it_stops_all(tmp_path, monkeypatch):
    """The agreement between ranks, with the process group's collectives played by hand."""
    broadcast = {}

    def rank0_collective(state, op, obj):
        if op == "broadcast":
            broadcast.update(obj)
            return obj
        return [{"host": "a", "pid": 1, "problem": None}, {"host": "b", "pid": 2, "problem": None}]

    monkeypatch.setattr(lock, "_collective", rank0_collective)
    with lock.hold(tmp_path, FakeState(0), "synthgen sample ..."):
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["world_size"] == 2 and held["ranks"] == [["a", 1], ["b", 2]]
        assert held["token"] == broadcast["token"]
        # rank 1 on the same (shared) folder sees rank 0's token
        monkeypatch.setattr(lock, "_collective", lambda s, op, obj: broadcast if op == "broadcast"
                            else [{"problem": None, "host": "a", "pid": 1}, obj])
        with lock.hold(tmp_path, FakeState(1)):
            pass
        assert (tmp_path / LOCK_NAME).exists()  # only rank 0 removes it
    assert not (tmp_path / LOCK_NAME).exists()
    # a rank whose --out is not the folder rank 0 locked (no shared storage) stops every rank
    monkeypatch.setattr(lock, "VISIBLE_WAIT_S", 0.0)
    monkeypatch.setattr(lock, "_collective", lambda s, op, obj: {"token": "abc"} if op == "broadcast"
                        else [{"problem": None, "host": "a", "pid": 1}, obj])
    with pytest.raises(LockError, match="same shared folder"):
        with lock.hold(tmp_path, FakeState(1)):
            pass
    # rank 0's refusal reaches every rank
    monkeypatch.setattr(lock, "_collective", lambda s, op, obj: {"error": "held by pid 9"})
    with pytest.raises(LockError, match="held by pid 9"):
        with lock.hold(tmp_path, FakeState(1)):
            pass
