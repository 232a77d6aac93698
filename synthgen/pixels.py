"""The conversion between uint8 pixels and the [-1, 1] range generators and regressors work in.

Every reader of photos, sketches and grids goes through these two functions, so a photo
written by `sample` and read back by `fit` or the reference segmenter is the same tensor
wherever it is converted.
"""
from __future__ import annotations

import torch


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or integer-valued) pixels 0..255 -> float32 in [-1, 1]; the layout is kept."""
    return pixels.float() / 127.5 - 1.0


def to_uint8(unit: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] (clamped) -> uint8 pixels, rounded to nearest; the layout is kept."""
    return ((unit.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
