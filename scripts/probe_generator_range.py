"""Can a built-in-world generator draw what its mapping does not ask for? Projection of
controlled renders into its latent space.

For each `--slots` entry of the ToyFaces layout, `--faces` latents of a split are rendered
with that slot at -2, 0 and +2 (the rest unchanged), and each render is projected into G's
W (one w per image; `--space wplus`: one per layer) by Adam on the latent, starting from
G's own mapping of that z, against the same image loss the trainer uses (L1 pyramid +
edge). It prints, per slot, the gain of the change from -2 to +2 (the least-squares slope
on the renderer's change: 1 = the same change, 0 = none; `gain_coarse` on 4x4 means) for
G's mapping and for the projected latents. A slot the projection follows and the mapping
does not is within the synthesis network's reach: what G lacks there is a mapping that
asks for it. It also reports the W directions the projection adds per unit of z
(`direction_norm` per face, their mean pairwise cosine `direction_consistency`, and
`mapping_norm`: how far the mapping itself moves per unit), and with `--directions-out`
saves them ({slot: (faces, w_dim) tensor}).

With `--corrected-out`, it also writes a copy of G whose mapping asks for what the projection
found: its MLP retrained (on fresh z, the synthesis untouched) toward mapping(z) + sum over
the slots of `--correction-scale` x z[slot] x the slot's mean direction. Measure it with
`scripts/eval_generator_fidelity.py --factors` and `--judge` on `validation` latents.

    python scripts/probe_generator_range.py --slots yaw,eye_height --faces 8 --steps 250
    python scripts/probe_generator_range.py --slots yaw,eye_height --corrected-out G2.safetensors
"""
from __future__ import annotations

import json
import time

import click
import torch
import torch.nn.functional as F

from synthgen.builtin.projection import project

SLOT_VALUES = (-2.0, 0.0, 2.0)  # the slot's values per face; the gain compares the two ends


def slot_range(G, render, z: torch.Tensor, slot_index: int, steps: int, lr: float, space: str) -> tuple[dict, torch.Tensor]:
    """The probe of one slot for the faces z (F, Z). G is a trainable StyleGAN2Generator (frozen
    here); `render` maps z to images in [-1, 1]. Returns gains and the projection's directions."""
    from synthgen.metrics import change_gains

    faces = len(z)
    moved = torch.cat([z.clone().index_fill_(1, torch.tensor([slot_index]), v) for v in SLOT_VALUES])
    targets = render(moved)
    with torch.no_grad():
        w = G.mapping(moved)  # (3F, w_dim)
    if space == "w":
        def synthesize(latent):
            return G.synthesize(latent[:, None].expand(-1, G.num_ws, -1))[0]
        start = w
    else:
        def synthesize(latent):
            return G.synthesize(latent)[0]
        start = w[:, None].expand(-1, G.num_ws, -1)
    latent = project(synthesize, targets, start, steps, lr, progress=True)
    with torch.no_grad():
        mapped, projected = synthesize(start), synthesize(latent)
    low, high = slice(0, faces), slice(2 * faces, 3 * faces)
    span = SLOT_VALUES[-1] - SLOT_VALUES[0]
    reference = targets[high] - targets[low]
    out = {}
    for name, images in (("mapping", mapped), ("projected", projected)):
        gain, coarse = change_gains(images[high] - images[low], reference)
        # None where the slot changes none of these renders (a hat's colour on faces without one)
        out[name] = {"gain": None if gain is None else round(gain, 3),
                     "gain_coarse": None if coarse is None else round(coarse, 3),
                     "l1": round(float((images - targets).abs().mean()), 4)}
    extra = (latent - start).flatten(1)  # what the projection adds to the mapping's latents
    directions = (extra[high] - extra[low]) / span  # per face, per unit of z
    cos = F.cosine_similarity(directions[:, None], directions[None], dim=-1)
    off_diagonal = cos[~torch.eye(faces, dtype=torch.bool)]
    out["direction_norm"] = [round(float(v), 3) for v in directions.norm(dim=1)]
    out["direction_consistency"] = round(float(off_diagonal.mean()), 3) if faces > 1 else None
    mapping_step = (start.flatten(1)[high] - start.flatten(1)[low]) / span
    out["mapping_norm"] = round(float(mapping_step.norm(dim=1).mean()), 3)
    return out, directions


