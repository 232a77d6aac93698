"""One synthesis layer (StyleGAN2 Fig. 2c): modulated conv, per-pixel noise B, bias + lrelu."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthgen.generators.stylegan2.activation import BiasLeakyReLU
from synthgen.generators.stylegan2.modulated_conv import ModulatedConv2d


class NoiseInjection(nn.Module):
    """x + strength * noise; one learned strength per layer, noise (B or 1, 1, H, W)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class StyledConv(nn.Module):
    """(B, I, H, W), w (B, w_dim), noise -> (B, O, H', W')."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
        upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1), clamp: float | None = None,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, w_dim, upsample=upsample, blur_kernel=blur_kernel
        )
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(out_channels, clamp=clamp)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))
