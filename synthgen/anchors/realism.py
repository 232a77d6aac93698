"""The unpaired realism term: a small critic that tells the regressor's decoded output on
sampled latents from the domain's own files.

The reconstruction objective trains R only at the encoder's latents. At the latents
`synthgen sample` draws, nothing asks R's output to look like a file of the domain: a
regressor can paint a template face whose parts are too large, or hats that no photo has.
The critic reads R's output decoded hard (argmax one-hot masks, clean heatmaps of the peak
points, clamped pixels: what `sample` would write, `fit.hard_decoded_input`) against the
encoder inputs of the step's real files, so it cannot tell them apart by softness alone;
the gradient reaches R straight through the hard decoding. The files are unpaired with
G's samples: the term uses nothing but the domain's own files and the frozen generator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DomainCritic(nn.Module):
    """PatchGAN-sized critic: three stride-2 4x4 convs, one logit per patch of about 40 px.

    Small on purpose (about 0.4 M parameters): it runs on CPU beside the fit, and a patch
    critic judges the local shape of parts (a brow's thinness, a lip's outline) at any side.
    """

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, r1_gamma: float) -> torch.Tensor:
    """Logistic loss softplus(D(fake)) + softplus(-D(real)) plus R1 on the real files.

    R1 (gamma/2 * E||grad_x D(x)||^2 on reals) keeps a critic of one-hot inputs from
    growing sharp walls between "exactly one-hot" and "anything else".
    """
    real = real.detach().requires_grad_(r1_gamma > 0)
    real_logits = critic(real)
    loss = F.softplus(critic(fake.detach())).mean() + F.softplus(-real_logits).mean()
    if r1_gamma > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + 0.5 * r1_gamma * grad.pow(2).flatten(1).sum(1).mean()
    return loss


def realism_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The regressor's side: non-saturating softplus(-D(fake))."""
    return F.softplus(-critic(fake)).mean()
