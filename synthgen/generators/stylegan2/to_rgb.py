"""ToRGB of the skip generator (StyleGAN2 Fig. 7b): a modulated 1x1 conv without demodulation,
added to the 2x-upsampled image of the previous resolution."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthgen.generators.stylegan2.modulated_conv import ModulatedConv2d
from synthgen.generators.stylegan2.resample import Upsample


class ToRGB(nn.Module):
    """(B, C, H, W), w, skip (B, 3, H/2, W/2) or None -> (B, 3, H, W)."""

    def __init__(
        self, in_channels: int, w_dim: int, upsample: bool = True,
        blur_kernel: Sequence[int] = (1, 3, 3, 1), clamp: float | None = None,
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias.to(x.dtype)
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out
