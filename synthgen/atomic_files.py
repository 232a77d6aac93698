"""Temporary names for files written whole and then renamed into place.

The name carries the host and process id, so two writers that end up on the same output
(two processes of a launch that lost its rank, two hosts on shared storage) never write
into or rename each other's half-written file.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def writer_tmp(path: Path) -> Path:
    """`<name>.<host>.<pid>.tmp` beside `path`: private to this process until os.replace."""
    host = socket.gethostname().replace(os.sep, "_") or "host"
    return path.with_name(f"{path.name}.{host}.{os.getpid()}.tmp")
