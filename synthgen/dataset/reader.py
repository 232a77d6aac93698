"""Reading a dataset folder, driven by its card: the one reader of the shards.

Every consumer reads through here: the training pipeline (synthgen.dataset.webdataset), the
evaluation pairs, fit's `--field` shards (synthgen.anchors.data), `synthgen preview` and
`synthgen verify`. A folder with a card (dataset.json) is a dataset: its shards are the
ones its index ranges cover, and only the complete ones (layout.is_complete) are read.
Inside a shard WebDataset's rule holds: a member's name splits into key and field at the
first dot, and the members of one key are contiguous.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator

from synthgen.dataset.card import CARD_NAME, CardError, expected_tasks, read_card
from synthgen.dataset.layout import ShardTask, is_complete, shard_paths
from synthgen.errors import UserError

WRITTEN_BY_SAMPLE = "pass a folder written by `synthgen sample`"


class ShardReaderError(UserError):
    """Shards that cannot be read as asked; the message says what to change."""


class NotADatasetError(ShardReaderError):
    """The folder has no readable dataset.json (it was not written by `synthgen sample`), or no sample to show."""


@dataclass(frozen=True)
class DatasetFolder:
    """A folder `synthgen sample` wrote, as its card describes it."""

    root: Path
    card: dict[str, Any]

    @property
    def specs(self) -> dict[str, dict[str, Any]]:
        """domain -> kind, fields and what else a reader needs of it (card.spec_summary)."""
        return self.card["config"]["domain_specs"]

    @property
    def domains(self) -> list[str]:
        return list(self.card["config"]["domains"])

    def shards(self) -> list[ShardTask]:
        """Every shard the card lists, complete or not, in shard order."""
        return expected_tasks(self.card)

    def complete_shards(self) -> list[Path]:
        """The tars of the complete shards, in shard order."""
        return [shard_paths(self.root, t.name)["tar"] for t in self.shards() if is_complete(self.root, t)]


def is_dataset(folder: str | Path) -> bool:
    return (Path(folder) / CARD_NAME).is_file()


def open_dataset(folder: str | Path, fix: str = WRITTEN_BY_SAMPLE) -> DatasetFolder:
    """The dataset in `folder`; NotADatasetError (ending with `fix`) where it has no card,
    or a damaged one, or where there is no such folder."""
    if not Path(folder).is_dir():
        raise NotADatasetError(f"{folder} {'is a file' if Path(folder).exists() else 'does not exist'}: {fix}")
    try:
        card = read_card(Path(folder))
    except CardError as exc:
        raise NotADatasetError(str(exc)) from None
    if card is None:
        raise NotADatasetError(f"{folder} has no {CARD_NAME}: {fix}")
    return DatasetFolder(Path(folder), card)


def find_shards(source: str | Path) -> list[Path]:
    """The tars at `source`: the file itself if it is a .tar; a dataset folder's complete
    shards; else every tar of DIR/shards/, or else of DIR/ (shards from elsewhere)."""
    source = Path(source)
    if source.is_file() and source.suffix == ".tar":
        return [source]
    if is_dataset(source):
        return open_dataset(source).complete_shards()
    for folder in (source / "shards", source):
        tars = sorted(folder.glob("*.tar")) if folder.is_dir() else []
        if tars:
            return tars
    return []


def split_name(name: str) -> tuple[str, str]:
    """A member name -> (key, field), split at the first dot (WebDataset's rule)."""
    key, _, field = name.partition(".")
    return key, field


@dataclass(frozen=True)
class Member:
    """One file of a shard: its name, key and field, and where its bytes lie in the tar."""

    name: str
    key: str
    field: str
    offset: int
    size: int


def check_whole(tar: tarfile.TarFile, tar_path: str | Path) -> None:
    """tarfile.ReadError for a tar cut short, which tarfile itself reads to the cut and then
    ends as if the archive ended there: every tar ends with two zero blocks after its last
    member (tarfile, GNU tar and bsdtar all write them), so one whose last member or end
    blocks lie beyond the file's end lost its tail (an interrupted copy, a full disk)."""
    if tar.offset + 2 * tarfile.BLOCKSIZE > Path(tar_path).stat().st_size:
        raise tarfile.ReadError("unexpected end of data: the tar is cut short")


def shard_members(tar_path: str | Path) -> list[Member]:
    """Every file of a shard in tar order; names and places only, no data is read.
    tarfile.ReadError when the tar is cut short (check_whole)."""
    with tarfile.open(tar_path) as tar:
        members = [Member(m.name, *split_name(m.name), m.offset_data, m.size) for m in tar if m.isfile()]
        check_whole(tar, tar_path)
    return members


def iter_samples(tar_path: str | Path, fields: Collection[str] | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) of each sample of a shard, in tar order, holding the bytes of
    the asked `fields` it has (None: all of its fields). tarfile.ReadError when the tar is
    cut short (check_whole), before its last, perhaps incomplete, sample."""
    key, sample = None, {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            k, field = split_name(member.name)
            if k != key:
                if key is not None:
                    yield key, sample
                key, sample = k, {}
            if fields is None or field in fields:
                sample[field] = tar.extractfile(member).read()
        check_whole(tar, tar_path)
    if key is not None:
        yield key, sample
