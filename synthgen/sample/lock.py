"""One `synthgen sample` run at a time per output folder: `<out>/.sample.lock`.

Two runs writing one folder (a second command, or another host on shared storage) would
each take the same shards; the temporary names keep their files apart, but the last one
to rename wins and the card records only one of them. So a run first creates the lock
file with O_CREAT | O_EXCL, which exactly one creator wins on a local disk and on NFS
(v3 and later), and removes it when it ends, normally or on an error.

The lock holds who writes: host, pid (and the process's start time, so a reused pid is
not taken for the dead run), when it started, the command, the world size and every
rank's host and pid, and a random token naming this run.

A lock that is there already is:
- stale when its host is this host and its process is gone (a `kill -9`, a power cut):
  it is taken over with a one-line warning, so rerunning the command still resumes;
- live otherwise; a process on another host cannot be checked from here. The run is
  refused with one line naming the lock, its holder and the fix.

Ranks of one launch (torchrun, accelerate launch) share one lock: rank 0 alone creates
it, then broadcasts its token (or its refusal) over the launch's process group, the one
thing that is common to exactly the ranks of this run. Identifiers from the environment
are not: TORCHELASTIC_RUN_ID is "none" for every multi-node static launch and a
MASTER_ADDR:MASTER_PORT pair is reused by the next launch, so they are only recorded in
the lock for a reader. Every other rank then checks that it sees the lock with that
token (it would not if its --out were not the same shared folder), and all ranks agree
on the outcome before any writes a byte.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from synthgen.errors import UserError

LOCK_NAME = ".sample.lock"
VISIBLE_WAIT_S = 30.0  # how long a rank waits to see rank 0's lock on shared storage (NFS attribute caches)
LAUNCH_ENV = ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")


class LockError(UserError):
    """Another run holds the output folder, or the ranks of this run do not see the same lock."""


def lock_path(out_dir: Path) -> Path:
    return Path(out_dir) / LOCK_NAME


def host_name() -> str:
    return socket.gethostname() or "host"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) on
    return fields[19] if len(fields) > 19 else None  # field 22, starttime


def is_alive(holder: dict) -> bool | None:
    """Whether the lock's process still runs: None when it is on another host (unknowable here)."""
    if holder.get("host") != host_name():
        return None
    pid = int(holder.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    started = holder.get("process_start")
    return started is None or process_start(pid) in (None, started)


def describe(holder: dict) -> str:
    ranks = holder.get("world_size", 1)
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
            + (f", {ranks} ranks" if ranks != 1 else ""))


def parse_holder(text: str | None) -> dict | None:
    try:
        holder = json.loads(text) if text else None
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def read_holder(path: Path) -> dict | None:
    """The lock's content; None when it is gone, empty or unreadable."""
    return parse_holder(read_text(path))


