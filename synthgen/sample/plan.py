"""Which sample indices form which shard, and which rank writes it.

A shard covers a fixed, absolute index range [s * shard_size, (s + 1) * shard_size), so
its content never depends on how many processes ran or where a run started; ranks take
whole shards (shard s -> rank s mod world_size), the unit of work and of recovery.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

KEY_DIGITS = 9  # keys are zero-padded indices with no dots: WebDataset splits at the first dot
SHARD_DIGITS = 6

IMAGE_FORMATS = ("png", "webp", "jpeg")
# The file extension written for each image format (WebDataset and HF decode by extension).
IMAGE_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


def sample_key(index: int) -> str:
    return f"{int(index):0{KEY_DIGITS}d}"


def shard_name(shard: int) -> str:
    return f"{int(shard):0{SHARD_DIGITS}d}"


@dataclass(frozen=True)
class SampleConfig:
    """Everything `synthgen sample` needs; the CLI fills it from its options."""

    out_dir: Path
    generator: str | None = None  # checkpoint path; None = the built-in default world
    anchors_dir: str | None = None  # folder of <domain>.safetensors; None = shipped anchors
    domains: tuple[str, ...] = ("rgb",)  # rgb needs no anchor: it is the generator's photo
    n_samples: int = 1000
    start_index: int = 0  # first sample index; a multiple of shard_size (extends a dataset)
    seed: int = 0  # base seed: sample i draws from the stream (seed, i)
    truncation_psi: float = 1.0  # w = w_avg + psi * (w - w_avg); 1 = no truncation
    style_mix_prob: float = 0.0  # chance a sample mixes in a second latent from a random layer
    class_index: int | None = None  # BigGAN-deep class; None for StyleGAN2
    shard_size: int = 1000  # samples per shard
    batch_size: int = 32  # samples per generator pass; does not change the output
    image_format: str = "png"  # for image domains; masks and keypoint maps are always PNG
    quality: int = 95  # webp/jpeg quality
    png_level: int = 1  # zlib level: 1 is the fastest; higher levels trade CPU for smaller files
    workers: int = 4  # encoding threads (PIL and zlib release the GIL)
    dtype: str = "float32"  # compute dtype of generator and regressors
    device: str = "auto"  # "auto" (Accelerate picks), "cpu" (forces CPU even under torchrun), "cuda:N"
    overwrite: bool = False  # delete an existing dataset with a different config
    show_progress: bool = True

    @property
    def stop_index(self) -> int:
        return self.start_index + self.n_samples


@dataclass(frozen=True)
class ShardTask:
    shard: int
    first_index: int
    count: int

    @property
    def name(self) -> str:
        return shard_name(self.shard)

    @property
    def indices(self) -> range:
        return range(self.first_index, self.first_index + self.count)


class PlanError(ValueError):
    """A sample range that cannot be cut into shards; the message says how to fix it."""


def plan_shards(start_index: int, n_samples: int, shard_size: int) -> list[ShardTask]:
    if shard_size < 1:
        raise PlanError(f"shard size must be >= 1, got {shard_size}")
    if n_samples < 1:
        raise PlanError(f"--n must be >= 1, got {n_samples}")
    if start_index < 0 or start_index % shard_size:
        raise PlanError(
            f"--start-index {start_index} is not a multiple of the shard size {shard_size}: "
            "shards cover fixed index ranges, so start at a shard boundary"
        )
    stop = start_index + n_samples
    tasks = []
    for first in range(start_index, stop, shard_size):
        tasks.append(ShardTask(first // shard_size, first, min(shard_size, stop - first)))
    return tasks


def shards_for_rank(tasks: Sequence[ShardTask], rank: int, world_size: int) -> list[ShardTask]:
    return [t for t in tasks if t.shard % world_size == rank]


def batches(indices: range, batch_size: int) -> Iterator[list[int]]:
    """Consecutive batches of a shard's indices, none of a single sample.

    Batches never straddle shards, so a batch is the same whichever rank writes it. A batch
    of one would run matrix-vector kernels whose float rounding differs from the batched
    (matrix-matrix) ones, flipping a rare pixel by one level: a lone last sample joins the
    batch before it, and --batch-size 1 computes pairs.
    """
    size = max(2, batch_size)
    starts = list(range(0, len(indices), size))
    if len(starts) > 1 and len(indices) - starts[-1] == 1:
        starts.pop()
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(indices)
        yield list(indices[start:stop])


# Rough bytes per pixel, from img2dataset's 1M x 256^2 figures (PNG 98 GB, JPEG q95 30 GB,
# WebP q95 24 GB) for photos; masks and line maps are mostly flat and compress ~20x better.
_PHOTO_BYTES_PER_PIXEL = {"png": 1.5, "jpeg": 0.46, "webp": 0.37}
_TAR_BYTES_PER_FILE = 1024  # 512-byte header + average padding


@dataclass
class ByteEstimate:
    per_sample: int
    per_domain: dict[str, int] = field(default_factory=dict)


def estimate_sample_bytes(
    kinds: dict[str, tuple[str, int]], resolution: int, image_format: str
) -> ByteEstimate:
    """kinds: domain -> (kind, channels or points). A planning figure, not a promise."""
    pixels = resolution * resolution
    per_domain = {}
    for name, (kind, size) in kinds.items():
        if kind == "image":
            b = pixels * _PHOTO_BYTES_PER_PIXEL[image_format] * size / 3 + _TAR_BYTES_PER_FILE
        elif kind == "mask":
            b = pixels * 0.08 + _TAR_BYTES_PER_FILE
        else:  # keypoints: a line map PNG and an (N, 2) float32 .npy
            b = pixels * 0.08 + 128 + 8 * size + 2 * _TAR_BYTES_PER_FILE
        per_domain[name] = int(b)
    json_bytes = 400 + _TAR_BYTES_PER_FILE
    return ByteEstimate(sum(per_domain.values()) + json_bytes, per_domain)