def corrected_mapping(G, directions: dict[int, torch.Tensor], scale: float, steps: int = 2000, seed: int = 0) -> float:
    """Retrain G's mapping (in place) toward its old output plus scale x z[slot] x the slot's
    mean direction, on fresh standard-normal z; returns the final mean squared error."""
    import copy

    old = copy.deepcopy(G.style).requires_grad_(False)
    shift = torch.zeros(G.cfg.z_dim, G.cfg.w_dim)
    for index, per_face in directions.items():
        shift[index] = scale * per_face.mean(0)
    G.style.requires_grad_(True)
    # Equalized-lr weights are stored divided by lr_mlp: scale Adam's step so that the
    # mapping moves as fast whatever its multiplier (1 in the built-in presets, 0.01 in FFHQ's).
    opt = torch.optim.Adam(G.style.parameters(), lr=1e-3 / G.cfg.lr_mlp)
    rng = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        z = torch.randn(512, G.cfg.z_dim, generator=rng)
        with torch.no_grad():
            target = old(z) + z @ shift
        loss = F.mse_loss(G.style(z), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    G.style.requires_grad_(False)
    return float(loss.detach())


@click.command()
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), default="domains/generator.safetensors",
              show_default=True, help="A native StyleGAN2 generator imitating ToyFaces (z_dim 64).")
@click.option("--slots", default="yaw,eye_height", show_default=True, help="Comma-separated z slots (docs/toyfaces.md).")
@click.option("--faces", type=click.IntRange(2), default=8, show_default=True, help="Latents of the split per slot.")
@click.option("--split", default="generator", show_default=True, help="ToyFaces split of the latents.")
@click.option("--steps", type=click.IntRange(1), default=250, show_default=True, help="Adam steps of the projection.")
@click.option("--lr", type=float, default=0.02, show_default=True, help="Adam learning rate on the latents.")
@click.option("--space", type=click.Choice(["w", "wplus"]), default="w", show_default=True,
              help="w: one latent per image, as the mapping gives; wplus: one per layer.")
@click.option("--directions-out", type=click.Path(dir_okay=False), default=None,
              help="Save the projection's per-face W directions per slot here (torch.save).")
@click.option("--corrected-out", type=click.Path(dir_okay=False), default=None,
              help="Write G with its mapping retrained to add the slots' mean directions (space w only).")
@click.option("--correction-scale", type=float, default=2.0, show_default=True,
              help="Multiplier of the mean directions in --corrected-out (the mean of inconsistent per-face directions is short).")
@click.option("--correction-steps", type=click.IntRange(1), default=2000, show_default=True,
              help="Adam steps (512 fresh z each) that retrain the mapping for --corrected-out.")
def main(generator: str, slots: str, faces: int, split: str, steps: int, lr: float, space: str,
         directions_out: str | None, corrected_out: str | None, correction_scale: float, correction_steps: int) -> None:
    from synthgen.builtin.train_generator import render_rgb
    from synthgen.generators import load_generator
    from synthgen.toyfaces import Z_DIM
    from synthgen.toyfaces.latent import Z_INDEX
    from synthgen.toyfaces.splits import SPLITS

    frozen = load_generator(generator)
    G = getattr(frozen, "generator", None)
    if G is None or not hasattr(G, "mapping") or G.cfg.z_dim != Z_DIM:
        raise click.ClickException(f"{generator}: the probe needs a StyleGAN2 with z_dim {Z_DIM} (the ToyFaces latent)")
    unknown = [s for s in slots.split(",") if s not in Z_INDEX]
    if unknown:
        raise click.ClickException(f"unknown slot(s) {', '.join(unknown)}; the names are in docs/toyfaces.md")
    if split not in SPLITS:
        raise click.ClickException(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if corrected_out and space != "w":
        raise click.ClickException("--corrected-out needs --space w (the mapping gives one w per image)")
    G.eval().requires_grad_(False)

    def render(z):
        return render_rgb(z, G.cfg.size)

    z = frozen.sample_z(list(range(faces)), SPLITS[split].seed)
    result, saved = {}, {}
    for slot in slots.split(","):
        t0 = time.time()
        result[slot], saved[slot] = slot_range(G, render, z, Z_INDEX[slot], steps, lr, space)
        result[slot]["seconds"] = round(time.time() - t0, 1)
    if directions_out:
        torch.save(saved, directions_out)
    report = {"space": space, "faces": faces, "split": split, "steps": steps, "slots": result}
    if corrected_out:
        from synthgen.generators.native import save_generator
        from synthgen.generators.stylegan2 import FrozenStyleGAN2

        directions = {Z_INDEX[slot]: saved[slot] for slot in saved}
        report["correction_mse"] = round(corrected_mapping(G, directions, correction_scale, correction_steps), 6)
        save_generator(FrozenStyleGAN2(G), corrected_out)  # w_avg recomputed for the new mapping
    click.echo(json.dumps(report))


if __name__ == "__main__":
    main()
