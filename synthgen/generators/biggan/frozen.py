"""BigGAN-deep behind the FrozenGenerator interface: latent z (B, 1, z_dim), class fixed per instance.

BigGAN's batch-norm statistics depend on the truncation. The instance's `truncation` is what
synthesis uses; `map(z, psi)` scales z by psi and adopts psi, so sampling by index reproduces the
reference sampler (z ~ truncnorm(-2, 2) * psi with psi's statistics).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from synthgen.generators.base import FrozenGenerator, Synthesis
from synthgen.generators.biggan.model import BigGANConfig, BigGANDeep
from synthgen.generators.errors import CheckpointError
from synthgen.generators.state import load_state_strict
from synthgen.seeding import index_rng

TRUNC_BOUND = 2.0  # z ~ N(0, 1) restricted to [-2, 2] (BigGAN's truncation trick)


def truncated_normal(seed: int, index: int, dim: int) -> np.ndarray:
    """(dim,) standard normal restricted to [-2, 2], by rejection; depends only on (seed, index)."""
    rng = index_rng(seed, index, 0)
    z = rng.standard_normal(dim)
    bad = np.abs(z) > TRUNC_BOUND
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > TRUNC_BOUND
    return z.astype(np.float32)


class FrozenBigGAN(FrozenGenerator):
    latent_kind = "z+class"
    num_ws = 1

    def __init__(self, model: BigGANDeep, class_index: int = 0, truncation: float = 1.0):
        super().__init__()
        cfg = model.cfg
        if not 0 <= int(class_index) < cfg.num_classes:
            raise ValueError(f"class_index must be in [0, {cfg.num_classes}), got {class_index}")
        self.model = model
        self.cfg = cfg
        self.class_index = int(class_index)
        self.truncation = float(truncation)
        self.latent_dim = self.z_dim = cfg.z_dim
        self.resolution = self.feature_resolution = int(cfg.output_dim)
        self.feature_channels = cfg.channel_width
        self.register_buffer("_w_avg", torch.zeros(cfg.z_dim), persistent=False)
        self.freeze()

    @classmethod
    def from_state(cls, cfg: BigGANConfig, state: dict[str, torch.Tensor], class_index: int | str = 0,
                   source: Path | str = "", truncation: float = 1.0) -> "FrozenBigGAN":
        model = BigGANDeep(cfg)
        load_state_strict(model, {k.removeprefix("model."): v for k, v in state.items()}, Path(source))
        try:
            return cls(model, class_index=int(class_index), truncation=truncation)
        except ValueError as exc:
            raise CheckpointError(source, str(exc)) from None

    @property
    def kind(self) -> str:
        return "biggan-deep"

    @property
    def w_avg(self) -> torch.Tensor:
        return self._w_avg

    def sample_z(self, indices: Sequence[int], seed: int) -> torch.Tensor:
        rows = [truncated_normal(seed, i, self.z_dim) for i in indices]
        z = np.stack(rows) if rows else np.zeros((0, self.z_dim), np.float32)
        return torch.from_numpy(z).to(self._w_avg.device)

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        if not 0 < truncation_psi <= 1:
            raise ValueError(f"BigGAN truncation must be in (0, 1], got {truncation_psi}")
        self.truncation = float(truncation_psi)
        return (z.to(self._w_avg.device) * truncation_psi)[:, None]  # (B, 1, z_dim)

    def synthesize(self, latents: torch.Tensor, noise_seeds: torch.Tensor | None = None,
                   taps: Sequence[str] = ()) -> Synthesis:
        self.check_taps(taps)  # BigGAN offers its default tap only
        if latents.ndim != 3 or tuple(latents.shape[1:]) != (1, self.z_dim):
            raise ValueError(f"latents must be (B, 1, {self.z_dim}), got {tuple(latents.shape)}")
        z = latents[:, 0].to(self._w_avg.device)
        onehot = torch.zeros(z.shape[0], self.cfg.num_classes, device=z.device, dtype=z.dtype)
        onehot[:, self.class_index] = 1
        features, rgb = self.model(z, onehot, self.truncation)
        return Synthesis(features=features, rgb=rgb)

    def describe(self) -> dict:
        return {"kind": self.kind, "resolution": self.resolution, "num_ws": 1, "latent_dim": self.z_dim,
                "z_dim": self.z_dim, "class_index": self.class_index, "truncation": self.truncation,
                "feature_channels": self.feature_channels, "feature_resolution": self.feature_resolution}
