"""The factory: latents by sample index -> one generator pass -> every regressor -> shards.

Modules, one stage each: `plan` (which indices go to which shard and rank), `sampler`
(the device loop), `encode` (arrays -> file bytes, in a worker pool), `shard_writer`
(tar + manifest + stats, atomically), `quality` (label scores), `cli` (`synthgen sample`,
`verify`, `preview`). The format they write, and its readers, are synthgen.dataset's.
"""
