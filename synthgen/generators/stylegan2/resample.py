"""FIR up/down-sampling (upfirdn2d) in plain torch: upsample by zero insertion, pad, filter, downsample.

StyleGAN2 low-pass filters every 2x resampling with the separable [1, 3, 3, 1] kernel
(Karras et al. 2020, after "Making Convolutional Networks Shift-Invariant Again").
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """1-D taps -> normalized 2-D kernel (outer product), summing to 1."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def separable_taps(taps: Sequence[float]) -> list[float]:
    """1-D taps normalized so that their outer product is make_kernel(taps)."""
    total = float(sum(taps))
    return [float(t) / total for t in taps]


def _correlate_1d(x: torch.Tensor, taps: Sequence[float], dim: int) -> torch.Tensor:
    """Unnormalised by taps[0]: returns correlate(x, taps) / taps[0] (the caller scales once).

    Shifted slices instead of a 1-channel conv: much cheaper forward and backward on CPU.
    Symmetric taps (every StyleGAN2 kernel) pair up: [1, 3, 3, 1] is (x0 + x3) + 3 (x1 + x2),
    three passes over the map instead of seven.
    """
    k = len(taps)
    n = x.shape[dim] - k + 1
    pairs = k // 2 if all(taps[i] == taps[k - 1 - i] for i in range(k)) else 0
    out = None
    for i in range(pairs):
        pair = x.narrow(dim, i, n) + x.narrow(dim, k - 1 - i, n)
        out = pair if out is None else out.add_(pair, alpha=taps[i] / taps[0])
    for i in range(pairs, k - pairs):
        term = x.narrow(dim, i, n)
        out = term * (taps[i] / taps[0]) if out is None else out.add_(term, alpha=taps[i] / taps[0])
    return out


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor | Sequence[float], up: int = 1, down: int = 1,
    pad: tuple[int, int] = (0, 0), gain: float = 1.0,
) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H', W'); pads are (before, after) on both axes; negative pads crop.

    kernel: 1-D taps (separable: the filter is their outer product) or a 2-D tensor.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    if isinstance(kernel, torch.Tensor) and kernel.ndim == 2:
        # A true convolution (conv2d correlates, so the kernel is flipped), depthwise.
        weight = torch.flip(kernel, [0, 1])[None, None].to(x).expand(c, 1, -1, -1)
        x = F.conv2d(x, weight * gain, groups=c)
    else:
        taps = [float(t) for t in kernel][::-1]
        x = _correlate_1d(_correlate_1d(x, taps, 2), taps, 3)
        scale = gain * taps[0] * taps[0]  # the two passes' taps[0] and the gain, in one pass
        if scale != 1.0:
            x = x.mul_(scale)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class Blur(nn.Module):
    """Low-pass filter with fixed padding; after a stride-2 transposed conv the gain is factor**2."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        # No buffer: the kernel follows from the config, so checkpoints need not carry it.
        self.taps = separable_taps(taps)
        self.gain = float(upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.taps, pad=self.pad, gain=self.gain)


class Upsample(nn.Module):
    """2x upsampling of the RGB skip path (StyleGAN2 Fig. 7b)."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.taps = separable_taps(taps)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.taps, up=self.factor, pad=self.pad, gain=float(self.factor**2))


class Downsample(nn.Module):
    """2x downsampling (discriminator skip path)."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.taps = separable_taps(taps)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.taps, down=self.factor, pad=self.pad)
