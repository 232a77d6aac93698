"""The dataset format `synthgen sample` writes and every consumer reads.

`layout` (keys, shard paths, field names per domain kind, the one rule for a complete
shard), `card` (dataset.json), `manifest` (the Parquet schema and its rows), `reader`
(the one card-driven reader of a dataset folder and its shards), `webdataset` (the training
pipeline over a dataset's shards: `shard_pipeline`), `verify` and `preview` (`synthgen
verify` / `synthgen preview`).
"""
