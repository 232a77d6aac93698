"""Synthetic label accuracy, measured exactly on the built-in world.

The built-in generator draws sample i's z exactly as the ToyFaces renderer does
(`seed_to_z(seed, [i])`), so the true mask of every sample `synthgen sample` writes is
`render(z)["seg"]`: the accuracy of the synthetic labels is a measurement, not an
estimate. It holds only for untruncated, unmixed samples (psi = 1, no style mixing):
a truncated or mixed latent is no longer the z the renderer knows.
"""
from __future__ import annotations

from pathlib import Path

from synthgen.celebamask import CLASS_NAMES
from synthgen.dataset.reader import open_dataset
from synthgen.evaluation.errors import LabelAccuracyError
from synthgen.evaluation.pairs import read_pairs
from synthgen.metrics import ConfusionMatrix
from synthgen.toyfaces import render_batch, seed_to_z


def synthetic_label_accuracy(dataset_dir: str | Path, n: int | None = None, chunk: int = 256) -> dict:
    """mIoU, pixel accuracy and per-class IoU of a dataset's `seg` against render_seg(z)."""
    config = open_dataset(dataset_dir).card.get("config", {})
    if config.get("truncation_psi", 1.0) != 1.0 or config.get("style_mix_prob", 0.0) != 0.0:
        raise LabelAccuracyError(
            f"{dataset_dir} was sampled with truncation or style mixing: its latents are not the "
            "renderer's z; measure a dataset sampled with --truncation 1 --style-mix 0"
        )
    pairs = read_pairs(dataset_dir, n=n)
    size = pairs.masks.shape[-1]
    seed = int(config.get("seed", 0))
    confusion = ConfusionMatrix(len(CLASS_NAMES), CLASS_NAMES)
    for start in range(0, len(pairs), chunk):
        keys = pairs.keys[start : start + chunk]
        truth = render_batch(seed_to_z(seed, [int(k) for k in keys]), size, domains=("seg",))["seg"]
        confusion.update(pairs.masks[start : start + chunk], truth)
    return {"samples": len(pairs), "seed": seed, **confusion.report()}
