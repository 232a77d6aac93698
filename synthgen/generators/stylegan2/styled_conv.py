"""One synthesis layer (StyleGAN2 Fig. 2c): modulated conv, per-pixel noise B, bias + lrelu."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthgen.generators.stylegan2.activation import LRELU_GAIN, LRELU_SLOPE, BiasLeakyReLU
from synthgen.generators.stylegan2.modulated_conv import ModulatedConv2d
from synthgen.inplace import add, leaky_relu


class NoiseInjection(nn.Module):
    """The learned strength of the per-pixel noise B, one per layer (StyledConv adds
    strength * noise (B or 1, 1, H, W) in its fused epilogue)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


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
        out, demod = self.conv.forward_undemodulated(x, w)
        # lrelu(d * conv + n + b) * g = lrelu(g d * conv + g n + g b) for the gain g > 0: the
        # demodulation, gain and bias go into one multiply-add and the activation runs in
        # place, three passes over the map instead of five (same mathematics, fp32 rounding).
        scale = (demod * LRELU_GAIN).to(out.dtype).view(out.shape[0], -1, 1, 1)
        shift = (self.activate.bias * LRELU_GAIN).to(out.dtype).view(1, -1, 1, 1)
        out = torch.addcmul(shift, out, scale)
        if noise is not None:
            out = add(out, (self.noise.weight * LRELU_GAIN).to(out.dtype) * noise.to(out.dtype))
        out = leaky_relu(out, LRELU_SLOPE)
        if self.activate.clamp is not None:
            out = out.clamp(-self.activate.clamp, self.activate.clamp)
        return out
