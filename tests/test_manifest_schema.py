"""The manifest writer's schema against the versioned schema file and the golden example."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from synthgen.anchors.spec import load_domain_spec
from synthgen.dataset.manifest import MANIFEST_VERSION, VERSION_KEY, manifest_schema

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
GOLDEN_DOMAINS = ("rgb", "seg", "sketch", "landmark")


def expected_from_schema_file(specs) -> list[tuple[str, str, bool]]:
    doc = json.loads((MANIFESTS / f"schema_v{MANIFEST_VERSION}.json").read_text())
    assert doc["version"] == MANIFEST_VERSION
    cols = [(c["name"], c["type"], c["nullable"]) for c in doc["common_columns"]]
    for spec in specs:
        for c in doc["domain_columns"][spec.kind]:
            fill = {"domain": spec.name, "num_classes": spec.num_classes, "num_points": spec.num_points}
            cols.append((c["name"].format(**fill), c["type"].format(**fill), c["nullable"]))
    return cols


def test_writer_schema_matches_schema_file():
    specs = [load_domain_spec(n) for n in GOLDEN_DOMAINS]
    schema = manifest_schema(specs)
    actual = [(f.name, str(f.type), f.nullable) for f in schema]
    assert actual == expected_from_schema_file(specs)


def test_writer_schema_matches_golden_example():
    specs = [load_domain_spec(n) for n in GOLDEN_DOMAINS]
    golden = pq.read_table(MANIFESTS / f"golden_v{MANIFEST_VERSION}.parquet")
    assert golden.schema.equals(manifest_schema(specs), check_metadata=True)
    assert golden.schema.metadata[VERSION_KEY] == str(MANIFEST_VERSION).encode()
    assert golden.num_rows >= 1 and golden.column("key").to_pylist()[0] == "000000000"


def test_schema_follows_requested_domains_only():
    names = manifest_schema([load_domain_spec("rgb")]).names
    assert names[-1] == "rgb_bytes" and not any(n.startswith("seg_") for n in names)
