"""Bias + leaky ReLU with gain sqrt(2), written as plain torch ops (what StyleGAN2 fuses in CUDA)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Leaky ReLU(0.2) times sqrt(2) keeps activations at unit variance (He init argument).
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, clamp: float | None = None) -> torch.Tensor:
    """x (B, C, ...) + bias (C,) -> lrelu -> * sqrt(2) -> optional clamp to [-clamp, clamp]."""
    if bias is not None:
        x = x + bias.to(x.dtype).view(1, -1, *([1] * (x.ndim - 2)))
    x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class BiasLeakyReLU(nn.Module):
    """The activation of every styled conv, with its learned per-channel bias."""

    def __init__(self, channels: int, bias: bool = True, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias, self.clamp)
