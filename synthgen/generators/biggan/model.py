"""The BigGAN-deep generator with its spectral norms already applied (weights are plain tensors).

Names follow pytorch-pretrained-biggan's `generator.*` keys without the prefix, so a checkpoint
maps onto this module key for key once each `weight_orig` is divided by its spectral norm.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _default_layers() -> list[list]:
    # (upsample?, in multiple, out multiple) of channel_width: the 128px model.
    return [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8],
            [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]]


@dataclass
class BigGANConfig:
    output_dim: int = 128  # image resolution
    z_dim: int = 128  # noise dim (the class embedding has the same size)
    class_embed_dim: int = 128  # width of the class embedding
    channel_width: int = 128  # ch; layer widths are multiples of it
    num_classes: int = 1000  # ImageNet classes
    layers: list = field(default_factory=_default_layers)  # [upsample, in_mult, out_mult] per GenBlock
    attention_layer_position: int = 8  # self-attention inserted before this GenBlock
    eps: float = 1e-4  # batch-norm epsilon
    n_stats: int = 51  # batch-norm statistics stored for truncations 0, 0.02, ..., 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [[bool(u), int(i), int(o)] for u, i, o in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BigGANConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def stats_at(means: torch.Tensor, variances: torch.Tensor, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-norm statistics for a truncation, as pytorch-pretrained-biggan interpolates them.

    Its weights are the reverse of linear interpolation (the lower entry gets the fractional
    part) and it works in float64 on truncation / step; kept as is, since the published images
    were made this way.
    """
    step = 1.0 / (means.shape[0] - 1)
    coef, start = math.modf(truncation / step)
    start = int(start)
    if coef == 0.0:
        return means[start], variances[start]
    return (means[start] * coef + means[start + 1] * (1 - coef),
            variances[start] * coef + variances[start + 1] * (1 - coef))


class ClassBatchNorm(nn.Module):
    """Batch norm with per-truncation statistics; conditional: gain 1 + scale(c), bias offset(c)."""

    def __init__(self, channels: int, cond_dim: int | None, n_stats: int, eps: float):
        super().__init__()
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.eps = eps
        if cond_dim is not None:
            self.scale = nn.Linear(cond_dim, channels, bias=False)
            self.offset = nn.Linear(cond_dim, channels, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self.conditional = cond_dim is not None

    def forward(self, x: torch.Tensor, truncation: float, cond: torch.Tensor | None = None) -> torch.Tensor:
        mean, var = stats_at(self.running_means, self.running_vars, truncation)
        x = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + self.eps)
        if self.conditional:
            return x * (1 + self.scale(cond))[:, :, None, None] + self.offset(cond)[:, :, None, None]
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SelfAttn(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) with 2x max-pooled keys and values."""

    def __init__(self, channels: int):
        super().__init__()
        self.snconv1x1_theta = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_phi = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_g = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.snconv1x1_o_conv = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.snconv1x1_theta(x).view(b, c // 8, h * w)  # (B, C/8, N)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).view(b, c // 8, h * w // 4)  # (B, C/8, N/4)
        attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # (B, N, N/4)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).view(b, c // 2, h * w // 4)
        out = torch.bmm(g, attn.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class GenBlock(nn.Module):
    """BigGAN-deep residual block: 1x1 down-channel, two 3x3, 1x1 up-channel (BN-ReLU before each)."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, upsample: bool, n_stats: int, eps: float):
        super().__init__()
        mid = in_ch // 4
        self.upsample = upsample
        self.drop_channels = in_ch != out_ch
        self.bn_0 = ClassBatchNorm(in_ch, cond_dim, n_stats, eps)
        self.conv_0 = nn.Conv2d(in_ch, mid, 1)
        self.bn_1 = ClassBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_1 = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn_2 = ClassBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn_3 = ClassBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_3 = nn.Conv2d(mid, out_ch, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        skip = x
        x = self.conv_0(F.relu(self.bn_0(x, truncation, cond)))
        x = F.relu(self.bn_1(x, truncation, cond))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv_1(x)
        x = self.conv_2(F.relu(self.bn_2(x, truncation, cond)))
        x = self.conv_3(F.relu(self.bn_3(x, truncation, cond)))
        if self.drop_channels:
            skip = skip[:, : skip.shape[1] // 2]
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return x + skip


class BigGANDeep(nn.Module):
    """(z (B, z_dim), class one-hot (B, num_classes), truncation) -> features, rgb."""

    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        self.cfg = cfg
        ch, cond_dim = cfg.channel_width, cfg.z_dim * 2
        self.embeddings = nn.Linear(cfg.num_classes, cfg.z_dim, bias=False)
        self.gen_z = nn.Linear(cond_dim, 4 * 4 * 16 * ch)
        layers: list[nn.Module] = []
        for i, (up, in_mult, out_mult) in enumerate(cfg.layers):
            if i == cfg.attention_layer_position:
                layers.append(SelfAttn(ch * in_mult))
            layers.append(GenBlock(ch * in_mult, ch * out_mult, cond_dim, bool(up), cfg.n_stats, cfg.eps))
        self.layers = nn.ModuleList(layers)
        self.bn = ClassBatchNorm(ch, None, cfg.n_stats, cfg.eps)
        self.conv_to_rgb = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        cond = torch.cat([z, self.embeddings(class_vector)], dim=1)  # (B, 2 z_dim)
        # gen_z's output is laid out (4, 4, C) as in the TF original.
        x = self.gen_z(cond).view(-1, 4, 4, 16 * self.cfg.channel_width).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            x = layer(x, cond, truncation) if isinstance(layer, GenBlock) else layer(x)
        features = F.relu(self.bn(x, truncation))  # (B, ch, R, R): the tap, input of conv_to_rgb
        rgb = torch.tanh(self.conv_to_rgb(features)[:, :3])
        return features, rgb
