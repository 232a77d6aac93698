"""The synthesis network g: w+ -> image (StyleGAN2 skip generator, Fig. 7b)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from synthgen.generators.stylegan2.config import StyleGAN2Config, layer_resolution
from synthgen.generators.stylegan2.styled_conv import StyledConv
from synthgen.generators.stylegan2.to_rgb import ToRGB


class ConstantInput(nn.Module):
    """The learned 4x4 input that replaces z at the top of the generator."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)  # (B, C, 4, 4)


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> rgb (B, 3, size, size) and the outputs of chosen styled convs.

    Styled conv `layer` 0 is the 4x4 conv; layers 2k+1, 2k+2 are the (upsampling, plain) convs of
    resolution 2^(k+3). Style indices: conv `layer` reads w[layer]; the ToRGB after layer l reads
    w[l + 1]. Noise buffers `noises.noise_{layer}` (1, 1, R, R) are the constant noise.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        k, w_dim, clamp = cfg.blur_kernel, cfg.w_dim, cfg.conv_clamp
        c4 = cfg.channels_at(4)
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, w_dim, blur_kernel=k, clamp=clamp)
        self.to_rgb1 = ToRGB(c4, w_dim, upsample=False, clamp=clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = c4
        for res in cfg.resolutions[1:]:
            out_ch = cfg.channels_at(res)
            self.convs.append(StyledConv(in_ch, out_ch, 3, w_dim, upsample=True, blur_kernel=k, clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, w_dim, blur_kernel=k, clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, w_dim, blur_kernel=k, clamp=clamp))
            in_ch = out_ch
        self.noises = nn.Module()
        for layer in range(cfg.num_layers):
            r = layer_resolution(layer)
            self.noises.register_buffer(f"noise_{layer}", torch.randn(1, 1, r, r))

    def const_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.cfg.num_layers)]

    def random_noise(self, batch: int) -> list[torch.Tensor]:
        ref = self.input.input
        return [
            torch.randn(batch, 1, layer_resolution(i), layer_resolution(i), device=ref.device, dtype=ref.dtype)
            for i in range(self.cfg.num_layers)
        ]

    def forward(
        self, ws: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None,
        tap_layers: Sequence[int] = (),
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """ws (B, num_ws, w_dim); noise: one (B|1, 1, R, R) per layer, None entries = no noise,
        None = the constant buffers. Returns rgb (B, 3, size, size) and {layer: (B, C, R, R)}."""
        if noise is None:
            noise = self.const_noise()
        taps: dict[int, torch.Tensor] = {}
        # Channels-last all the way down: CPU (oneDNN) convolutions, transposed ones above all,
        # run up to 2-4x faster on NHWC maps, and every elementwise pass keeps the layout.
        x = self.input(ws.shape[0]).contiguous(memory_format=torch.channels_last)
        x = self.conv1(x, ws[:, 0], noise[0])
        if 0 in tap_layers:
            taps[0] = x
        skip = self.to_rgb1(x, ws[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            for j in (2 * k, 2 * k + 1):
                layer = j + 1
                x = self.convs[j](x, ws[:, layer], noise[layer])
                if layer in tap_layers:
                    taps[layer] = x
            skip = to_rgb(x, ws[:, 2 * k + 3], skip)
        return skip, taps
