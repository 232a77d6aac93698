"""The trainable StyleGAN2 generator: mapping network + synthesis network.

Kept apart from the frozen wrapper (frozen.py) so that the built-in generator can be trained
with the same module that is later frozen and served.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from synthgen.generators.stylegan2.config import StyleGAN2Config
from synthgen.generators.stylegan2.latents import truncate
from synthgen.generators.stylegan2.mapping import MappingNetwork
from synthgen.generators.stylegan2.synthesis import SynthesisNetwork

NOISE_MODES = ("const", "random", "zero")


class StyleGAN2Generator(nn.Module):
    """z (B, z_dim) -> w (B, w_dim) -> w+ (B, num_ws, w_dim) -> rgb (B, 3, size, size) in ~[-1, 1]."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.style = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.n_mlp, cfg.lr_mlp, cfg.normalize_z)
        self.synthesis = SynthesisNetwork(cfg)

    @property
    def num_ws(self) -> int:
        return self.cfg.num_ws

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) -> (B, w_dim)."""
        return self.style(z)

    def w_plus(self, z: torch.Tensor, truncation_psi: float = 1.0, w_avg: torch.Tensor | None = None) -> torch.Tensor:
        """(B, z_dim) -> (B, num_ws, w_dim): one w repeated on every layer, then truncated."""
        w = self.mapping(z)
        if truncation_psi != 1.0:
            if w_avg is None:
                raise ValueError("truncation needs w_avg")
            w = truncate(w, w_avg, truncation_psi)
        return w[:, None].expand(-1, self.num_ws, -1)

    @torch.no_grad()
    def mean_w(self, n: int = 10_000, seed: int = 0, chunk: int = 1000) -> torch.Tensor:
        """(w_dim,) mean of mapping(z) over n z from a fixed seed: w_avg when a checkpoint lacks one."""
        z_all = np.random.default_rng(seed).standard_normal((n, self.cfg.z_dim)).astype(np.float32)
        device = self.synthesis.input.input.device
        total = torch.zeros(self.cfg.w_dim, dtype=torch.float64, device=device)
        for start in range(0, n, chunk):
            z = torch.from_numpy(z_all[start : start + chunk]).to(device)
            total += self.mapping(z).double().sum(0)
        return (total / n).float()

    def noise_list(self, mode: str, batch: int) -> list[torch.Tensor | None] | None:
        if mode == "const":
            return None
        if mode == "random":
            return self.synthesis.random_noise(batch)
        if mode == "zero":
            return [None] * self.cfg.num_layers
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")

    def synthesize(
        self, ws: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None,
        noise_mode: str = "const", tap_layers: Sequence[int] = (),
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """ws (B, num_ws, w_dim) -> rgb, {layer: features}. Explicit `noise` wins over `noise_mode`."""
        if noise is None:
            noise = self.noise_list(noise_mode, ws.shape[0])
        return self.synthesis(ws, noise, tap_layers)

    def forward(
        self, z: torch.Tensor, truncation_psi: float = 1.0, w_avg: torch.Tensor | None = None,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        """z (B, z_dim) -> rgb (B, 3, size, size); random noise, as in training."""
        rgb, _ = self.synthesize(self.w_plus(z, truncation_psi, w_avg), noise_mode=noise_mode)
        return rgb
