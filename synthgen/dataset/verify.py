"""`synthgen verify DIR`: check every shard against its stats and manifest.

A shard is `ok` when its tar's sha256 and sample count match its stats file, every key
in its index range holds exactly the fields the card lists, and its manifest has the
same keys in the same order. Anything else is `missing` (never completed: rerun the
same `synthgen sample` command) or `corrupt` (completed, then changed or damaged).
"""
from __future__ import annotations

import hashlib
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from synthgen.dataset.layout import MERGED_MANIFEST, META_FIELD, ShardTask, read_stats, sample_key, shard_paths
from synthgen.dataset.reader import open_dataset, shard_members


@dataclass
class ShardCheck:
    shard: str
    status: str  # "ok" | "missing" | "corrupt"
    problems: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    shards: list[ShardCheck]
    merged_problems: list[str]

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.shards) and not self.merged_problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for s in self.shards:
            out[s.status] += 1
        return dict(out)

    def lines(self) -> list[str]:
        out = [f"{s.shard}: {s.status}: {'; '.join(s.problems)}" for s in self.shards if s.status != "ok"]
        out += [f"{MERGED_MANIFEST}: {p}" for p in self.merged_problems]
        counts = self.counts()
        out.append(
            f"{len(self.shards)} shards: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("ok", "missing", "corrupt"))
        )
        return out


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def expected_fields(card: dict) -> set[str]:
    specs = card["config"]["domain_specs"]
    return {f for spec in specs.values() for f in spec["fields"]} | {META_FIELD}


def check_shard(out_dir: Path, task: ShardTask, fields: set[str]) -> ShardCheck:
    paths = shard_paths(out_dir, task.name)
    stats = read_stats(paths["stats"])
    if stats is None:
        return ShardCheck(task.name, "missing", ["no stats file (never completed)"])
    problems = []
    if (stats.first_index, stats.count) != (task.first_index, task.count):
        problems.append(f"stats cover {stats.count} samples from {stats.first_index}, "
                        f"expected {task.count} from {task.first_index}")
    for kind in ("tar", "manifest"):
        if not paths[kind].exists():
            problems.append(f"{paths[kind].name} is missing")
    if problems:
        return ShardCheck(task.name, "corrupt", problems)
    if file_sha256(paths["tar"]) != stats.sha256:
        problems.append("tar sha256 differs from its stats")
    keys = [sample_key(i) for i in task.indices]
    try:
        problems += _check_members(paths["tar"], keys, fields)
    except (tarfile.TarError, OSError) as exc:
        problems.append(f"unreadable tar ({exc})")
    try:
        manifest_keys = pq.read_table(paths["manifest"], columns=["key"]).column("key").to_pylist()
        if manifest_keys != keys:
            problems.append(f"manifest keys differ from the shard's ({len(manifest_keys)} rows)")
    except Exception as exc:  # pyarrow raises several types for damaged files
        problems.append(f"unreadable manifest ({exc})")
    return ShardCheck(task.name, "corrupt" if problems else "ok", problems)


def _check_members(tar_path: Path, keys: list[str], fields: set[str]) -> list[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    order = []
    for member in shard_members(tar_path):
        if not order or order[-1] != member.key:
            order.append(member.key)
        seen[member.key].add(member.field)
    problems = []
    if order != keys:
        problems.append(f"tar holds {len(order)} keys, expected {len(keys)} in index order")
    bad = [k for k in keys if seen.get(k) != fields]
    if bad:
        problems.append(f"{len(bad)} samples lack or add fields (first: {bad[0]})")
    return problems


def verify_dataset(out_dir: Path | str) -> VerifyReport:
    out_dir = Path(out_dir)
    dataset = open_dataset(out_dir, fix="point verify at a folder written by `synthgen sample`")
    fields = expected_fields(dataset.card)
    tasks = dataset.shards()
    checks = [check_shard(out_dir, t, fields) for t in tasks]
    merged_problems = []
    merged = out_dir / MERGED_MANIFEST
    expected_rows = sum(t.count for t in tasks)
    if not merged.exists():
        merged_problems.append("missing (written when every shard is complete)")
    else:
        rows = pq.ParquetFile(merged).metadata.num_rows
        if rows != expected_rows:
            merged_problems.append(f"{rows} rows, expected {expected_rows}")
    return VerifyReport(checks, merged_problems)
