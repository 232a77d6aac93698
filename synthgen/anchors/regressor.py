"""The weak regressor R_d: generator features -> domain image (paper sec. 3.2, Table 3).

1x1 convolutions C -> 128 -> 64 -> 64 -> 32 -> 32 -> out, each block Conv -> ReLU ->
BatchNorm, no output activation. It is weak on purpose: a per-pixel map cannot invent
structure, so the domain's layout must come from the generator's features, which is what
anchors the domain to G's latent space (a strong regressor breaks anchoring: FID 155 vs 84).
BatchNorm re-standardises every batch, so it can blow tiny feature differences up into a
whole mask: with a small generator the encoder then parks every input at nearly the same
latent and the regressor reads the domain out of the residue. `batch_norm=False` removes
that amplifier (the built-in world's anchors use it).

`finest_channels` > 0 adds a second head of the same widths that reads only the finest
(last) map of a multi-resolution tap, and the output is the mean of the two heads' outputs
(for masks: the normalised product of their class probabilities). On a small generator the
coarse levels carry the layout the encoder *meant* (a file's hairstyle), which the training
pairs reward because G draws it only loosely, while the finest map says what the photo
shows; the parts need the coarse levels. Each head is trained on its own loss, so the
finest one cannot lean on the coarse levels, and the mean reads large regions from what is
drawn and parts from where they are laid out (docs/anchors.md, "Two heads").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.anchors.config_io import JsonConfig
from synthgen.anchors.pointwise import PointwiseLayer, pointwise_tiled


# The paper's "deeper" weak head: hidden 1x1 conv widths (Table 3).
PAPER_WIDTHS: tuple[int, ...] = (128, 64, 64, 32, 32)


@dataclass
class RegressorConfig(JsonConfig):
    tuple_fields: ClassVar[tuple[str, ...]] = ("widths",)

    in_channels: int = 128  # channels of the generator tap it reads (FrozenGenerator.tap_channels)
    out_channels: int = 19  # the domain spec's out_channels
    widths: tuple[int, ...] = PAPER_WIDTHS  # hidden 1x1 conv widths
    out_size: int | None = None  # output side; None = the feature tap's resolution
    batch_norm: bool = True  # the paper's BatchNorm after each hidden layer (see Regressor)
    finest_channels: int = 0  # > 0: a second head reads only the tap's finest map (this many channels); 0 = one head


class Regressor(nn.Module):
    """features (B, in_channels, R, R), or a list of maps whose channels add up to in_channels
    (a multi-resolution tap) -> raw domain output (B, out_channels, out_size, out_size)."""

    def __init__(self, cfg: RegressorConfig):
        super().__init__()
        self.cfg = cfg
        self.net = _head(cfg.in_channels, cfg.widths, cfg.out_channels, cfg.batch_norm)
        self.finest = _head(cfg.finest_channels, cfg.widths, cfg.out_channels, cfg.batch_norm) if cfg.finest_channels else None

    def forward(self, features: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        return mean_of_heads(self.head_outputs(features))

    def head_outputs(self, features: torch.Tensor | list[torch.Tensor],
                     detach_finest: bool = False) -> list[torch.Tensor]:
        """Each head's raw output (B, out_channels, side, side): the main head's, then the finest map's
        (read from a detached copy of the map with `detach_finest`: its loss then trains that head only)."""
        maps = [features] if isinstance(features, torch.Tensor) else list(features)
        side = self.cfg.out_size or max(m.shape[-1] for m in maps)
        channels = sum(m.shape[1] for m in maps)
        if channels != self.net[0].in_channels:
            raise ValueError(f"regressor reads {self.net[0].in_channels} feature channels, got {channels}")
        outputs = [self._run(self.net, maps, side)]
        if self.finest is not None:
            finest = maps[-1]
            if finest.shape[1] != self.cfg.finest_channels:
                raise ValueError(f"the regressor's finest head reads {self.cfg.finest_channels} channels, "
                                 f"the tap's last map has {finest.shape[1]}")
            outputs.append(self._run(self.finest, [finest.detach() if detach_finest else finest], side))
        return outputs

    def add_output_bias(self, bias: torch.Tensor) -> None:
        """Shift the output by `bias` (out_channels,): every head's last bias, so their mean moves by it too."""
        with torch.no_grad():
            for head in self._heads():
                head[-1].bias += bias.to(head[-1].bias)

    def _heads(self) -> list[nn.Sequential]:
        return [self.net] + ([self.finest] if self.finest is not None else [])

    def _run(self, net: nn.Sequential, maps: list[torch.Tensor], side: int) -> torch.Tensor:
        # The cache-sized tiles are a CPU optimisation: on a GPU they become thousands of tiny
        # kernel launches per block, so there every layer runs once over the whole block's maps.
        if self._batch_statistics() or maps[0].device.type != "cpu":
            return self._forward_maps(net, maps, side)
        return pointwise_tiled(_layers(net), maps, side)

    def _batch_statistics(self) -> bool:
        """True while a BatchNorm layer normalises by the batch (training): the head then needs
        the whole batch's maps at once, so it runs as convolutions over full maps."""
        return any(isinstance(m, nn.BatchNorm2d) and m.training for m in self.modules())

    def _forward_maps(self, net: nn.Sequential, maps: list[torch.Tensor], side: int) -> torch.Tensor:
        first = net[0]
        # Resize the features, not the output: class logits and heatmaps stay per-pixel. A 1x1
        # conv commutes with bilinear resizing (both linear; interpolation weights sum to 1), so
        # each map meets its slice of the first conv at the smaller of its side and the output's:
        # a multi-resolution tap then costs about what one full-resolution map does.
        total, lo = None, 0
        for m in maps:
            weight = first.weight[:, lo: lo + m.shape[1]]
            lo += m.shape[1]
            if m.shape[-1] > side:
                m = _resize(m, side)
            y = _resize(F.conv2d(m, weight), side).contiguous()
            total = y if total is None else total + y
        return net[1:](total + first.bias.view(1, -1, 1, 1)).contiguous()


def mean_of_heads(outputs: list[torch.Tensor]) -> torch.Tensor:
    """The regressor's output from its heads' outputs: the one head's, or the mean of two."""
    return outputs[0] if len(outputs) == 1 else (outputs[0] + outputs[1]) * 0.5


def _head(in_channels: int, widths: tuple[int, ...], out_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 1), nn.ReLU(inplace=True)] + ([nn.BatchNorm2d(w)] if batch_norm else [])
        c = w
    layers.append(nn.Conv2d(c, out_channels, 1))
    return nn.Sequential(*layers)


def _layers(net: nn.Sequential) -> list[PointwiseLayer]:
    """A head as per-pixel affine maps, BatchNorm (running statistics) folded in."""
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    norms = [m for m in net if isinstance(m, nn.BatchNorm2d)]
    layers = []
    for i, conv in enumerate(convs):
        weight, bias = conv.weight[:, :, 0, 0], conv.bias
        if norms and i > 0:
            # BN after the previous ReLU: y = a * h + c feeds this conv, so W(a h + c) + b
            # = (W a) h + (W c + b): the same map with one pass less.
            scale, shift = _batch_norm_affine(norms[i - 1])
            bias = bias + weight @ shift
            weight = weight * scale
        layers.append(PointwiseLayer(weight, bias, relu=i < len(convs) - 1))
    return layers


def _batch_norm_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    if x.shape[-1] == side:
        return x
    # Channels-last: CPU bilinear resizing is about 10x faster there than on NCHW maps.
    x = x.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
