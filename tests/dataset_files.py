"""Hand-made dataset folders: the card and the completion markers `synthgen sample` leaves
around shards, for tests that write the tars themselves."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.dataset.card import CARD_NAME
from synthgen.dataset.layout import ShardStats, ShardTask, sample_key, shard_paths, shard_tasks


def mark_complete(root: Path, task: ShardTask) -> None:
    """The manifest and stats file written after the shard's tar (root/shards/NNNNNN.tar)."""
    paths = shard_paths(root, task.name)
    data = paths["tar"].read_bytes()
    paths["manifest"].parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"key": [sample_key(i) for i in task.indices]}), paths["manifest"])
    paths["stats"].parent.mkdir(exist_ok=True)
    stats = ShardStats(task.shard, task.first_index, task.count, len(data), hashlib.sha256(data).hexdigest(), 0.0)
    paths["stats"].write_text(json.dumps(asdict(stats)))


def as_dataset(root: Path, config: dict, n_samples: int, shard_size: int, complete=None) -> Path:
    """Make `root`, whose shards the test wrote, a dataset folder: a card over the indices
    [0, n_samples) in shards of `shard_size`, and the markers of the shards numbered in
    `complete` (default: all of them)."""
    card = {"config": {**config, "shard_size": shard_size}, "ranges": [[0, n_samples]], "n_samples": n_samples}
    (root / CARD_NAME).write_text(json.dumps(card))
    for task in shard_tasks(0, n_samples, shard_size):
        if complete is None or task.shard in complete:
            mark_complete(root, task)
    return root
