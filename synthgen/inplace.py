"""Elementwise steps done in place where autograd allows it.

On inference maps an in-place op saves one allocation and one pass over memory; when a
gradient must flow through either operand, the out-of-place op runs instead. Used by the
StyleGAN2 synthesis layers and the regressor's tiled per-pixel path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return any(t.requires_grad for t in tensors)


def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + y, written into x when no gradient needs x."""
    return x + y if _needs_grad(x, y) else x.add_(y)


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x) if _needs_grad(x) else torch.relu_(x)


def leaky_relu(x: torch.Tensor, slope: float) -> torch.Tensor:
    return F.leaky_relu(x, slope) if _needs_grad(x) else F.leaky_relu_(x, slope)
