"""The mapping network f: Z -> W (Karras et al. 2019, sec. 2): PixelNorm then an equalized-lr MLP."""
from __future__ import annotations

import torch
from torch import nn

from synthgen.generators.stylegan2.equalized import EqualLinear


class PixelNorm(nn.Module):
    """z / sqrt(mean(z^2) + 1e-8): puts every z on the sphere of radius sqrt(z_dim)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Sequential):
    """(B, z_dim) -> (B, w_dim). Index 0 is PixelNorm, 1..n_mlp the linear layers (rosinality's
    `style.{i}` naming), and lr_mul = 0.01 slows the MLP 100x as in the paper.

    normalize_z=False replaces PixelNorm by the identity: a generator that must reproduce a
    function of raw z (the built-in one imitates the ToyFaces renderer) cannot discard |z|.
    """

    def __init__(self, z_dim: int, w_dim: int, n_mlp: int, lr_mul: float = 0.01, normalize_z: bool = True):
        layers: list[nn.Module] = [PixelNorm() if normalize_z else nn.Identity()]
        for i in range(n_mlp):
            layers.append(EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul, activate=True))
        super().__init__(*layers)
        self.z_dim = z_dim
        self.w_dim = w_dim
