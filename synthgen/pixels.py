"""The conversion between uint8 pixels and the [-1, 1] range generators and regressors work in.

Every reader of photos, sketches and grids goes through these two functions, so a photo
written by `sample` and read back by `fit` or the reference segmenter is the same tensor
wherever it is converted.
"""
from __future__ import annotations

import numpy as np
import torch


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or integer-valued) pixels 0..255 -> float32 in [-1, 1]; the layout is kept."""
    return pixels.float() / 127.5 - 1.0


def to_uint8(unit: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] (clamped) -> uint8 pixels, rounded to nearest; the layout is kept."""
    return ((unit.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, C) images -> float32 (B, C, H, W) in [-1, 1]: the inverse of `to_uint8_images`."""
    return to_unit(torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2))


def to_uint8_images(unit: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C) on the host: images as `sample` writes them,
    the layout image files, previews and the reference segmenter's `predict` take."""
    return to_uint8(unit.detach().float()).permute(0, 2, 3, 1).cpu().numpy()
