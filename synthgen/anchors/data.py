"""Unpaired domain data for `synthgen fit`: a folder of domain files or WebDataset shards.

Every file is read once when the dataset opens: unreadable files are skipped (with a
count and the first few names), a mask with a class id outside the domain stops
everything with the file and the value (training on it would be silent garbage), and
files are kept decoded in memory up to `preload_bytes` so that reading never slows the
training loop on a CPU; beyond that budget they are decoded again on use.
"""
from __future__ import annotations

import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from synthgen.anchors.codecs import CorruptFileError, Source, extensions, read_file
from synthgen.anchors.spec import DomainSpec
from synthgen.dataset.reader import is_dataset, open_dataset, shard_members
from synthgen.errors import UserError

SHOW_SKIPPED = 5  # names of skipped files to report


class DataFolderError(ValueError, UserError):
    """Training data that cannot be used at all; the message names the path and the fix."""


@dataclass(frozen=True)
class DomainItem:
    name: str  # a path, or "<shard.tar>:<member>" inside a shard
    path: Path
    offset: int | None = None  # byte offset of a shard member's data; None for a plain file
    length: int | None = None

    def source(self) -> Source:
        if self.offset is None:
            return self.path
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return (self.name, f.read(self.length))


def list_items(spec: DomainSpec, data: str | Path, field: str | None = None) -> list[DomainItem]:
    """Domain files under `data` (recursively, sorted), or members `<key>.<field>` of shards:
    one .tar, a dataset folder's complete shards, or every .tar under `data`."""
    root = Path(data)
    if not root.exists():
        raise DataFolderError(f"data path {root} does not exist; pass a folder of {spec.name} files or .tar shards")
    if field is not None:
        if root.is_file():
            shards = [root]
        else:
            shards = open_dataset(root).complete_shards() if is_dataset(root) else sorted(root.rglob("*.tar"))
        if not shards:
            raise DataFolderError(f"no .tar shards in {root}; pass WebDataset shards, or drop --field for a plain folder")
        return [it for shard in shards for it in _shard_members(shard, field)]
    if root.is_file():
        raise DataFolderError(f"{root} is a file; pass the folder that holds the {spec.name} files")
    exts = extensions(spec)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    return [DomainItem(str(p), p) for p in files]


def _shard_members(shard: Path, field: str) -> list[DomainItem]:
    try:
        members = shard_members(shard)
    except (tarfile.TarError, OSError) as exc:
        raise DataFolderError(f"{shard}: not a readable tar shard ({exc})") from None
    return [DomainItem(f"{shard}:{m.name}", shard, m.offset, m.size) for m in members if m.field == field]


class DomainDataset(Dataset):
    """Compact domain arrays (see synthgen.anchors.codecs) of every readable file under `data`."""

    def __init__(
        self, spec: DomainSpec, data: str | Path, size: int, field: str | None = None,
        points_frame: int | None = None, preload_bytes: int = 1 << 30, num_threads: int = 2,
    ):
        self.spec, self.size, self.points_frame = spec, size, points_frame
        items = list_items(spec, data, field)
        if not items:
            what = f"members '*.{field}'" if field else f"files with extensions {', '.join(extensions(spec))}"
            raise DataFolderError(f"no {spec.name} {what} found under {data}")
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            decoded = list(pool.map(self._try_read, items))
        self.skipped = [it.name for it, arr in zip(items, decoded) if arr is None]
        kept = [(it, arr) for it, arr in zip(items, decoded) if arr is not None]
        if not kept:
            raise DataFolderError(f"none of the {len(items)} files under {data} could be read; "
                                  f"first: {', '.join(self.skipped[:SHOW_SKIPPED])}")
        self.items = [it for it, _ in kept]
        budget = preload_bytes
        self._cache: list[np.ndarray | None] = []
        for _, arr in kept:
            keep = arr.nbytes <= budget
            budget -= arr.nbytes if keep else 0
            self._cache.append(arr if keep else None)

    def _try_read(self, item: DomainItem) -> np.ndarray | None:
        try:
            return read_file(self.spec, item.source(), self.size, self.points_frame)
        except (CorruptFileError, OSError):
            return None

    @property
    def fully_preloaded(self) -> bool:
        return all(a is not None for a in self._cache)

    def skipped_report(self) -> str:
        if not self.skipped:
            return ""
        first = ", ".join(Path(n).name for n in self.skipped[:SHOW_SKIPPED])
        more = f" and {len(self.skipped) - SHOW_SKIPPED} more" if len(self.skipped) > SHOW_SKIPPED else ""
        return f"skipped {len(self.skipped)} unreadable file(s): {first}{more}"

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        arr = self._cache[i]
        if arr is None:
            arr = read_file(self.spec, self.items[i].source(), self.size, self.points_frame)
        return torch.from_numpy(np.ascontiguousarray(arr))


def step_batch_indices(step: int, batch_size: int, n: int, seed: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Dataset indices of one rank's batch at `step`: a pure function of its arguments.

    The stream is a sequence of seeded per-epoch permutations, so a run resumed at step k
    sees exactly the batches an uninterrupted run would, and ranks read disjoint slices.
    """
    start = (step * world_size + rank) * batch_size
    out = []
    for pos in range(start, start + batch_size):
        epoch, offset = divmod(pos, n)
        out.append(int(_epoch_permutation(seed, epoch, n)[offset]))
    return out


_PERM_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    key = (seed, epoch, n)
    if key not in _PERM_CACHE:
        if len(_PERM_CACHE) > 4:
            _PERM_CACHE.clear()
        _PERM_CACHE[key] = np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)
    return _PERM_CACHE[key]


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches for steps start_step .. end_step - 1 (see step_batch_indices)."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, end_step: int, rank: int = 0, world_size: int = 1):
        self.args = (n, batch_size, seed, start_step, end_step, rank, world_size)

    def __iter__(self):
        n, b, seed, start, end, rank, world = self.args
        for step in range(start, end):
            yield step_batch_indices(step, b, n, seed, rank, world)

    def __len__(self) -> int:
        return max(0, self.args[4] - self.args[3])
