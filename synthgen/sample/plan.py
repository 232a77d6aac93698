"""Which shards a run writes, and which rank writes each.

A shard covers a fixed, absolute index range [s * shard_size, (s + 1) * shard_size)
(synthgen.dataset.layout), so its content never depends on how many processes ran or where
a run started; ranks take whole shards (shard s -> rank s mod world_size), the unit of work
and of recovery.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from synthgen.dataset.layout import ShardTask, shard_tasks
from synthgen.devices import available_cpus
from synthgen.errors import UserError


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
    batch_size: int = 32  # samples moved per step (rounded to COMPUTE_BLOCK); does not change the output
    image_format: str = "png"  # for image domains; masks and keypoint maps are always PNG
    quality: int = 95  # webp/jpeg quality
    png_level: int = 1  # zlib level: 1 is the fastest; higher levels trade CPU for smaller files
    workers: int = field(default_factory=lambda: min(8, available_cpus()))  # encoding threads (PIL and zlib release the GIL)
    compute_procs: int | None = None  # CPU: processes computing blocks side by side, one thread each; None = auto
    dtype: str = "float32"  # compute dtype of generator and regressors
    device: str = "auto"  # "auto" (Accelerate picks), "cpu" (forces CPU even under torchrun), "cuda:N"
    overwrite: bool = False  # delete an existing dataset with a different config
    show_progress: bool = True

    @property
    def stop_index(self) -> int:
        return self.start_index + self.n_samples


class PlanError(ValueError, UserError):
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
    return shard_tasks(start_index, start_index + n_samples, shard_size)


def shards_for_rank(tasks: Sequence[ShardTask], rank: int, world_size: int) -> list[ShardTask]:
    return [t for t in tasks if t.shard % world_size == rank]


# The generator and the regressors always run on blocks of this many samples, aligned to
# sample indices (block b = indices [b * COMPUTE_BLOCK, (b + 1) * COMPUTE_BLOCK)). Float
# kernels round differently for different batch shapes (on CPU a batch of 3 or 16 differs
# from a batch of 8 in the last bit), so one fixed shape keeps the arithmetic of every
# sample the same whatever --batch-size, shard size, rank or start index. 8 is also the
# fastest block on CPU for the shipped generators (docs/sampling.md, "Determinism contract").
COMPUTE_BLOCK = 8


def step_size(batch_size: int) -> int:
    """--batch-size rounded up to a whole number of compute blocks."""
    return max(1, -(-int(batch_size) // COMPUTE_BLOCK)) * COMPUTE_BLOCK


def block_of(index: int) -> list[int]:
    """The compute block holding sample `index`: COMPUTE_BLOCK consecutive aligned indices."""
    first = (int(index) // COMPUTE_BLOCK) * COMPUTE_BLOCK
    return list(range(first, first + COMPUTE_BLOCK))


def blocks(indices: Sequence[int]) -> list[list[int]]:
    """The aligned compute blocks covering `indices`, in order, each listed once."""
    firsts = sorted({int(i) // COMPUTE_BLOCK for i in indices})
    return [block_of(b * COMPUTE_BLOCK) for b in firsts]


def batches(indices: range, batch_size: int) -> Iterator[list[int]]:
    """A shard's indices in steps of about step_size(batch_size) samples, cut at block boundaries.

    Batches never straddle shards, and a step never splits a compute block except at a
    shard's ends (where the block is computed whole and the samples outside are dropped).
    """
    size = step_size(batch_size)
    start, stop = indices.start, indices.stop
    while start < stop:
        end = min(stop, (start + size) // COMPUTE_BLOCK * COMPUTE_BLOCK)
        yield list(range(start, end))
        start = end


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
