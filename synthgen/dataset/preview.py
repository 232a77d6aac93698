"""`synthgen preview`: a contact sheet read back from the shards, one row per sample.

Reading the written files (not the arrays in memory) is the point: the sheet shows what
a training consumer will get (the complete shards, through the reader), masks through the
palette stored in their PNG.
"""
from __future__ import annotations

import io
import itertools
import tarfile
from pathlib import Path

from PIL import Image, ImageDraw

from synthgen.dataset.layout import picture_field
from synthgen.dataset.reader import NotADatasetError, iter_samples, open_dataset

LABEL_HEIGHT = 14


def domain_tile(field_bytes: bytes, tile: int) -> Image.Image:
    image = Image.open(io.BytesIO(field_bytes))
    return image.convert("RGB").resize((tile, tile), Image.NEAREST)  # P mode renders through its palette


def render_preview(dataset: Path, n_samples: int, out_path: Path, tile: int = 128) -> int:
    folder = open_dataset(dataset, fix="point preview at a folder written by `synthgen sample`")
    # One picture per domain: the image, the mask or the keypoint map, not the points.
    columns = [(name, picture_field(spec["fields"])) for name, spec in folder.specs.items()]
    wanted = {f for _, f in columns}
    rows = []
    for tar in folder.complete_shards():
        try:
            for _, fields in itertools.islice(iter_samples(tar, wanted), n_samples - len(rows)):
                rows.append([domain_tile(fields[f], tile) for _, f in columns])
        except (tarfile.TarError, OSError, KeyError) as exc:  # KeyError: a sample lacks a field
            raise NotADatasetError(f"{tar}: unreadable shard ({type(exc).__name__}: {exc}): "
                                   f"run `synthgen verify {dataset}` and rerun the sample command") from None
        if len(rows) == n_samples:
            break
    if not rows:
        raise NotADatasetError(f"{dataset} has no complete shard yet: run or resume `synthgen sample`")
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
