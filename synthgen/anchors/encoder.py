"""The domain encoder E_d: a pSp-style feature pyramid over a ResNet trunk (paper sec. 3.2).

Trunk taps c1 (1/4 res), c2 (1/8), c3 (1/16); a top-down path builds p2 = up(c3) + 1x1(c2)
and p1 = up(p2) + 1x1(c1) (Richardson et al., pSp). Coarse latent entries are read from
c3, middle ones from p2, fine ones from p1, in pSp's 3 / 4 / 11 proportion of 18 entries.
Each entry has its own head: log2(spatial) x [3x3 stride-2 conv + LeakyReLU(0.01)] down to
1x1, then a linear layer to latent_dim.

For w+ generators the output is an offset added to the repeated w_avg (so an untrained
encoder already lands at the average face); for z-space generators (BigGAN) it is z itself.
With latent_kind "z" (a StyleGAN anchored through its mapping network) the output is one z;
the anchor maps it to w+ with the frozen mapping (anchor.Anchor.to_latents).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.models.resnet import BasicBlock

from synthgen.anchors.config_io import JsonConfig

TRUNKS = ("resnet18", "resnet34", "resnet50", "resnet18-small")
LATENT_KINDS_WITHOUT_OFFSET = ("z+class", "z")  # the encoder predicts z itself, centred on 0
LATENT_SPACES = ("w+", "z")  # what `fit --latent-space` may anchor a StyleGAN domain in


@dataclass
class EncoderConfig(JsonConfig):
    tuple_fields: ClassVar[tuple[str, ...]] = ("small_widths",)

    trunk: str = "resnet18-small"  # resnet18 | resnet34 | resnet50 (torchvision) | resnet18-small (CPU, 64px)
    in_channels: int = 3  # from the domain spec: pixels, one-hot classes or heatmaps
    num_ws: int = 18  # latent entries the generator takes (w+); 1 for z-space generators
    latent_dim: int = 512  # size of one latent entry
    latent_kind: str = "w+"  # "w+": offsets from w_avg; "z+class": BigGAN's z; "z": StyleGAN z, mapped by G
    small_widths: tuple[int, int, int] = (32, 64, 128)  # resnet18-small: channels of c1, c2, c3
    head_channels: int | None = None  # style-head conv width; None = latent_dim (pSp), or c3's width for resnet18-small
    trunk_weights: str | None = None  # local .pth/.safetensors of torchvision trunk weights (no downloads)



def style_split(num_ws: int) -> tuple[int, int]:
    """(end of coarse, end of middle): pSp's 3 / 4 / 11 of 18 entries, scaled to num_ws."""
    if num_ws < 3:
        return num_ws, num_ws  # z-space or tiny w+: every entry is global (coarse)
    coarse = max(1, round(num_ws * 3 / 18))
    middle = max(coarse + 1, round(num_ws * 7 / 18))
    return coarse, min(middle, num_ws - 1)


class SmallTrunk(nn.Module):
    """A narrow ResNet-18 layout from torchvision BasicBlocks, for CPU work at 64x64."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int]):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, 2, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )  # 1/4
        self.layer1 = nn.Sequential(BasicBlock(w1, w1), BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, 2, _down(w1, w2)), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, 2, _down(w2, w3)), BasicBlock(w3, w3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        return c1, c2, self.layer3(c2)


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))


class TorchvisionTrunk(nn.Module):
    """torchvision ResNet layers 1-3 (1/4, 1/8, 1/16); layer4 and the classifier are dropped."""

    def __init__(self, name: str, in_channels: int, weights_path: str | None):
        super().__init__()
        net = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}[name](weights=None)
        if weights_path:
            _load_trunk_weights(net, weights_path)
        if in_channels != 3:
            # One-hot masks and heatmaps are not photos: a fresh first conv of the right width.
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        return c1, c2, self.layer3(c2)


def _load_trunk_weights(net: nn.Module, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"encoder trunk weights {p} not found (weights are never downloaded)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, _ = net.load_state_dict(state, strict=False)
    if [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(f"{p}: not torchvision ResNet weights (missing {missing[:3]} ...)")


def _trunk_channels(cfg: EncoderConfig) -> tuple[int, int, int]:
    if cfg.trunk == "resnet18-small":
        return tuple(cfg.small_widths)
    if cfg.trunk == "resnet50":
        return 256, 512, 1024
    return 64, 128, 256


class StyleHead(nn.Module):
    """(B, C, S, S) -> (B, latent_dim): log2(S) stride-2 convs down to 1x1, then linear."""

    def __init__(self, in_channels: int, latent_dim: int, spatial: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(max(1, int(math.log2(spatial)))):
            layers += [nn.Conv2d(c, width, 3, 2, 1), nn.LeakyReLU(0.01)]
            c = width
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(width, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)  # (B, width, s, s), s = 1 when the input is a power of two
        return self.linear(x.mean((2, 3)))


class Encoder(nn.Module):
    """Domain image (B, in_channels, S, S) -> latents (B, num_ws, latent_dim)."""

    def __init__(self, cfg: EncoderConfig, input_size: int, w_avg: torch.Tensor | None = None):
        super().__init__()
        if cfg.trunk not in TRUNKS:
            raise ValueError(f"encoder trunk must be one of {', '.join(TRUNKS)}, got {cfg.trunk!r}")
        if input_size < 16:
            raise ValueError(f"encoder input size must be >= 16 (three stride-2 stages), got {input_size}")
        self.cfg = cfg
        self.input_size = input_size
        if cfg.trunk == "resnet18-small":
            self.trunk = SmallTrunk(cfg.in_channels, cfg.small_widths)
        else:
            self.trunk = TorchvisionTrunk(cfg.trunk, cfg.in_channels, cfg.trunk_weights)
        ch1, ch2, ch3 = _trunk_channels(cfg)
        self.lateral2 = nn.Conv2d(ch2, ch3, 1)
        self.lateral1 = nn.Conv2d(ch1, ch3, 1)
        s1, s2, s3 = input_size // 4, input_size // 8, input_size // 16
        self.coarse_end, self.middle_end = style_split(cfg.num_ws)
        spatial = [s3] * self.coarse_end + [s2] * (self.middle_end - self.coarse_end) + [s1] * (cfg.num_ws - self.middle_end)
        width = cfg.head_channels or (ch3 if cfg.trunk == "resnet18-small" else cfg.latent_dim)
        self.heads = nn.ModuleList(StyleHead(ch3, cfg.latent_dim, s, width) for s in spatial)
        if w_avg is None or cfg.latent_kind == "z":  # a z encoder is centred on the prior mean, 0
            avg = torch.zeros(cfg.latent_dim)
        else:
            avg = w_avg.detach().float().reshape(cfg.latent_dim)
        self.register_buffer("w_avg", avg.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = self.trunk(x)  # (B, ch1, S/4), (B, ch2, S/8), (B, ch3, S/16)
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=False) + self.lateral2(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=False) + self.lateral1(c1)
        sources = [c3] * self.coarse_end + [p2] * (self.middle_end - self.coarse_end) + [p1] * (self.cfg.num_ws - self.middle_end)
        codes = torch.stack([head(src) for head, src in zip(self.heads, sources)], dim=1)  # (B, num_ws, D)
        if self.cfg.latent_kind in LATENT_KINDS_WITHOUT_OFFSET:
            return codes
        return codes + self.w_avg.view(1, 1, -1)
