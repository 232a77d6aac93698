"""The Parquet manifest: one row per sample, one file per shard, merged at the end.

Schema version 1 is documented in manifests/schema_v1.json (columns, types, meaning) and
pinned by manifests/golden_v1.parquet. Columns that exist for every dataset come first;
then, for each domain in the order requested, the columns of its kind:

  every domain : <d>_bytes                       int64, bytes of its fields in the tar
  mask         : <d>_class_fractions             fixed_size_list<float32>[K], pixel share per class
                 <d>_confidence                  float32, mean over pixels of the max softmax prob
                 <d>_entropy                     float32, mean over pixels of the softmax entropy (nats)
  keypoints    : <d>_points                      fixed_size_list<fixed_size_list<float32>[2]>[N], x, y px
                 <d>_confidence                  float32, mean over points of the heatmap peak

`quality` is the lowest `<d>_confidence` of the sample (a sample is as usable as its
worst label); null when no domain carries a confidence.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.atomic_files import atomic_write
from synthgen.dataset.layout import domain_fields, sample_key

MANIFEST_VERSION = 1
VERSION_KEY = b"synthgen.manifest_version"
DOMAINS_KEY = b"synthgen.domains"

COMMON_COLUMNS = [
    ("key", pa.string()),  # the WebDataset key (layout.sample_key)
    ("index", pa.int64()),
    ("shard", pa.int32()),
    ("seed", pa.int64()),  # base seed of the dataset
    ("truncation_psi", pa.float32()),
    ("style_mix_layer", pa.int16()),  # first layer taking the second latent; -1 = not mixed
    ("class_index", pa.int32()),  # BigGAN-deep class; -1 for unconditional generators
    ("quality", pa.float32()),
]


def _fixed_list(item: pa.DataType, size: int) -> pa.DataType:
    # Parquet names list items "element"; naming them so here keeps written == read schemas.
    return pa.list_(pa.field("element", item), size)


def domain_columns(spec: Any) -> list[tuple[str, pa.DataType]]:
    cols = [(f"{spec.name}_bytes", pa.int64())]
    if spec.kind == "mask":
        cols += [
            (f"{spec.name}_class_fractions", _fixed_list(pa.float32(), len(spec.class_names))),
            (f"{spec.name}_confidence", pa.float32()),
            (f"{spec.name}_entropy", pa.float32()),
        ]
    elif spec.kind == "keypoints":
        cols += [
            (f"{spec.name}_points", _fixed_list(_fixed_list(pa.float32(), 2), spec.num_points)),
            (f"{spec.name}_confidence", pa.float32()),
        ]
    return cols


def manifest_schema(specs: Sequence[Any]) -> pa.Schema:
    cols = list(COMMON_COLUMNS)
    for spec in specs:
        cols += domain_columns(spec)
    domains = [{"name": s.name, "kind": s.kind} for s in specs]
    return pa.schema(
        [pa.field(name, dtype, nullable=(name == "quality")) for name, dtype in cols],
        metadata={VERSION_KEY: str(MANIFEST_VERSION).encode(), DOMAINS_KEY: json.dumps(domains).encode()},
    )


def class_fractions(mask: np.ndarray, num_classes: int) -> list[float]:
    counts = np.bincount(mask.reshape(-1), minlength=num_classes)[:num_classes]
    return (counts / mask.size).astype(np.float32).tolist()


def manifest_row(sample: Any, fields: dict[str, bytes], specs: Sequence[Any], image_format: str) -> dict:
    meta = sample.meta
    row: dict[str, Any] = {
        "key": sample_key(sample.index),
        "index": sample.index,
        "shard": meta["shard"],
        "seed": meta["seed"],
        "truncation_psi": meta["truncation_psi"],
        "style_mix_layer": -1 if meta.get("style_mix_layer") is None else meta["style_mix_layer"],
        "class_index": -1 if meta.get("class_index") is None else meta["class_index"],
    }
    confidences = []
    for spec in specs:
        row[f"{spec.name}_bytes"] = sum(len(fields[f]) for f in domain_fields(spec, image_format))
        arrays = sample.arrays[spec.name]
        if spec.kind == "mask":
            row[f"{spec.name}_class_fractions"] = class_fractions(arrays["mask"], len(spec.class_names))
            row[f"{spec.name}_entropy"] = sample.scores[f"{spec.name}_entropy"]
        elif spec.kind == "keypoints":
            row[f"{spec.name}_points"] = np.asarray(arrays["points"], dtype=np.float32).tolist()
        if spec.kind in ("mask", "keypoints"):
            confidence = sample.scores[f"{spec.name}_confidence"]
            row[f"{spec.name}_confidence"] = confidence
            confidences.append(confidence)
    row["quality"] = min(confidences) if confidences else None
    return row


def rows_to_table(rows: Iterable[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


def merge_manifests(shard_manifests: Sequence[Path], out_path: Path) -> int:
    """Concatenate per-shard manifests in the given order, streaming; returns the row count."""
    if not shard_manifests:
        return 0
    rows = 0
    with atomic_write(out_path) as tmp:
        writer = None
        try:
            for path in shard_manifests:
                table = pq.read_table(path)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
    return rows
