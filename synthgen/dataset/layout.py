"""Where each part of a dataset folder lies and what it is called.

  DIR/dataset.json              the card: what made the dataset and how to read it (card.py)
  DIR/shards/NNNNNN.tar         WebDataset members `<key>.<field>`, one key per sample
  DIR/manifests/NNNNNN.parquet  one row per sample of that shard (manifest.py)
  DIR/manifest.parquet          every shard's rows, merged when all are complete
  DIR/stats/NNNNNN.json         the shard's completion marker: its index range, bytes, sha256

Keys are sample indices zero-padded to KEY_DIGITS digits, with no dots: WebDataset splits a
member name into key and field at the first dot. Shard s covers the fixed index range
[s * shard_size, (s + 1) * shard_size), whoever writes it. Each domain writes the fields
of its kind (`domain_fields`), and every sample one `json` field (its provenance).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

KEY_DIGITS = 9  # keys are zero-padded indices with no dots: WebDataset splits at the first dot
SHARD_DIGITS = 6

IMAGE_FORMATS = ("png", "webp", "jpeg")
# The file extension written for each image format (WebDataset and HF decode by extension).
IMAGE_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
POINTS_EXTENSION = "npy"  # a keypoints domain's (N, 2) float32 points; its drawn map is a PNG
META_FIELD = "json"  # every sample's provenance
MERGED_MANIFEST = "manifest.parquet"


def sample_key(index: int) -> str:
    return f"{int(index):0{KEY_DIGITS}d}"


def shard_name(shard: int) -> str:
    return f"{int(shard):0{SHARD_DIGITS}d}"


def domain_fields(spec, image_format: str) -> list[str]:
    """The field names a domain writes; readers and verify expect exactly these."""
    if spec.kind == "image":
        return [f"{spec.name}.{IMAGE_EXTENSIONS[image_format]}"]
    if spec.kind == "mask":
        return [f"{spec.name}.png"]
    if spec.kind == "keypoints":
        return [f"{spec.name}.{POINTS_EXTENSION}", f"{spec.name}.png"]
    raise ValueError(f"domain {spec.name!r} has unknown kind {spec.kind!r}")


def points_field(fields: Sequence[str]) -> str:
    """Of a keypoints domain's fields (as domain_fields or the card lists them), the points."""
    return next(f for f in fields if f.endswith(f".{POINTS_EXTENSION}"))


def picture_field(fields: Sequence[str]) -> str:
    """Of a domain's fields, the picture: the image, the mask or the drawn keypoint map."""
    return next(f for f in fields if not f.endswith(f".{POINTS_EXTENSION}"))


@dataclass(frozen=True)
class ShardTask:
    """Shard `shard` and the sample indices it holds."""

    shard: int
    first_index: int
    count: int

    @property
    def name(self) -> str:
        return shard_name(self.shard)

    @property
    def indices(self) -> range:
        return range(self.first_index, self.first_index + self.count)


def shard_tasks(start_index: int, stop_index: int, shard_size: int) -> list[ShardTask]:
    """The shards holding indices [start_index, stop_index), start_index a shard boundary;
    the last one is cut short where stop_index falls inside it."""
    return [ShardTask(first // shard_size, first, min(shard_size, stop_index - first))
            for first in range(start_index, stop_index, shard_size)]


def shard_paths(out_dir: Path, shard_name: str) -> dict[str, Path]:
    return {
        "tar": out_dir / "shards" / f"{shard_name}.tar",
        "manifest": out_dir / "manifests" / f"{shard_name}.parquet",
        "stats": out_dir / "stats" / f"{shard_name}.json",
    }


@dataclass
class ShardStats:
    shard: int
    first_index: int
    count: int
    bytes: int
    sha256: str
    seconds: float
    rank: int = 0  # the process that wrote it


def read_stats(path: Path) -> ShardStats | None:
    try:
        return ShardStats(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_complete(out_dir: Path, task: ShardTask) -> bool:
    """The one rule for a finished shard, for its writer and every reader alike: its stats
    file (written last) reads and covers exactly this task's index range, its tar holds the
    bytes the stats count, and its manifest exists. Cheap: two stats and one small read;
    `synthgen verify` checks the content too."""
    paths = shard_paths(out_dir, task.name)
    stats = read_stats(paths["stats"])
    if stats is None or (stats.first_index, stats.count) != (task.first_index, task.count):
        return False
    try:
        return paths["tar"].stat().st_size == stats.bytes and paths["manifest"].exists()
    except OSError:
        return False
