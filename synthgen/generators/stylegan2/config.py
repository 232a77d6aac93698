"""StyleGAN2 architecture hyper-parameters (Karras et al. 2020, config F and smaller)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from synthgen.errors import UserError


class ConfigError(ValueError, UserError):
    """An impossible architecture, e.g. a resolution that is not a power of two."""


@dataclass
class StyleGAN2Config:
    size: int = 256  # output resolution: a power of two in [32, 1024]
    z_dim: int = 512  # input noise dim; may differ from w_dim (the first MLP layer maps z_dim -> w_dim)
    w_dim: int = 512  # style dim: one w per synthesis layer (w+ has num_ws of them)
    n_mlp: int = 8  # mapping network depth (8 in the paper)
    channel_multiplier: int = 2  # rosinality's width knob: 2 = config F
    channel_base: int = 16384  # channels at resolution r = min(channel_max, channel_base * multiplier // r)
    channel_max: int = 512  # cap on channels at the low resolutions
    channels: dict[int, int] | None = None  # explicit {resolution: channels}; overrides the formula
    lr_mlp: float = 0.01  # equalized-lr multiplier of the mapping network (paper: 0.01)
    normalize_z: bool = True  # PixelNorm on z before the MLP (every public checkpoint does)
    blur_kernel: tuple[float, ...] = (1, 3, 3, 1)  # FIR taps of every 2x up/down sampling (normalized)
    conv_clamp: float | None = None  # clamp of conv outputs (NVIDIA's pkls use 256; rosinality none)

    def __post_init__(self) -> None:
        self.blur_kernel = tuple(int(k) if float(k).is_integer() else float(k) for k in self.blur_kernel)
        if self.channels is not None:
            self.channels = {int(r): int(c) for r, c in self.channels.items()}
        if self.size < 32 or self.size > 1024 or 2 ** round(math.log2(self.size)) != self.size:
            raise ConfigError(f"StyleGAN2 size must be a power of two in [32, 1024], got {self.size}")
        for r in self.resolutions:
            if self.channels_at(r) <= 0:
                raise ConfigError(f"StyleGAN2 channels at {r}px must be positive, got {self.channels_at(r)}")
        if min(self.z_dim, self.w_dim, self.n_mlp) <= 0:
            raise ConfigError("StyleGAN2 z_dim, w_dim and n_mlp must be positive")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def resolutions(self) -> list[int]:
        """4, 8, ..., size."""
        return [2**i for i in range(2, self.log_size + 1)]

    @property
    def num_layers(self) -> int:
        """Styled convs: one at 4x4, two at every higher resolution."""
        return 2 * self.log_size - 3

    @property
    def num_ws(self) -> int:
        """Styles consumed: one per conv plus the last ToRGB (the others share a conv's index)."""
        return 2 * self.log_size - 2

    def channels_at(self, resolution: int) -> int:
        if self.channels is not None:
            if resolution not in self.channels:
                raise ConfigError(f"StyleGAN2 channels dict has no entry for {resolution}px")
            return self.channels[resolution]
        return min(self.channel_max, self.channel_base * self.channel_multiplier // resolution)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["blur_kernel"] = list(self.blur_kernel)
        # Resolved channels make the stored config independent of the formula's defaults.
        d["channels"] = {str(r): self.channels_at(r) for r in self.resolutions}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StyleGAN2Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown StyleGAN2 config fields: {sorted(unknown)}")
        return cls(**d)


def layer_resolution(layer: int) -> int:
    """Resolution of styled conv `layer` (0 = the 4x4 conv; then two per resolution)."""
    return 2 ** ((layer + 5) // 2)
