"""synthgen.builtin.projection: latents whose photo matches a picture, kept at several step counts."""
from __future__ import annotations

import pytest
import torch

from synthgen.builtin.projection import project, project_checkpoints
from synthgen.generators.presets import build_stylegan2


@pytest.fixture(scope="module")
def tiny():
    G = build_stylegan2("tiny", seed=0).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        target_w = G.mapping(torch.randn(4, G.cfg.z_dim, generator=gen))
        start = G.mapping(torch.randn(4, G.cfg.z_dim, generator=gen))

    def synthesize(w):
        return G.synthesize(w[:, None].expand(-1, G.num_ws, -1))[0]

    with torch.no_grad():
        targets = synthesize(target_w)
    return synthesize, targets, start


def _l1(synthesize, latent, targets) -> float:
    with torch.no_grad():
        return float((synthesize(latent) - targets).abs().mean())


def test_projection_moves_the_latent_toward_a_picture_the_synthesis_can_draw(tiny):
    synthesize, targets, start = tiny
    latent = project(synthesize, targets, start, steps=60, lr=0.05)
    assert latent.shape == start.shape and not torch.equal(latent, start)
    assert _l1(synthesize, latent, targets) < 0.6 * _l1(synthesize, start, targets)
    assert not start.requires_grad  # the caller's latents are left alone


def test_checkpoints_are_one_run_read_at_each_step_count(tiny):
    synthesize, targets, start = tiny
    kept = project_checkpoints(synthesize, targets, start, [30, 0, 10], lr=0.05)
    assert sorted(kept) == [0, 10, 30]
    assert torch.equal(kept[0], start)
    errors = [_l1(synthesize, kept[c], targets) for c in (0, 10, 30)]
    assert errors[0] > errors[1] > errors[2]
    # the 30-step checkpoint continues the 10-step one: the same as a single 30-step run
    torch.testing.assert_close(kept[30], project(synthesize, targets, start, steps=30, lr=0.05))
    with pytest.raises(ValueError, match=">= 0"):
        project_checkpoints(synthesize, targets, start, [-1], lr=0.05)
