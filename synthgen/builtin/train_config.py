"""The options of `synthgen toyfaces train-generator`, free of torch so that the CLI reads its
defaults without loading it (and `toyfaces render` keeps its fast fork-started pool)."""
from __future__ import annotations

from dataclasses import dataclass

D_CONDITIONS = ("none", "z")


@dataclass
class GeneratorTrainConfig:
    preset: str = "toyfaces64"  # StyleGAN2 architecture (synthgen.generators.presets)
    steps: int = 20_000  # optimizer steps in total (regression + adversarial)
    adv_start: int | None = None  # step at which the adversarial phase begins; None = never
    batch_size: int = 16  # samples per step
    lr: float = 2e-3  # Adam learning rate (StyleGAN2's default)
    lr_final: float | None = None  # cosine decay from lr to this at the last step; None = constant lr
    lambda_edge: float = 1.0  # weight of the edge (image gradient) L1 term
    lambda_adv: float = 0.05  # weight of the non-saturating GAN loss in the adversarial phase
    d_condition: str = "none"  # what the discriminator sees besides the image: none | z (projection on the latent)
    r1_gamma: float = 0.05  # R1 penalty on D's gradient at real images (Mescheder et al. 2018); 0 = off
    ema_decay: float = 0.999  # exponential moving average of the weights that get exported
    seed: int = 0  # weight init and the order of training latents
    init_from: str | None = None  # a native generator file to start from (e.g. the shipped one)
    eval_every: int = 500  # steps between held-out PSNR evaluations + sample grids
    checkpoint_every: int = 250  # steps between checkpoints
    eval_samples: int = 64  # held-out samples for PSNR
    target_cache: int = 0  # render the split's first N targets once and cycle over them; 0 = render each batch
    render_workers: int = 2  # processes that render the target cache
    device: str = "auto"  # auto (cuda when available) | cpu | cuda

