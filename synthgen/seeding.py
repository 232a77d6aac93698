"""Per-index random draws: sample i's randomness depends only on (seed, i).

Every latent, noise map and random choice of a sample is drawn from a stream keyed
by (seed, index), never from a shared stream consumed in batch order. That is what
makes a dataset identical whether it was written with batch size 1 or 512, on one
process or sixty-four.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def index_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """A generator for sample `index` under base `seed`; `stream` separates uses (latent, noise, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


def per_index_normal(seed: int, indices: Iterable[int], dim: int, stream: int = 0) -> np.ndarray:
    """Standard-normal vectors, one row per index: (len(indices), dim) float32."""
    rows = [index_rng(seed, i, stream).standard_normal(dim, dtype=np.float64) for i in indices]
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(rows).astype(np.float32)
