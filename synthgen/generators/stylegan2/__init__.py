"""StyleGAN2 (Karras et al. 2020) in plain torch: trainable generator, discriminator, frozen wrapper."""
from synthgen.generators.stylegan2.config import ConfigError, StyleGAN2Config
from synthgen.generators.stylegan2.discriminator import StyleGAN2Discriminator
from synthgen.generators.stylegan2.frozen import FrozenStyleGAN2
from synthgen.generators.stylegan2.generator import StyleGAN2Generator
from synthgen.generators.stylegan2.latents import mix_latents, truncate

__all__ = [
    "ConfigError", "FrozenStyleGAN2", "StyleGAN2Config", "StyleGAN2Discriminator",
    "StyleGAN2Generator", "mix_latents", "truncate",
]
