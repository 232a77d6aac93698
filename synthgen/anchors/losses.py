"""The anchoring objective (paper eq. 3-6) and its per-kind default weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from synthgen.anchors.spec import DomainSpec


@dataclass(frozen=True)
class LossWeights:
    rec: float  # lambda_rec: reconstruction of the domain image (eq. 4)
    latent: float  # lambda_latent: keeps E(x) near w_avg, inside G's well-behaved region (eq. 5)
    adv: float  # lambda_adv: realism of the generated photo, needs real photos (eq. 6)
    prior: float = 0.0  # lambda_prior: batch moments of E's z match N(0, I) (z latent space only)
    cycle: float = 0.0  # lambda_cycle: E re-finds sampled latents from R's own decoded output (latent_cycle_loss)
    realism: float = 0.0  # lambda_realism: R's decoded output at sampled latents looks like the domain's files (realism.py)

    def to_dict(self) -> dict:
        return asdict(self)


# The method's released settings (docs/anchors.md, the presets table): seg 1 / 0.005 / 0.01; sketch and
# landmark 10 / 0.02 / 0.02. The rgb domain is plain GAN inversion: MSE on the photo.
PRESETS: dict[str, LossWeights] = {
    "mask": LossWeights(rec=1.0, latent=0.005, adv=0.01),
    "image": LossWeights(rec=10.0, latent=0.02, adv=0.02),
    "keypoints": LossWeights(rec=10.0, latent=0.02, adv=0.02),
    "rgb": LossWeights(rec=1.0, latent=0.005, adv=0.0),
}


def default_weights(spec: DomainSpec) -> LossWeights:
    return PRESETS["rgb" if spec.from_generator else spec.kind]


def reconstruction_loss(spec: DomainSpec, raw: torch.Tensor, target: torch.Tensor,
                        class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """L_rec (eq. 4): cross-entropy for masks, MSE for images and keypoint heatmaps.

    class_weights (K,): per-class cross-entropy weights (masks only, `class_balance_weights`);
    the loss is then the weighted mean over pixels, so its scale stays that of plain CE.
    """
    if spec.kind == "mask":
        # raw (B, K, S, S) logits, target (B, S, S) ids
        return F.cross_entropy(raw.float(), target, weight=None if class_weights is None else class_weights.float())
    return F.mse_loss(raw.float(), target)


def class_balance_weights(counts: torch.Tensor, power: float, max_ratio: float = 50.0) -> torch.Tensor:
    """Per-class weights freq^-power from the domain files' pixel counts (K,).

    A thin part (a brow, a lip) covers well under 1% of a face mask: under plain
    cross-entropy a regressor that never outputs it loses almost nothing, and the encoder
    is never pushed to place it. Weighting by freq^-power (0: plain CE, 0.5: inverse square
    root, 1: fully balanced) makes every part count. Weights are scaled so that the average
    pixel of the data weighs 1, capped at max_ratio x the smallest, and a class absent from
    the files gets the cap (it has no pixels, so it changes nothing but the scale).
    """
    freq = counts.double() / counts.sum().clamp_min(1)
    w = torch.where(freq > 0, freq.clamp_min(1e-12) ** -power, torch.full_like(freq, float("inf")))
    w = torch.minimum(w, w.min() * max_ratio)
    w = w / (freq * w).sum()
    return w.float()


def latent_cycle_loss(predicted: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between E's latents and the sampled ones, over G's latent variance.

    scale: the per-dimension variance of G's latents (num_ws, D) or (D,), so the weight means
    the same for any generator.
    """
    return ((predicted.float() - target.float()).pow(2) / scale.clamp_min(1e-8)).mean()


def latent_loss(latents: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """L_latent (eq. 5): mean over the batch of ||E(x)_b - w_avg||_2 over all (num_ws, D) entries."""
    return (latents.float() - w_avg.view(1, 1, -1)).flatten(1).norm(dim=1).mean()


def prior_matching_loss(z: torch.Tensor) -> torch.Tensor:
    """Per-dimension batch mean -> 0 and variance -> 1 of the encoded z (B, d).

    The regressor only ever sees G at the encoder's latents. If those crowd into one corner
    of z (one background colour, one skin tone), the regressor learns that corner and fails
    on the latents `synthgen sample` draws from the prior; matching the prior's first two
    moments spreads the encoded latents over everything G generates.
    """
    z = z.float()
    return z.mean(0).pow(2).mean() + (z.var(0) - 1).pow(2).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """L_adv for E and R (eq. 6): softplus(-D(G(E(x))))."""
    return F.softplus(-fake_logits.float()).mean()


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's side: softplus(D(fake)) + softplus(-D(real)), no R1 (as released)."""
    return F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()
