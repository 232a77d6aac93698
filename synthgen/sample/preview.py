"""`synthgen preview`: a contact sheet read back from the shards, one row per sample.

Reading the written files (not the arrays in memory) is the point: the sheet shows what
a training consumer will get, masks through the palette stored in their PNG.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw

from synthgen.dataset.card import expected_tasks, read_card
from synthgen.dataset.layout import shard_paths
from synthgen.sample.verify import NotADatasetError

LABEL_HEIGHT = 14


def iter_shard_samples(tar_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) in tar order; members of one key are contiguous (WebDataset rule)."""
    key, fields = None, {}
    with tarfile.open(tar_path, "r|") as tar:
        for member in tar:
            k, _, name = member.name.partition(".")
            if k != key and key is not None:
                yield key, fields
                fields = {}
            key = k
            fields[name] = tar.extractfile(member).read()
    if key is not None:
        yield key, fields


def domain_tile(field_bytes: bytes, tile: int) -> Image.Image:
    image = Image.open(io.BytesIO(field_bytes))
    return image.convert("RGB").resize((tile, tile), Image.NEAREST)  # P mode renders through its palette


def render_preview(dataset: Path, n_samples: int, out_path: Path, tile: int = 128) -> int:
    card = read_card(Path(dataset))
    if card is None:
        raise NotADatasetError(f"{dataset} has no dataset.json: point preview at a folder written by `synthgen sample`")
    specs = card["config"]["domain_specs"]
    # One image field per domain: the picture, not the keypoint .npy.
    columns = [(name, next(f for f in spec["fields"] if not f.endswith(".npy"))) for name, spec in specs.items()]
    rows = []
    for task in expected_tasks(card):
        tar = shard_paths(Path(dataset), task.name)["tar"]
        if not tar.exists():
            continue
        for _, fields in iter_shard_samples(tar):
            rows.append([domain_tile(fields[f], tile) for _, f in columns])
            if len(rows) == n_samples:
                break
        if len(rows) == n_samples:
            break
    sheet = Image.new("RGB", (tile * len(columns), LABEL_HEIGHT + tile * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, (name, _) in enumerate(columns):
        draw.text((c * tile + 3, 1), name, fill=(0, 0, 0))
    for r, tiles in enumerate(rows):
        for c, im in enumerate(tiles):
            sheet.paste(im, (c * tile, LABEL_HEIGHT + r * tile))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path)
    return len(rows)
