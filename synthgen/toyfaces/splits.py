"""Which ToyFaces samples each job may use: splits are seed ranges.

Sample i of seed K has z = seed_to_z(K, [i])[0], drawn from a stream keyed by (K, i),
so different seeds give unrelated latents: the splits below never share a face. The
anchors of different domains train on different seeds, which is what makes their
training data unpaired even though every face has ground truth in all domains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.errors import UserError
from synthgen.toyfaces.latent import seed_to_z


@dataclass(frozen=True)
class Split:
    name: str
    seed: int  # the stream the latents come from
    size: int  # indices 0 .. size - 1 belong to the split
    use: str  # who reads it


SPLITS: dict[str, Split] = {s.name: s for s in (
    # RGB photos the built-in generator learns to imitate (G(z) regressed onto render_rgb(z)).
    Split("generator", seed=0, size=200_000, use="train the built-in generator"),
    # One unpaired training set per anchored domain: images of that domain only.
    Split("anchor_rgb", seed=1, size=100_000, use="fit the rgb anchor (inversion encoder)"),
    Split("anchor_seg", seed=2, size=100_000, use="fit the seg anchor"),
    Split("anchor_sketch", seed=3, size=100_000, use="fit the sketch anchor"),
    Split("anchor_landmark", seed=4, size=100_000, use="fit the landmark anchor"),
    # Stand-in for a real labelled dataset in the downstream-segmenter comparison.
    Split("segmenter", seed=5, size=100_000, use="train the reference segmenter on rendered pairs"),
    # Paired pictures for choosing between models and settings, so the test split decides nothing.
    Split("validation", seed=6, size=10_000, use="choose between trained models and settings"),
    # Held out from every training job: paired ground truth for all measurements.
    Split("test", seed=1000, size=10_000, use="held-out paired test set for every metric"),
)}


class SplitError(ValueError, UserError):
    """An unknown split or an index outside it."""


def split_z(name: str, indices) -> np.ndarray:
    """(len(indices), Z_DIM) latents of `indices` within split `name`."""
    if name not in SPLITS:
        raise SplitError(f"unknown split {name!r}: choose from {', '.join(SPLITS)}")
    split = SPLITS[name]
    indices = list(indices)
    bad = [i for i in indices if not 0 <= i < split.size]
    if bad:
        raise SplitError(f"index {bad[0]} is outside split {name!r} (0..{split.size - 1})")
    return seed_to_z(split.seed, indices)
