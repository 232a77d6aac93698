"""Files written whole under a temporary name, synced, and renamed into place.

A reader (or a resumed run) sees the old file or the new one, never half of one: a kill
mid-write leaves at most a temporary file beside it. The temporary name carries the host
and process id, so two writers that end up on the same output (two processes of a launch
that lost its rank, two hosts on shared storage) never write into or rename each other's
half-written file.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# The process's umask, read once at import (reading it means setting it for an instant).
_UMASK = os.umask(0)
os.umask(_UMASK)


def writer_tmp(path: Path) -> Path:
    """`<name>.<host>.<pid>.tmp` beside `path`: private to this process until os.replace."""
    host = socket.gethostname().replace(os.sep, "_") or "host"
    return path.with_name(f"{path.name}.{host}.{os.getpid()}.tmp")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield the temporary path to write `path` under; when the block ends, sync it to disk and
    rename it to `path`. When the block raises, the temporary file is removed and `path` is untouched."""
    path = Path(path)
    tmp = writer_tmp(path)
    try:
        yield tmp
        replace_synced(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_synced(tmp: Path, path: Path) -> None:
    """Sync the closed file `tmp` to disk, then rename it to `path` with the permissions a plain
    open() would give it (some writers, safetensors among them, create files readable by their
    owner only, which hides a dataset or an anchor from the rest of a team on shared storage)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
        os.fchmod(f.fileno(), 0o666 & ~_UMASK)
    os.replace(tmp, path)
