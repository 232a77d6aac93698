"""Named StyleGAN2 architectures, as data, and random-weight construction from them."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from synthgen.generators.stylegan2 import FrozenStyleGAN2, StyleGAN2Config, StyleGAN2Generator

PRESETS: dict[str, StyleGAN2Config] = {
    # 32px, a few thousand parameters' worth of channels: for tests, runs in milliseconds.
    "tiny": StyleGAN2Config(
        size=32, z_dim=16, w_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16, 32: 16},
    ),
    # The built-in default: 64x64, z_dim 64 = the ToyFaces renderer's Z_DIM, so the
    # renderer's z for sample i is the generator's z for sample i. It is trained by
    # regression onto render(z), not as a GAN: raw z (the renderer reads |z| too) and a
    # mapping network that learns at the full rate.
    "toyfaces64": StyleGAN2Config(
        size=64, z_dim=64, w_dim=256, n_mlp=4, channels={4: 256, 8: 256, 16: 128, 32: 64, 64: 32},
        lr_mlp=1.0, normalize_z=False,
    ),
    # The shipped default since it was trained on a GPU: toyfaces64 with twice the channels
    # at 16-64 px, so the last feature maps (what the anchors read) can carry small parts.
    "toyfaces64-wide": StyleGAN2Config(
        size=64, z_dim=64, w_dim=256, n_mlp=4, channels={4: 256, 8: 256, 16: 256, 32: 128, 64: 64},
        lr_mlp=1.0, normalize_z=False,
    ),
    # The FFHQ architectures of the public checkpoints (rosinality config F).
    "ffhq256": StyleGAN2Config(size=256, channel_multiplier=2),
    "ffhq1024": StyleGAN2Config(size=1024, channel_multiplier=2),
}


def resolve_config(preset_or_config: str | StyleGAN2Config) -> StyleGAN2Config:
    if isinstance(preset_or_config, StyleGAN2Config):
        return preset_or_config
    if preset_or_config not in PRESETS:
        raise KeyError(f"unknown StyleGAN2 preset {preset_or_config!r}; choose one of {sorted(PRESETS)}")
    return StyleGAN2Config.from_dict(PRESETS[preset_or_config].to_dict())


def build_stylegan2(preset_or_config: str | StyleGAN2Config, seed: int = 0) -> StyleGAN2Generator:
    """A trainable generator with random weights and noise buffers, deterministic given seed."""
    cfg = resolve_config(preset_or_config)
    with seeded_torch(seed):
        return StyleGAN2Generator(cfg)


def build_generator(preset_or_config: str | StyleGAN2Config, seed: int = 0, **frozen_kwargs) -> FrozenStyleGAN2:
    """A frozen random-weight StyleGAN2 (w_avg from 10k fixed-seed z); kwargs go to FrozenStyleGAN2."""
    return FrozenStyleGAN2(build_stylegan2(preset_or_config, seed), **frozen_kwargs)


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
