"""A StyleGAN2 generator behind the FrozenGenerator interface, with a configurable feature tap.

The tap is what anchoring regressors read. The method's official code reads the two conv
outputs at the regressor's resolution, concatenated ("last2"); the default here is the last conv
output at the output resolution ("last", the input of the last ToRGB). Low resolutions anchor
badly (paper Table 3), so `tap_resolution` exists for experiments, not as a default.

Anchors may also read the extra tap "pyramid": the last conv output of each of the
PYRAMID_LEVELS highest resolutions, which a regressor resizes to its working side and
stacks. A small generator draws a part's layout at 16-32 px and only refines texture at
the last block, so a 1x1 head reads the parts far better from the pyramid (docs/anchors.md).
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import numpy as np
import torch

from synthgen.generators.base import FrozenGenerator, Synthesis
from synthgen.generators.stylegan2.config import StyleGAN2Config, layer_resolution
from synthgen.generators.stylegan2.generator import StyleGAN2Generator
from synthgen.seeding import index_rng

TAPS = ("last", "last2")
# Stream of synthgen.seeding used for per-sample noise maps (stream 0 is the latent z).
NOISE_STREAM = 1
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PYRAMID_LEVELS = 3


def pyramid_layers(cfg: StyleGAN2Config) -> list[int]:
    """Styled-conv layers of the "pyramid" tap: the last conv of the top resolutions, coarse first."""
    return [tap_layers(cfg, "last", res)[0] for res in cfg.resolutions[-PYRAMID_LEVELS:]]


# Extra taps anchors may read: name -> the styled-conv layers it stacks (one table for the
# offer, the channel count and the pass).
PYRAMID_TAP = "pyramid"
EXTRA_TAP_LAYERS = {PYRAMID_TAP: pyramid_layers}


def tap_layers(cfg: StyleGAN2Config, tap: str = "last", tap_resolution: int | None = None) -> list[int]:
    """Styled-conv layers whose outputs form the feature tap."""
    if tap not in TAPS:
        raise ValueError(f"tap must be one of {TAPS}, got {tap!r}")
    res = cfg.size if tap_resolution is None else int(tap_resolution)
    if res not in cfg.resolutions:
        raise ValueError(f"tap_resolution must be one of {cfg.resolutions}, got {tap_resolution}")
    if res == 4:
        if tap == "last2":
            raise ValueError("tap 'last2' needs two convs; the 4x4 block has one")
        return [0]
    last = 2 * int(math.log2(res)) - 4
    return [last - 1, last] if tap == "last2" else [last]


def seeded_noise(noise_seeds: torch.Tensor, num_layers: int, device: torch.device) -> list[torch.Tensor]:
    """Per-sample noise maps: sample b's map for layer l depends only on (noise_seeds[b], l)."""
    maps = []
    for layer in range(num_layers):
        r = layer_resolution(layer)
        rows = [index_rng(int(s), layer, NOISE_STREAM).standard_normal((1, r, r), dtype=np.float32) for s in noise_seeds.tolist()]
        maps.append(torch.from_numpy(np.stack(rows)).to(device))  # (B, 1, R, R)
    return maps


class FrozenStyleGAN2(FrozenGenerator):
    latent_kind = "w+"
    extra_taps = tuple(EXTRA_TAP_LAYERS)

    def __init__(
        self, generator: StyleGAN2Generator, w_avg: torch.Tensor | None = None, tap: str = "last",
        tap_resolution: int | None = None, noise_mode: str = "const", autocast_dtype: str | None = None,
    ):
        super().__init__()
        cfg = generator.cfg
        self.generator = generator
        self.cfg = cfg
        if w_avg is None:
            w_avg = generator.mean_w()
        self.register_buffer("latent_avg", w_avg.detach().reshape(cfg.w_dim).float().clone())
        self.tap = tap
        self.tap_resolution = cfg.size if tap_resolution is None else int(tap_resolution)
        self._tap_layers = tap_layers(cfg, tap, tap_resolution)
        if noise_mode not in ("const", "zero"):
            raise ValueError(f"frozen noise_mode must be 'const' or 'zero' (per-sample noise uses noise_seeds), got {noise_mode!r}")
        self.noise_mode = noise_mode
        if autocast_dtype is not None and autocast_dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast_dtype must be one of {sorted(AUTOCAST_DTYPES)} or None, got {autocast_dtype!r}")
        self.autocast_dtype = autocast_dtype
        self.num_ws = cfg.num_ws
        self.latent_dim = cfg.w_dim
        self.z_dim = cfg.z_dim
        self.resolution = cfg.size
        self.feature_resolution = self.tap_resolution
        self.feature_channels = cfg.channels_at(self.tap_resolution) * len(self._tap_layers)
        self.freeze()

    @property
    def w_avg(self) -> torch.Tensor:
        return self.latent_avg

    @property
    def kind(self) -> str:
        return "stylegan2"

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.generator.w_plus(z.to(self.latent_avg.device), truncation_psi, self.latent_avg)

    def tap_channels(self, tap: str) -> int:
        if tap in EXTRA_TAP_LAYERS:
            return sum(self.cfg.channels_at(layer_resolution(layer)) for layer in EXTRA_TAP_LAYERS[tap](self.cfg))
        return super().tap_channels(tap)

    def finest_tap_channels(self, tap: str) -> int:
        if tap in EXTRA_TAP_LAYERS:
            return self.cfg.channels_at(layer_resolution(EXTRA_TAP_LAYERS[tap](self.cfg)[-1]))
        return super().finest_tap_channels(tap)

    def synthesize(self, latents: torch.Tensor, noise_seeds: torch.Tensor | None = None,
                   taps: Sequence[str] = ()) -> Synthesis:
        extra = self.check_taps(taps)
        expected = (self.num_ws, self.latent_dim)
        if latents.ndim != 3 or tuple(latents.shape[1:]) != expected:
            raise ValueError(f"latents must be (B, {expected[0]}, {expected[1]}), got {tuple(latents.shape)}")
        device = self.latent_avg.device
        noise: Sequence[torch.Tensor | None] | None
        if noise_seeds is not None:
            noise = seeded_noise(torch.as_tensor(noise_seeds).reshape(-1), self.cfg.num_layers, device)
        else:
            noise = self.generator.noise_list(self.noise_mode, latents.shape[0])
        use_autocast = self.autocast_dtype is not None and device.type == "cuda"
        extra_layers = {tap: EXTRA_TAP_LAYERS[tap](self.cfg) for tap in extra}
        layers = sorted(set(self._tap_layers).union(*extra_layers.values()))
        # Without its own autocast dtype the generator runs under the caller's autocast (sample
        # --dtype): an autocast(enabled=False) here would switch that off for the synthesis only.
        context = (torch.autocast("cuda", dtype=AUTOCAST_DTYPES[self.autocast_dtype]) if use_autocast
                   else contextlib.nullcontext())
        with context:
            rgb, outputs = self.generator.synthesis(latents.to(device), noise, layers)
        features = torch.cat([outputs[layer] for layer in self._tap_layers], dim=1)  # (B, C, R, R)
        named = {tap: [outputs[layer].float() for layer in levels] for tap, levels in extra_layers.items()}
        return Synthesis(features=features.float(), rgb=rgb.float(), taps=named)

    def describe(self) -> dict:
        return {
            "kind": self.kind, "resolution": self.resolution, "num_ws": self.num_ws,
            "latent_dim": self.latent_dim, "z_dim": self.z_dim, "tap": self.tap,
            "feature_channels": self.feature_channels, "feature_resolution": self.feature_resolution,
        }
