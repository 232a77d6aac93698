"""Weight (de)modulation, StyleGAN2 sec. 2.2, eq. 1-3.

The style s = A(w) scales input channel i (eq. 1: w'_ijk = s_i w_ijk); demodulation divides
output channel j by sigma_j = sqrt(sum_ik w'_ijk^2 + eps) (eq. 3). Scaling the input by s and
the output by 1/sigma is the same linear map as convolving with the modulated weight, and lets a
batch share one weight tensor (no grouped conv).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.generators.stylegan2.equalized import EqualLinear
from synthgen.generators.stylegan2.resample import Blur

DEMOD_EPS = 1e-8


def demodulation(weight: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Eq. 3: weight (O, I, k, k), style (B, I) -> 1 / sigma (B, O)."""
    energy = style.square() @ weight.square().sum(dim=(2, 3)).t()  # (B, O) = sum_ik (s_i w_ijk)^2
    return torch.rsqrt(energy + DEMOD_EPS)


class ModulatedConv2d(nn.Module):
    """(B, I, H, W), w (B, w_dim) -> (B, O, H', W'); `upsample` doubles H, W: stride-2 transposed
    conv followed by the [1,3,3,1] blur, as StyleGAN2's official code does."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
        demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        # Equalized lr; the constant cancels under demodulation but not in ToRGB.
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        # The affine A of Fig. 2: bias 1 so styles start at identity.
        self.modulation = EqualLinear(w_dim, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            # Pads so that transposed conv (k=3, stride 2) + blur(4 taps) gives exactly 2H.
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out, coefficients = self.forward_undemodulated(x, w)
        return out if coefficients is None else out * coefficients.to(out.dtype).view(x.shape[0], -1, 1, 1)

    def forward_undemodulated(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The convolution of the style-scaled input and the demodulation coefficients (B, O)
        (None without demodulation), left for the caller to fold into its next pass."""
        b = x.shape[0]
        style = self.modulation(w)  # (B, I)
        weight = self.weight[0] * self.scale  # (O, I, k, k)
        x = x * style.to(x.dtype).view(b, -1, 1, 1)
        if self.upsample:
            # NHWC: oneDNN's transposed convolution is 2-4x faster there than on NCHW input.
            x = x.contiguous(memory_format=torch.channels_last)
            out = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        return out, demodulation(weight, style) if self.demodulate else None
