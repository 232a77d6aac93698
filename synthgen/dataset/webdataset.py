"""Read `synthgen sample` shards for training: a WebDataset pipeline that decodes right.

What the stock decoders get wrong for this data (docs/sampling.md, "Reading the data"):
- `.decode("rgb8")` / `"torchrgb"` turn a 1-channel mask into 3 channels and float
  specs divide by 255; a mask here is a palette PNG whose pixel values ARE class ids,
  so it is read as-is into int64 (H, W);
- `WebDataset()` defaults to `single_node_only`; this pipeline splits shards by node
  (rank) and by DataLoader worker, and refuses a split that leaves a rank without a
  shard (that rank would stop early and hang DDP) unless `resampled=True`.

A decoded sample: {"__key__": "000001234", "<image domain>": float32 (C, H, W) in [0, 1],
"<mask domain>": int64 (H, W) class ids, "<keypoints domain>": float32 (N, 2) x, y pixels,
"<keypoints domain>_map": float32 (1, H, W) in [0, 1], "json": dict (with_json=True)}.
The folder, its card and its complete shards come from synthgen.dataset.reader.
"""
from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from synthgen.dataset.layout import META_FIELD, picture_field, points_field
from synthgen.dataset.reader import ShardReaderError, open_dataset


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def decode_mask(data: bytes) -> torch.Tensor:
    """Palette or grayscale PNG -> (H, W) int64 class ids, never through RGB."""
    image = _image(data)
    if image.mode not in ("P", "L"):
        raise ShardReaderError(f"a mask must be a palette or grayscale PNG, got mode {image.mode}")
    return torch.from_numpy(np.asarray(image).astype(np.int64))


def decode_image(data: bytes, channels: int) -> torch.Tensor:
    """PNG/WebP/JPEG -> (C, H, W) float32 in [0, 1]."""
    image = _image(data).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def decode_points(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32))


def decode_sample(sample: dict[str, Any], specs: dict[str, dict], domains: Sequence[str],
                  with_json: bool = False) -> dict[str, Any]:
    """Raw WebDataset sample (field -> bytes) -> tensors for the requested domains."""
    out: dict[str, Any] = {"__key__": sample["__key__"]}
    for name in domains:
        spec = specs[name]
        fields = spec["fields"]
        if spec["kind"] == "image":
            out[name] = decode_image(sample[fields[0]], spec["channels"])
        elif spec["kind"] == "mask":
            out[name] = decode_mask(sample[fields[0]])
        else:
            out[name] = decode_points(sample[points_field(fields)])
            out[f"{name}_map"] = decode_image(sample[picture_field(fields)], 1)
    if with_json:
        out["json"] = json.loads(sample[META_FIELD])
    return out


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def shard_pipeline(
    dataset_dir: Path | str,
    domains: Sequence[str] | None = None,
    shuffle_buffer: int = 0,
    seed: int = 0,
    resampled: bool = False,
    shards: Sequence[str | Path] | None = None,
    with_json: bool = False,
) -> wds.WebDataset:
    """A WebDataset over a dataset folder's complete shards (or `shards`, a subset of them),
    split by rank and by worker.

    domains: which domains to decode (default: all in dataset.json); shuffle_buffer: 0
    keeps index order, else shards and samples are shuffled (deterministically by seed);
    resampled: draw shards with replacement forever (each rank always has data);
    with_json: add the per-sample provenance dict (holds None values: default_collate
    cannot batch it, so leave it out for DataLoader batching).
    """
    folder = open_dataset(dataset_dir)
    specs = folder.specs
    domains = list(domains or folder.domains)
    unknown = [d for d in domains if d not in specs]
    if unknown:
        raise ShardReaderError(f"domains {unknown} are not in this dataset (it has {', '.join(specs)})")
    urls = [str(p) for p in (folder.complete_shards() if shards is None else shards)]
    if not urls:
        raise ShardReaderError(f"{dataset_dir} has no complete shard yet: run or resume `synthgen sample`")
    world = _world_size()
    if not resampled and len(urls) < world:
        raise ShardReaderError(
            f"{len(urls)} shards for {world} ranks: a rank without a shard stops early and hangs DDP; "
            "write more, smaller shards (--shard-size) or pass resampled=True"
        )
    dataset = wds.WebDataset(
        urls,
        resampled=resampled,
        shardshuffle=100 if shuffle_buffer and not resampled else False,
        detshuffle=True,
        seed=seed,
        nodesplitter=None if resampled else wds.split_by_node,
        workersplitter=wds.split_by_worker,
        empty_check=False,
    )
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return dataset.map(partial(decode_sample, specs=specs, domains=domains, with_json=with_json))
