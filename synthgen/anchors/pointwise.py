"""A per-pixel MLP over multi-resolution feature maps, run in cache-sized tiles.

The weak regressor is a stack of 1x1 convolutions, i.e. one small MLP applied to every pixel.
Run as convolutions over whole maps, every layer streams a (B, 128, S, S) tensor through
memory several times (convolution, bias, ReLU, the adds of a multi-resolution tap), which
costs more than the arithmetic; at 1024 px one such map is 512 MB per sample. Here each
sample is cut into tiles of whole rows (at most TILE_PIXELS pixels), and a tile goes through
every layer as (pixels, channels) matrix products while it stays in cache.

The first layer meets each input map at the map's own resolution (a 1x1 conv commutes with
bilinear resizing: both are linear and the interpolation weights sum to 1), and a tile's rows
and columns are then interpolated from that small result with the weights of
`F.interpolate(mode="bilinear", align_corners=False)`.

Tiles are cut per sample, at fixed rows, so a sample's arithmetic never depends on which
other samples share its batch (the determinism contract of docs/sampling.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from synthgen.inplace import add, relu

# 2048 pixels x 128 channels x 4 bytes = 1 MB (this CPU's L2 per core): half a 64-px sample,
# or 2 rows of a 1024-px one; 1024 and 4096 measured no faster (docs/sampling.md, "Benchmark").
TILE_PIXELS = 2048


@dataclass
class PointwiseLayer:
    weight: torch.Tensor  # (out, in)
    bias: torch.Tensor  # (out,)
    relu: bool


@dataclass
class _Level:
    """One input map, cut per sample: row blocks of the map (C, rows, S) at the output side, or
    the first layer's output (r, r, W0) of a map at r < S."""

    samples: list  # per sample: the map's row blocks (one per tile), or its (r, r, W0) first-layer output
    weight: torch.Tensor | None  # first-layer slice (W0, C) for a full-side map; None once applied
    taps: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # bilinear (i0, i1, frac) per output row/column


def bilinear_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each of `dst` output positions: the two source indices and the weight of the second,
    as F.interpolate(mode="bilinear", align_corners=False) computes them."""
    x = ((torch.arange(dst, dtype=torch.float32) + 0.5) * (src / dst) - 0.5).clamp(min=0.0)
    i0 = x.floor().long().clamp(max=src - 1)
    i1 = (i0 + 1).clamp(max=src - 1)
    return i0.to(device), i1.to(device), (x - i0.float()).to(device)


def pointwise_tiled(layers: Sequence[PointwiseLayer], maps: Sequence[torch.Tensor], side: int,
                    tile_pixels: int = TILE_PIXELS) -> torch.Tensor:
    """A per-pixel MLP over maps (B, C_i, r_i, r_i), sum C_i = its input width -> (B, out, side, side).

    Maps larger than `side` are first resized down to it; smaller ones are read through the
    first layer at their own resolution and interpolated per tile. Tiles are pixel-major
    (pixels, channels): every gather of the interpolation then copies whole channel vectors.
    """
    first = layers[0]
    batch = maps[0].shape[0]
    rows_per_tile = max(1, min(side, tile_pixels // side))
    # The maps are cut with unbind and split, not indexed per tile: under autograd the backward of
    # each indexed tile writes a zero-filled copy of the whole map (at 64 px, 32 of 16 MB per
    # backward, most of a fit step's head), while unbind and split join their pieces' gradients once.
    levels, lo = [], 0
    for m in maps:
        weight = first.weight[:, lo: lo + m.shape[1]]
        lo += m.shape[1]
        if m.shape[-1] > side:
            m = F.interpolate(m, size=(side, side), mode="bilinear", align_corners=False)
        r = m.shape[-1]
        if r == side:
            levels.append(_Level([x.split(rows_per_tile, dim=1) for x in m.unbind(0)], weight))
        else:
            # The first layer at the map's own side, one sample at a time (a fixed matrix shape).
            small = [(_pixels(x) @ weight.t()).view(r, r, -1) for x in m.unbind(0)]
            levels.append(_Level(small, None, bilinear_taps(r, side, m.device)))
    # Under autograd the tiles are joined by one cat (each written in place would add a node whose
    # backward copies the whole output's gradient); without it they go straight into the output,
    # which then exists once (a 1024-px sample's 68 landmark heatmaps are 285 MB).
    tracked = torch.is_grad_enabled()
    tiles, out = [], None
    for b in range(batch):
        # Up-sampled levels: columns once per sample (r rows, cheap), rows per tile below.
        wide = [None if lv.weight is not None else _lerp_select(lv.samples[b], 1, *lv.taps) for lv in levels]
        for tile, top in enumerate(range(0, side, rows_per_tile)):
            h = min(rows_per_tile, side - top)
            x = None
            for level, cols_done in zip(levels, wide):
                if level.weight is not None:
                    y = _pixels(level.samples[b][tile]) @ level.weight.t()
                else:
                    i0, i1, f = (t[top: top + h] for t in level.taps)
                    y = _lerp_select(cols_done, 0, i0, i1, f).reshape(h * side, -1)
                x = y if x is None else add(x, y)
            x = add(x, first.bias)
            x = relu(x) if first.relu else x
            for layer in layers[1:]:
                x = torch.addmm(layer.bias, x, layer.weight.t())
                x = relu(x) if layer.relu else x
            if tracked:
                tiles.append(x)
                continue
            if out is None:
                out = x.new_empty(batch, side, side, x.shape[1])
            out[b, top: top + h] = x.view(h, side, -1)
    if tracked:
        out = torch.cat(tiles).view(batch, side, side, -1)  # tiles are whole rows, in order
    return out.permute(0, 3, 1, 2)  # (B, out, S, S), channels-last in memory (reductions over channels read it contiguously)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (h * w, C) without a copy: contiguous for a channels-last map, a transposed
    view (which matrix products read as is) for an NCHW one."""
    return x.permute(1, 2, 0).reshape(-1, x.shape[0])


def _lerp_select(x: torch.Tensor, dim: int, i0: torch.Tensor, i1: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of x along dim at positions (i0, i1, frac); index_select, not
    advanced indexing (several times faster on CPU)."""
    shape = [1] * x.ndim
    shape[dim] = -1
    return torch.lerp(x.index_select(dim, i0), x.index_select(dim, i1), frac.to(x.dtype).view(shape))
