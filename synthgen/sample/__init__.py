"""The factory: latents by sample index -> one generator pass -> every regressor -> shards.

Modules, one stage each: `plan` (which indices go to which shard and rank), `sampler`
(the device loop), `encode` (arrays -> file bytes, in a worker pool), `shard_writer`
(tar + manifest + stats, atomically), `quality` (label scores), `verify`, `preview`,
`cli`. The format they write (layout, card, manifest) is synthgen.dataset's.
"""
