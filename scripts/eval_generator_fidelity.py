"""Fidelity of a built-in-world generator: G(z) against render_rgb(z) on held-out z.

Prints mean PSNR (dB) and SSIM over the first N samples of the ToyFaces `test` split,
which no training job reads, and optionally a grid (top: renderer, bottom: generator).

    python scripts/eval_generator_fidelity.py --generator domains/generator.safetensors --n 1000
"""
from __future__ import annotations

import json

import click
import numpy as np
import torch

from synthgen.generators import load_generator
from synthgen.metrics import psnr, ssim
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import SPLITS


@click.command()
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), default="domains/generator.safetensors",
              show_default=True, help="A generator imitating ToyFaces (z_dim 64).")
@click.option("--n", type=click.IntRange(1), default=1000, show_default=True, help="Held-out samples.")
@click.option("--batch-size", type=click.IntRange(1), default=50, show_default=True, help="Samples per pass.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None, help="Write a comparison grid PNG here.")
def main(generator: str, n: int, batch_size: int, grid: str | None) -> None:
    gen = load_generator(generator)
    test = SPLITS["test"]
    scores = {"psnr": [], "ssim": []}
    shown = []
    for start in range(0, n, batch_size):
        indices = list(range(start, min(n, start + batch_size)))
        with torch.no_grad():
            fake = gen.synthesize(gen.sample_latents(indices, test.seed)).rgb  # (B, 3, R, R) in [-1, 1]
        fake = ((fake.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        real = render_batch(gen.sample_z(indices, test.seed).numpy(), gen.resolution, domains=("rgb",))["rgb"]
        scores["psnr"].append(psnr(fake, real))
        scores["ssim"].append(ssim(fake, real))
        if not shown:
            shown = [real[:8], fake[:8]]
    result = {k: float(np.concatenate(v).mean()) for k, v in scores.items()}
    click.echo(json.dumps({"n": n, "split": "test", **result}))
    if grid:
        from PIL import Image

        Image.fromarray(np.concatenate([np.concatenate(list(row), axis=1) for row in shown], axis=0)).save(grid)


if __name__ == "__main__":
    main()
