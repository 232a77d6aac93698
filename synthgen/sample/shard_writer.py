"""One shard on disk: a byte-reproducible tar, its Parquet manifest, and its stats file.

Everything is written under a temporary name and renamed when complete, in the order
tar -> manifest -> stats. The stats file is the completion marker (img2dataset's rule):
a shard that is not complete by its rule (synthgen.dataset.layout.is_complete) is redone by
the next run, whatever else of it exists.

Reproducible tars: members in sorted order (keys ascending, fields by name), fixed
mtime, owner and mode, so the same samples give the same bytes and the same sha256.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthgen.atomic_files import atomic_write, replace_synced, writer_tmp
from synthgen.dataset.layout import ShardStats, ShardTask, shard_paths
from synthgen.dataset.manifest import rows_to_table, write_parquet_atomic
from synthgen.sample.encode import EncodedSample

TAR_MTIME = 0  # fixed member timestamp: a tar's bytes depend on its content only
TAR_MODE = 0o444


class _HashingFile:
    """A write-only file that also hashes and counts what passes through it."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.discard = False  # set by abort: the tar stream's final flush goes nowhere

    def write(self, data: bytes) -> int:
        if self.discard:
            return len(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return self._f.write(data)


class ShardWriter:
    """Streams one shard's samples (in index order) into a temporary tar, then commits."""

    def __init__(self, out_dir: Path, task: ShardTask, schema: pa.Schema, rank: int = 0):
        self.task = task
        self.rank = rank
        self.schema = schema
        self.paths = shard_paths(out_dir, task.name)
        for p in self.paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
            # The shard is this writer's now: a killed writer's leftovers of it go.
            for stale in p.parent.glob(f"{p.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        self._tmp_tar = writer_tmp(self.paths["tar"])
        self._file = open(self._tmp_tar, "wb")
        self._hashing = _HashingFile(self._file)
        self._tar = tarfile.open(fileobj=self._hashing, mode="w|", format=tarfile.USTAR_FORMAT)
        self._rows: list[dict[str, Any]] = []
        self._next_index = task.first_index
        self._started = time.perf_counter()

    def add(self, sample: EncodedSample) -> None:
        if sample.index != self._next_index:
            raise RuntimeError(f"shard {self.task.name}: got sample {sample.index}, expected {self._next_index}")
        self._next_index += 1
        for field in sorted(sample.fields):
            data = sample.fields[field]
            info = tarfile.TarInfo(f"{sample.key}.{field}")
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = TAR_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
        self._rows.append(sample.row)

    def commit(self) -> ShardStats:
        if self._next_index != self.task.first_index + self.task.count:
            raise RuntimeError(f"shard {self.task.name} is missing samples: stopped at {self._next_index}")
        self._tar.close()
        self._file.close()
        replace_synced(self._tmp_tar, self.paths["tar"])
        write_parquet_atomic(rows_to_table(self._rows, self.schema), self.paths["manifest"])
        stats = ShardStats(
            shard=self.task.shard,
            first_index=self.task.first_index,
            count=self.task.count,
            bytes=self._hashing.bytes,
            sha256=self._hashing.sha256.hexdigest(),
            seconds=round(time.perf_counter() - self._started, 3),
            rank=self.rank,
        )
        with atomic_write(self.paths["stats"]) as tmp:
            tmp.write_text(json.dumps(asdict(stats), indent=1) + "\n")
        return stats

    def abort(self) -> None:
        self._hashing.discard = True
        try:
            self._tar.close()
            self._file.close()
        finally:
            self._tmp_tar.unlink(missing_ok=True)
