"""Fidelity of a built-in-world generator: G(z) against render_rgb(z) on held-out z.

Prints mean PSNR (dB) and SSIM over the first N samples of the ToyFaces `test` split,
which no training job reads, and optionally a grid (top: renderer, bottom: generator).

    python scripts/eval_generator_fidelity.py --generator domains/generator.safetensors --n 1000
    python scripts/eval_generator_fidelity.py --split validation --n 500 --judge domains/segmenter.safetensors \
        --blur-sigmas 0.5,1,1.5,2

With `--factors N`, it also says which latent factors G reproduces: for each z slot of the
ToyFaces layout, N latents with that slot moved by +1.5, and the gain of G's change of photo
on the renderer's change of render (the least-squares slope over all pixels: 1 = G moves
the picture as the renderer does, 0 = G ignores the slot) with its cosine, the same gain on
4x4 means (a part moved but blurred still counts) and how far G's mapping moves its
latents. A generator that recolours faithfully but draws one face template gains near 1 on
the colour slots and near 0 on the parts' places and sizes.

    python scripts/eval_generator_fidelity.py --split validation --n 64 --factors 32

With `--judge`, the reference segmenter also parses G(z), render_rgb(z) and render_rgb(z)
blurred by a Gaussian of each `--blur-sigmas` (px), each scored against render_seg(z); the
PSNR of G(z) against each blurred render says which blur G's photos match. That separates
the two ways G can lose the parts: blur the judge cannot read (blurred renders score as low
as G) or parts drawn elsewhere (blurred renders still score high). It also reports the
Fréchet distance between G's photos and the renders of the same latents in the judge's
feature space (its U-Net bottleneck; comparable only between runs of the same judge).

With `--project-steps 100,200` (a StyleGAN2), each render is also projected into G's latent
space (`--project-space w`: one w per picture, as the mapping gives; `wplus`: one per layer),
starting from G's mapping of the same z (synthgen.builtin.projection), and G's photos at the
projected latents after each number of steps are scored like G(z): PSNR and, with `--judge`,
the judge's mIoU. The gap between G(z) and its projections is what the mapping does not ask
for; what the projections still miss, the synthesis cannot draw.

    python scripts/eval_generator_fidelity.py --split validation --n 64 --batch-size 16 \
        --judge domains/segmenter.safetensors --project-steps 100,200 --project-space wplus
"""
from __future__ import annotations

import json

import click
import numpy as np
import torch
from tqdm import tqdm

