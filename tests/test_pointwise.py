"""The regressor's tiled per-pixel path (anchors/pointwise.py) against its 1x1-conv path."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from synthgen.allocator import keep_freed_memory
from synthgen.anchors.pointwise import bilinear_taps, pointwise_tiled
from synthgen.anchors.regressor import Regressor, RegressorConfig, _layers


def _regressor(in_channels: int, batch_norm: bool, seed: int = 0) -> Regressor:
    torch.manual_seed(seed)
    reg = Regressor(RegressorConfig(in_channels=in_channels, out_channels=5, widths=(16, 8), batch_norm=batch_norm))
    if batch_norm:  # non-trivial running statistics, so folding them is exercised
        for m in reg.net:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
    return reg.eval()


def _maps(batch: int, sides=(5, 10, 20), channels=(6, 4, 3), seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, s, s, generator=g) for c, s in zip(channels, sides)]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("out_size", [None, 12, 16])
def test_tiled_path_matches_the_conv_path(batch_norm, out_size):
    """Multi-resolution maps (smaller, equal and larger than the output side), BatchNorm folded."""
    reg = _regressor(13, batch_norm)
    reg.cfg.out_size = out_size
    maps = _maps(3)
    side = out_size or 20
    with torch.no_grad():
        expected = reg._forward_maps(reg.net, maps, side)
        got = reg(maps)
    assert got.shape == expected.shape == (3, 5, side, side)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_tiles_cut_rows_anywhere():
    """Tiles of 3 rows (the last one short) give the same map as one tile per sample."""
    reg = _regressor(13, False)
    maps = _maps(2)
    layers = _layers(reg.net)
    with torch.no_grad():
        whole = pointwise_tiled(layers, maps, 20, tile_pixels=20 * 20)
        rows3 = pointwise_tiled(layers, maps, 20, tile_pixels=3 * 20)
    torch.testing.assert_close(rows3, whole, rtol=1e-5, atol=1e-5)


def test_a_sample_gets_the_same_arithmetic_alone_or_in_a_batch():
    """Tiles are cut per sample with fixed shapes, so neighbours cannot change a sample's values
    (what synthgen sample's determinism contract relies on)."""
    reg = _regressor(13, False)
    maps = _maps(4)
    with torch.no_grad():
        batch = reg(maps)
        alone = reg([m[2:3] for m in maps])
    assert torch.equal(batch[2:3], alone)


def test_channels_last_maps_read_as_nchw_ones():
    reg = _regressor(13, False)
    maps = _maps(2)
    with torch.no_grad():
        nchw = reg(maps)
        nhwc = reg([m.contiguous(memory_format=torch.channels_last) for m in maps])
    torch.testing.assert_close(nhwc, nchw, rtol=1e-5, atol=1e-5)


def test_gradients_match_the_conv_path():
    """fit trains BatchNorm-free regressors through the tiled path."""
    reg = _regressor(13, False).train()
    maps = [m.requires_grad_() for m in _maps(2)]
    target = torch.randn(2, 5, 20, 20)
    grads = []
    for forward in (lambda: reg(maps), lambda: reg._forward_maps(reg.net, maps, 20)):
        reg.zero_grad()
        for m in maps:
            m.grad = None
        ((forward() - target) ** 2).mean().backward()
        grads.append([p.grad.clone() for p in reg.parameters()] + [m.grad.clone() for m in maps])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_tiles_under_autograd_give_the_same_output_and_gradients_as_one_tile():
    """Under autograd the tiles are joined differently (fit's path); the values are those of the
    inference path, and the gradients do not depend on where the tiles are cut."""
    reg = _regressor(13, False).train()
    layers = _layers(reg.net)
    target = torch.randn(2, 5, 20, 20)
    with torch.no_grad():
        inference = pointwise_tiled(layers, _maps(2), 20, tile_pixels=3 * 20)
    grads = []
    for tile_pixels in (3 * 20, 20 * 20):  # 7 tiles per sample (the last one short), then one
        maps = [m.requires_grad_() for m in _maps(2)]
        reg.zero_grad()
        out = pointwise_tiled(layers, maps, 20, tile_pixels=tile_pixels)
        if tile_pixels == 3 * 20:
            assert torch.equal(out.detach(), inference)
        ((out - target) ** 2).mean().backward()
        grads.append([p.grad.clone() for p in reg.parameters()] + [m.grad.clone() for m in maps])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batch_statistics_keep_the_conv_path():
    reg = _regressor(13, True).train()
    maps = _maps(3)
    out = reg(maps)
    torch.testing.assert_close(out, reg._forward_maps(reg.net, maps, 20))


@pytest.mark.parametrize("src,dst", [(5, 20), (16, 64), (7, 12), (3, 3)])
def test_bilinear_taps_are_those_of_interpolate(src, dst):
    x = torch.randn(1, 1, 1, src)
    i0, i1, frac = bilinear_taps(src, dst, x.device)
    mine = torch.lerp(x[..., i0], x[..., i1], frac)
    theirs = F.interpolate(x, size=(1, dst), mode="bilinear", align_corners=False)
    torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6)


def test_keep_freed_memory_is_idempotent():
    import sys

    first = keep_freed_memory()
    assert keep_freed_memory() == first
    if sys.platform.startswith("linux"):
        import platform

        if platform.libc_ver()[0] == "glibc":
            assert first is True
