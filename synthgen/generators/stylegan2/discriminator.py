"""The StyleGAN2 residual discriminator (Karras et al. 2020, Fig. 7c) with minibatch stddev,
for adversarial losses elsewhere in synthgen (image discriminator of anchoring, eq. 5)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from synthgen.generators.stylegan2.activation import BiasLeakyReLU
from synthgen.generators.stylegan2.config import ConfigError
from synthgen.generators.stylegan2.equalized import EqualConv2d, EqualLinear
from synthgen.generators.stylegan2.resample import Blur


@dataclass
class DiscriminatorConfig:
    size: int = 256  # input resolution, a power of two >= 8
    in_channels: int = 3  # image channels
    channel_multiplier: int = 2  # same width rule as the generator
    channel_base: int = 16384  # channels at r = min(channel_max, channel_base * multiplier // r)
    channel_max: int = 512
    channels: dict[int, int] | None = None  # explicit {resolution: channels}
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)  # low-pass before every stride-2 conv
    stddev_group: int = 4  # minibatch-stddev group size (Karras et al. 2018, sec. 3)
    stddev_feat: int = 1  # channels of the stddev feature
    c_dim: int = 0  # conditioning vector length (0 = unconditional); projection as in NVIDIA's epilogue
    mapping_layers: int = 2  # layers of the MLP that maps the condition to the projection vector

    def __post_init__(self) -> None:
        if self.size < 8 or 2 ** round(math.log2(self.size)) != self.size:
            raise ConfigError(f"discriminator size must be a power of two >= 8, got {self.size}")
        if self.channels is not None:
            self.channels = {int(r): int(c) for r, c in self.channels.items()}
        if self.c_dim < 0 or (self.c_dim and self.mapping_layers < 2):
            raise ConfigError(f"a conditional discriminator needs c_dim > 0 and mapping_layers >= 2, got {self.c_dim} and {self.mapping_layers}")

    def channels_at(self, r: int) -> int:
        if self.channels is not None:
            return self.channels[r]
        return min(self.channel_max, self.channel_base * self.channel_multiplier // r)


class ConvLayer(nn.Sequential):
    """[blur ->] equalized conv (stride 2 when downsampling) [-> bias + lrelu]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1), bias: bool = True, activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(BiasLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """(B, I, H, W) -> (B, O, H/2, W/2); the residual sum is divided by sqrt(2) to keep variance."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group: int, n_feat: int) -> torch.Tensor:
    """Append the std of features over groups of samples (B, C, H, W) -> (B, C + n_feat, H, W)."""
    b, c, h, w = x.shape
    g = min(b, group)
    if b % g:
        g = 1 if b < group else math.gcd(b, g)
    y = x.view(g, -1, n_feat, c // n_feat, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)  # (B/g, F, C/F, H, W)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)  # (B/g, F, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """image (B, in_channels, size, size) [, condition (B, c_dim)] -> realness logit (B, 1).

    With c_dim > 0 the logit is the projection of the image's last features onto an
    embedding of the condition (Miyato & Koyama 2018; StyleGAN2-ADA's `cmap`), so an image
    that is realistic but wrong for its condition (a part where the latent puts none) loses.
    """

    def __init__(self, cfg: DiscriminatorConfig | None = None, **kwargs):
        super().__init__()
        cfg = cfg or DiscriminatorConfig(**kwargs)
        self.cfg = cfg
        log_size = int(math.log2(cfg.size))
        in_ch = cfg.channels_at(cfg.size)
        blocks: list[nn.Module] = [ConvLayer(cfg.in_channels, in_ch, 1)]
        for i in range(log_size, 2, -1):
            out_ch = cfg.channels_at(2 ** (i - 1))
            blocks.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*blocks)
        c4 = cfg.channels_at(4)
        self.final_conv = ConvLayer(in_ch + cfg.stddev_feat, c4, 3)
        self.cmap_dim = c4 if cfg.c_dim else 0
        self.final_linear = nn.Sequential(EqualLinear(c4 * 16, c4, activate=True), EqualLinear(c4, self.cmap_dim or 1))
        if cfg.c_dim:
            layers = [EqualLinear(cfg.c_dim, c4, activate=True)]
            layers += [EqualLinear(c4, c4, activate=True) for _ in range(cfg.mapping_layers - 2)]
            self.mapping = nn.Sequential(*layers, EqualLinear(c4, c4))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if (c is None) != (self.cfg.c_dim == 0):
            raise ValueError(f"this discriminator takes {'a condition of ' + str(self.cfg.c_dim) + ' values' if self.cfg.c_dim else 'no condition'}")
        out = self.convs(x)  # (B, C, 4, 4)
        out = minibatch_stddev(out, self.cfg.stddev_group, self.cfg.stddev_feat)
        out = self.final_conv(out)
        out = self.final_linear(out.flatten(1))
        if c is None:
            return out
        cmap = self.mapping(c)  # (B, cmap_dim)
        return (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
