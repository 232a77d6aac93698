"""Projection of pictures into a generator's latent space: what its synthesis can draw.

Adam on the latents, starting from given ones (G's own mapping of the same z), against the
image loss the generator trainer uses (L1 pyramid + edge). Comparing a generator's photos at
its mapping's latents with those at the projected ones separates what its mapping does not ask
for from what its synthesis cannot draw (docs/builtin.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm import tqdm

from synthgen.builtin.train_generator import edge_l1, image_pyramid_l1


def project_checkpoints(synthesize: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
                        start: torch.Tensor, checkpoints: Sequence[int], lr: float,
                        progress: bool = False) -> dict[int, torch.Tensor]:
    """The latents after each of `checkpoints` Adam steps of one projection run.

    `synthesize` maps latents shaped like `start` to (B, 3, S, S) images in [-1, 1] and must be
    differentiable in them; `targets` are such images. A checkpoint of 0 is `start` itself.
    `progress`: a bar of the steps on stderr when that is a terminal.
    """
    if any(c < 0 for c in checkpoints):
        raise ValueError(f"projection checkpoints must be >= 0 steps, got {list(checkpoints)}")
    latent = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=lr)
    kept: dict[int, torch.Tensor] = {}
    step = 0
    bar = tqdm(total=max(checkpoints, default=0), desc="projection steps", leave=False, disable=None if progress else True)
    for checkpoint in sorted(set(checkpoints)):
        while step < checkpoint:
            fake = synthesize(latent)
            loss = image_pyramid_l1(fake, targets) + edge_l1(fake, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
        kept[checkpoint] = latent.detach().clone()
    bar.close()
    return kept


def project(synthesize: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor, start: torch.Tensor,
            steps: int, lr: float, progress: bool = False) -> torch.Tensor:
    """Latents (a copy of `start`, optimised for `steps` Adam steps) whose `synthesize` matches `targets`."""
    return project_checkpoints(synthesize, targets, start, [steps], lr, progress)[steps]
