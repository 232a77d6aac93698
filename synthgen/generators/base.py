"""The interface every frozen backbone implements (docs/architecture.md, "Generators").

Latents are always a tensor (B, num_ws, latent_dim):
- StyleGAN2: w+ (num_ws entries of w, latent_dim = w_dim);
- BigGAN-deep: z (num_ws = 1, latent_dim = z_dim), the class is a property of the
  generator instance (chosen when it is loaded), w_avg is zeros.

`synthesize` returns the feature tap and the photo in one pass. StyleGAN2's image is
the sum of the ToRGB outputs of every resolution (skip architecture), so the photo
cannot be computed from the last feature map alone; the `rgb` domain's "regressor"
is therefore the generator's own image path, which `synthesize` runs alongside.

Extra named taps (`taps=("pyramid",)`) come out of the same pass in `Synthesis.taps`, so
anchors that read different layers still share one generator pass.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from synthgen.errors import UserError
from synthgen.seeding import per_index_normal


@dataclass
class Synthesis:
    features: torch.Tensor  # (B, feature_channels, H, W): the tap the regressors read
    rgb: torch.Tensor  # (B, 3, resolution, resolution) in [-1, 1]
    # Extra named taps asked for in synthesize(taps=...): each a list of (B, C_k, R_k, R_k) maps
    # at their own resolutions (the reader resizes them, so none is upsampled needlessly).
    taps: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def photo(self, size: int | None = None) -> torch.Tensor:
        """The photo (B, 3, size, size): `rgb` resized (bilinear, antialiased) where its side differs;
        size None: G's own resolution. The one rule for the `rgb` domain's output side."""
        return photo_at(self.rgb, size)


def photo_at(rgb: torch.Tensor, size: int | None) -> torch.Tensor:
    """G's photo (B, 3, R, R) at side `size`: bilinear, antialiased where the side differs (Synthesis.photo)."""
    if size is None or rgb.shape[-1] == size:
        return rgb
    return nn.functional.interpolate(rgb, size=(size,) * 2, mode="bilinear", align_corners=False, antialias=True)


DEFAULT_TAP = "default"  # the generator's own feature tap (Synthesis.features)


class TapError(ValueError, UserError):
    """A feature tap this generator cannot produce."""


class FrozenGenerator(nn.Module, abc.ABC):
    """A pretrained generator that never trains: eval mode, no gradients to its weights."""

    latent_kind: str  # "w+" or "z+class"
    num_ws: int
    latent_dim: int
    z_dim: int
    resolution: int
    feature_channels: int
    feature_resolution: int

    # -- latents -----------------------------------------------------------------
    def sample_z(self, indices: Sequence[int], seed: int) -> torch.Tensor:
        """(B, z_dim) standard-normal z; row k depends only on (seed, indices[k])."""
        z = per_index_normal(seed, indices, self.z_dim, stream=0)
        return torch.from_numpy(z).to(self.w_avg.device)

    @abc.abstractmethod
    def map(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (B, z_dim) -> latents (B, num_ws, latent_dim), truncated toward w_avg."""

    def sample_latents(
        self, indices: Sequence[int], seed: int, truncation_psi: float = 1.0
    ) -> torch.Tensor:
        """Latents for sample indices: a pure function of (weights, seed, index, psi)."""
        return self.map(self.sample_z(indices, seed), truncation_psi)

    @property
    @abc.abstractmethod
    def w_avg(self) -> torch.Tensor:
        """(latent_dim,) the average latent: encoders predict offsets from it."""

    # -- synthesis ---------------------------------------------------------------
    extra_taps: tuple[str, ...] = ()  # names synthesize(taps=...) accepts

    @abc.abstractmethod
    def synthesize(
        self, latents: torch.Tensor, noise_seeds: torch.Tensor | None = None, taps: Sequence[str] = ()
    ) -> Synthesis:
        """One pass: feature tap and photo. noise_seeds (B,) int64 draws per-sample noise;
        None uses the constant noise buffers (deterministic). taps: extra named taps to
        return in Synthesis.taps (DEFAULT_TAP is always there, as Synthesis.features)."""

    def tap_channels(self, tap: str) -> int:
        """Channels a regressor reading `tap` receives (all of the tap's maps, stacked)."""
        if tap == DEFAULT_TAP:
            return self.feature_channels
        self.check_taps([tap])
        raise NotImplementedError(f"{type(self).__name__} lists tap {tap!r} but does not size it")

    def finest_tap_channels(self, tap: str) -> int:
        """Channels of the last (finest) map of `tap`: what a regressor's finest head reads.
        A tap of one map is its own finest map; a generator with multi-resolution taps overrides."""
        return self.tap_channels(tap)

    def check_taps(self, taps: Sequence[str]) -> list[str]:
        """The extra taps to compute for `taps` (DEFAULT_TAP dropped); unknown names raise TapError."""
        extra = [t for t in dict.fromkeys(taps) if t != DEFAULT_TAP]
        for tap in extra:
            if tap not in self.extra_taps:
                offered = ", ".join((DEFAULT_TAP,) + self.extra_taps)
                raise TapError(f"a {self.kind} generator has no feature tap {tap!r} (it offers: {offered}); "
                               "fit the anchor with one of those (synthgen fit --feature-tap)")
        return extra

    # -- identity ----------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """sha256 over every weight and buffer in sorted-name order: which generator this is."""
        from synthgen.generators.fingerprint import state_fingerprint

        return state_fingerprint(self.state_dict())

    def freeze(self) -> "FrozenGenerator":
        self.eval()
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "FrozenGenerator":
        # A frozen generator stays in eval mode whatever its parent module does.
        return super().train(False)