def _write(path: Path, holder: dict, exclusive: bool) -> None:
    data = (json.dumps(holder, indent=1) + "\n").encode()
    if exclusive:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        target = path
    else:  # an update of our own lock: whole, under a private name, then renamed over it
        target = path.with_name(f"{path.name}.{host_name()}.{os.getpid()}.tmp")
        fd = os.open(target, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if target != path:
        os.replace(target, path)


def _take_over(path: Path, stale: str) -> None:
    """Move a stale lock out of the way, unless another process replaced it meanwhile.

    rename() moves whatever is at `path` now: if that is no longer the stale lock (another
    process took it over first and wrote its own), it is put back where it was.
    """
    aside = path.with_name(f"{path.name}.{host_name()}.{os.getpid()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if aside.read_text() != stale:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def refusal(out_dir: Path, path: Path, holder: dict) -> str:
    return (f"{out_dir} is being written by another `synthgen sample` run ({describe(holder)}; lock {path}): "
            f"wait for it to finish, or delete {path} if you are sure no run is writing there")


def acquire(out_dir: Path, world_size: int = 1, command: str = "",
            warn: Callable[[str], None] | None = None) -> dict:
    """Create the lock for this run (taking over a stale one); LockError when another run holds it."""
    out_dir = Path(out_dir)
    path = lock_path(out_dir)
    pid = os.getpid()
    mine = {
        "host": host_name(), "pid": pid, "process_start": process_start(pid),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "token": uuid.uuid4().hex,
        "world_size": world_size, "command": command,
        "launch": {k: os.environ[k] for k in LAUNCH_ENV if k in os.environ},
    }
    for _ in range(5):
        try:
            if not out_dir.is_dir():
                out_dir.mkdir(parents=True)
            _write(path, mine, exclusive=True)
            return mine
        except FileExistsError:
            pass
        except OSError as exc:
            raise LockError(f"cannot create the lock {path} ({exc.strerror or exc}): check that {out_dir} "
                            "is a folder you can write to") from None
        text = read_text(path)
        if text is None and not path.exists():
            continue  # released meanwhile: try again
        holder = parse_holder(text)
        if holder is None:  # a creator between O_EXCL and its write, or a damaged file
            time.sleep(0.5)
            text = read_text(path)
            holder = parse_holder(text)
            if holder is None:
                if not path.exists():
                    continue
                raise LockError(f"{out_dir} has an unreadable lock {path}: delete it if you are sure no "
                                "`synthgen sample` run is writing there")
        if is_alive(holder) is False:
            if warn is not None:
                warn(f"taking over the stale lock {path} of a run that is no longer running ({describe(holder)})")
            _take_over(path, text)
            continue
        raise LockError(refusal(out_dir, path, holder))
    raise LockError(f"{out_dir}: could not take the lock {path}: other runs keep taking it; try again")


def release(out_dir: Path, holder: dict) -> None:
    """Remove the lock if it is still this run's (never another run's that took over meanwhile)."""
    path = lock_path(out_dir)
    current = read_holder(path)
    if current is not None and current.get("token") == holder.get("token"):
        path.unlink(missing_ok=True)


def _wait_for_token(out_dir: Path, token: str) -> str | None:
    """None when this rank sees rank 0's lock; else what it sees instead."""
    path = lock_path(out_dir)
    deadline = time.monotonic() + VISIBLE_WAIT_S
    while True:
        current = read_holder(path)
        if current is not None and current.get("token") == token:
            return None
        if time.monotonic() > deadline:
            seen = "no lock" if current is None else f"the lock of another run ({describe(current)})"
            return (f"rank 0 locked {path} but this rank ({host_name()}, pid {os.getpid()}) sees {seen}: every rank "
                    "must write to the same shared folder; check that --out is on storage all nodes share")
        time.sleep(0.2)


def _collective(state: Any, op: str, obj: Any) -> Any:
    import torch.distributed as dist

    if op == "broadcast":
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    gathered: list[Any] = [None] * state.num_processes
    dist.all_gather_object(gathered, obj)
    return gathered


@contextlib.contextmanager
def hold(out_dir: Path, state: Any, command: str = "", warn: Callable[[str], None] | None = None) -> Iterator[None]:
    """The lock of `out_dir` for this run, shared by all its ranks (`state`: Accelerate's
    PartialState); removed by rank 0 when the block ends, normally or by an exception."""
    out_dir = Path(out_dir)
    world = state.num_processes
    holder, outcome = None, None
    if state.is_main_process:
        try:
            holder = acquire(out_dir, world, command, warn)
            outcome = {"token": holder["token"]}
        except LockError as exc:
            outcome = {"error": str(exc)}
    try:
        if world > 1:
            outcome = _collective(state, "broadcast", outcome)
        if "error" in outcome:
            raise LockError(outcome["error"])
        if world > 1:
            seen = None if state.is_main_process else _wait_for_token(out_dir, outcome["token"])
            reports = _collective(state, "gather", {"host": host_name(), "pid": os.getpid(), "problem": seen})
            problems = [r["problem"] for r in reports if r["problem"]]
            if problems:
                raise LockError(problems[0])
            if holder is not None:  # the lock names every rank of the run
                holder["ranks"] = [[r["host"], r["pid"]] for r in reports]
                _write(lock_path(out_dir), holder, exclusive=False)
        yield
    finally:
        if holder is not None:
            release(out_dir, holder)


def print_warning(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


__all__ = ["LOCK_NAME", "LockError", "acquire", "hold", "lock_path", "print_warning", "release"]