from synthgen.generators import load_generator
from synthgen.metrics import change_gains, gaussian_window, psnr, ssim
from synthgen.pixels import to_uint8_images
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import SPLITS


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 (B, H, W, 3) -> the same blurred by a Gaussian of `sigma` px (reflect padding)."""
    radius = max(1, int(round(3 * sigma)))
    window = gaussian_window(2 * radius + 1, sigma).float()[None, None]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    b, c, h, w = x.shape
    x = torch.nn.functional.pad(x.reshape(b * c, 1, h, w), (radius,) * 4, mode="reflect")
    x = torch.nn.functional.conv2d(x, window)
    return x.reshape(b, c, h, w).permute(0, 2, 3, 1).round().clamp(0, 255).byte().numpy()


FACTOR_SHIFT = 1.5  # how far each slot moves: about one and a half standard deviations


def factor_gains(synthesize, render, z: torch.Tensor, shift: float = FACTOR_SHIFT, mapping=None) -> dict[str, dict[str, float]]:
    """Per z slot of the ToyFaces layout: how much of the renderer's change G reproduces.

    `render` maps z (B, Z) to float images (B, 3, S, S) in [-1, 1]; `synthesize` maps G's latents,
    `mapping(z)` (z itself when `mapping` is None), to such images. Returns
    {slot name: {"render_rms": size of the renderer's change, "gain": <dG, dR> / <dR, dR>,
    "cos": cosine of dG and dR, "gain_coarse": the gain of the changes' 4x4 means}}, pooled
    over the B latents. With `mapping`, also "w_change": the mean norm of the change of G's
    latents, which says whether G's mapping passes the slot on at all.
    """
    from synthgen.toyfaces.latent import Z_LAYOUT

    latents_of = mapping if mapping is not None else (lambda z: z)
    w0 = latents_of(z)
    g0, r0 = synthesize(w0), render(z)
    out = {}
    for slot in Z_LAYOUT:
        moved = z.clone()
        moved[:, slot.index] += shift
        w = latents_of(moved)  # mapped once: the photo and the latents' change both read it
        dg, dr = (synthesize(w) - g0).double(), (render(moved) - r0).double()
        dot, rr, gg = float((dg * dr).sum()), float((dr * dr).sum()), float((dg * dg).sum())
        gain, coarse = change_gains(dg, dr)  # coarse: on 4x4 means, where a part G moves but blurs still counts
        out[slot.name] = {"render_rms": round((rr / dr.numel()) ** 0.5, 4),
                          "gain": None if gain is None else round(gain, 3),
                          "cos": round(dot / (rr * gg) ** 0.5, 3) if rr > 0 and gg > 0 else None,
                          "gain_coarse": None if coarse is None else round(coarse, 3)}
        if mapping is not None:
            out[slot.name]["w_change"] = round(float((w - w0).flatten(1).norm(dim=1).mean()), 3)
    return out


def projected_photos(gen, latents: torch.Tensor, real: np.ndarray, checkpoints: list[int], space: str,
                     lr: float) -> list[np.ndarray]:
    """G's photos (uint8 (B, S, S, 3)) at `latents` (G's mapping of the renders' z: (B, num_ws,
    w_dim), every row equal) projected onto the renders `real`, after each of `checkpoints` Adam steps."""
    from synthgen.builtin.projection import project_checkpoints
    from synthgen.pixels import from_uint8_images

    if space == "w":
        start = latents[:, 0]

        def synthesize(latent):
            return gen.synthesize(latent[:, None].expand(-1, gen.num_ws, -1)).rgb
    else:
        start = latents

        def synthesize(latent):
            return gen.synthesize(latent).rgb
    kept = project_checkpoints(synthesize, from_uint8_images(real), start, checkpoints, lr, progress=True)
    with torch.no_grad():
        return [to_uint8_images(synthesize(kept[c]).clamp(-1, 1)) for c in checkpoints]


@click.command()
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), default="domains/generator.safetensors",
              show_default=True, help="A generator imitating ToyFaces (z_dim 64).")
@click.option("--n", type=click.IntRange(1), default=1000, show_default=True, help="Held-out samples.")
@click.option("--batch-size", type=click.IntRange(1), default=50, show_default=True, help="Samples per pass.")
@click.option("--split", default="test", show_default=True, help="ToyFaces split of the latents (choose settings on validation).")
@click.option("--judge", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Reference segmenter: also score its parsing of G(z), render(z) and blurred renders against render_seg(z).")
@click.option("--blur-sigmas", default="1,2", show_default=True, help="Gaussian sigmas (px) of the blurred renders (with --judge).")
@click.option("--factors", type=click.IntRange(0), default=0, show_default=True,
              help="Latents of the split per z slot for the factor gains (0 = off).")
@click.option("--grid", type=click.Path(dir_okay=False), default=None, help="Write a comparison grid PNG here.")
@click.option("--project-steps", default="", show_default=True,
              help="Comma-separated Adam step counts: also score G at its latents projected onto each render "
                   "after that many steps (StyleGAN2 only; empty = off).")
@click.option("--project-space", type=click.Choice(["w", "wplus"]), default="w", show_default=True,
              help="Projection latents: w (one per picture, as the mapping gives) or wplus (one per layer).")
@click.option("--project-lr", type=float, default=0.02, show_default=True, help="Adam learning rate of the projection.")
def main(generator: str, n: int, batch_size: int, split: str, judge: str | None, blur_sigmas: str,
         factors: int, grid: str | None, project_steps: str, project_space: str, project_lr: float) -> None:
    gen = load_generator(generator)
    try:
        checkpoints = sorted({int(v) for v in project_steps.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated step counts, got {project_steps!r}", param_hint="--project-steps")
    if any(c < 1 for c in checkpoints):
        raise click.BadParameter("step counts must be >= 1", param_hint="--project-steps")
    if checkpoints and gen.kind != "stylegan2":
        raise click.ClickException(f"{generator}: --project-steps needs a StyleGAN2 generator, this one is {gen.kind}")
    projected_names = [f"projected_{project_space}{c}" for c in checkpoints]
    test = SPLITS[split]
    scores = {"psnr": [], "ssim": []}
    projected_psnr = {name: [] for name in projected_names}
    sigmas = [float(v) for v in blur_sigmas.split(",") if v] if judge else []
    if judge:
        from synthgen.celebamask import CLASS_NAMES
        from synthgen.evaluation.segmenter import load_segmenter, predict
        from synthgen.metrics import ConfusionMatrix

        from synthgen.evaluation.fid import segmenter_extractor
        from synthgen.metrics import frechet_distance_of_features

        model = load_segmenter(judge)
        embed = segmenter_extractor(model)
        features = {"generator": [], "render": []}
        names = ["generator", "render"] + [f"render_blur{s:g}" for s in sigmas] + projected_names
        confusions = {k: ConfusionMatrix(len(CLASS_NAMES), CLASS_NAMES) for k in names}
        blur_psnr = {s: [] for s in sigmas}
    shown = []
    # On stderr, and only on a terminal: a 64-face, 800-step projection runs for half an hour.
    for start in tqdm(range(0, n, batch_size), desc="batches", unit="batch", disable=None):
        indices = list(range(start, min(n, start + batch_size)))
        z = gen.sample_z(indices, test.seed)
        with torch.no_grad():
            latents = gen.map(z)  # what gen.sample_latents gives
            fake = gen.synthesize(latents).rgb  # (B, 3, R, R) in [-1, 1]
        fake = to_uint8_images(fake)
        rendered = render_batch(z.cpu().numpy(), gen.resolution, domains=("rgb", "seg") if judge else ("rgb",))
        real = rendered["rgb"]
        if judge:
            confusions["generator"].update(predict(model, fake), rendered["seg"])
            confusions["render"].update(predict(model, real), rendered["seg"])
            features["generator"].append(embed(fake))
            features["render"].append(embed(real))
            for s in sigmas:
                blurred = gaussian_blur(real, s)
                confusions[f"render_blur{s:g}"].update(predict(model, blurred), rendered["seg"])
                blur_psnr[s].append(psnr(fake, blurred))
        if checkpoints:
            for name, image in zip(projected_names, projected_photos(gen, latents, real, checkpoints, project_space,
                                                                      project_lr)):
                projected_psnr[name].append(psnr(image, real))
                if judge:
                    confusions[name].update(predict(model, image), rendered["seg"])
        scores["psnr"].append(psnr(fake, real))
        scores["ssim"].append(ssim(fake, real))
        if not shown:
            shown = [real[:8], fake[:8]]
    result = {k: float(np.concatenate(v).mean()) for k, v in scores.items()}
    if checkpoints:
        result["psnr_projected"] = {name: float(np.concatenate(v).mean()) for name, v in projected_psnr.items()}
    if judge:
        key = ("l_eye", "r_eye", "l_brow", "r_brow", "nose", "u_lip", "l_lip", "hair", "skin")
        for name, confusion in confusions.items():
            report = confusion.report()
            result[f"judge_{name}_miou"] = round(report["miou"], 4)
            result[f"judge_{name}_iou"] = {k: None if report["iou"][k] is None else round(report["iou"][k], 3) for k in key}
        result["frechet_judge_features"] = round(frechet_distance_of_features(
            np.concatenate(features["generator"]), np.concatenate(features["render"])), 4)
        result["psnr_generator_vs_blurred"] = {f"{s:g}": float(np.concatenate(v).mean()) for s, v in blur_psnr.items()}
    if factors:
        def synthesize(latents):
            with torch.no_grad():
                return gen.synthesize(latents).rgb.clamp(-1, 1)

        from synthgen.builtin.train_generator import render_rgb

        def render(z):
            return render_rgb(z, gen.resolution)

        def mapping(z):
            with torch.no_grad():
                return gen.map(z)

        gains = factor_gains(synthesize, render, gen.sample_z(list(range(factors)), test.seed), mapping=mapping)
        result["factors"] = gains
        values = [v["gain"] for v in gains.values() if v["gain"] is not None]
        result["factor_gain_mean"] = round(float(np.mean(values)), 3)
        result["factors_ignored"] = sum(v < 0.1 for v in values)  # slots G barely follows
        coarse = [v["gain_coarse"] for v in gains.values() if v["gain_coarse"] is not None]
        result["factor_gain_coarse_mean"] = round(float(np.mean(coarse)), 3)
    click.echo(json.dumps({"n": n, "split": split, **result}))
    if grid:
        from PIL import Image

        Image.fromarray(np.concatenate([np.concatenate(list(row), axis=1) for row in shown], axis=0)).save(grid)


if __name__ == "__main__":
    main()
