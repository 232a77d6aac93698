"""`synthgen toyfaces ...`: the built-in procedural face world.

The group stays open: `synthgen.cli` adds the commands of packages above this one to it
(training the built-in generator, `synthgen.builtin`).
"""
from __future__ import annotations

from pathlib import Path

import click

from synthgen.cli_options import NameList
from synthgen.devices import available_cpus
from synthgen.toyfaces.render import DOMAINS, MAX_SIZE, MIN_SIZE


@click.group()
def toyfaces() -> None:
    """ToyFaces: procedural faces with exact paired rgb, seg, sketch and landmarks."""


@toyfaces.command()
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of samples to render.")
@click.option("--size", type=click.IntRange(MIN_SIZE, MAX_SIZE), default=64, show_default=True,
              help="Output side length in pixels.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the latent stream (see splits: 0 generator, 1-4 anchors, 5 segmenter, 6 validation, 1000 test).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (one subfolder per domain).")
@click.option("--domains", type=NameList(DOMAINS), default=",".join(DOMAINS), show_default=True,
              help="Comma-separated domains to write.")
@click.option("--start-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first sample (file names are sample indices).")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a contact sheet of the first 8 samples to this PNG.")
@click.option("--workers", type=click.IntRange(min=1), default=available_cpus(), show_default="the cores this process may use",
              help="Rendering processes (each renders and writes its own chunks of 64 faces; the files do not depend on it).")
def render(n, size, seed, out, domains, start_index, preview, workers) -> None:
    """Render N faces of SEED into OUT/<domain>/<index>.png (+ landmark .npy)."""
    from synthgen.toyfaces.export import render_to_folder

    render_to_folder(out, n=n, size=size, seed=seed, domains=domains, start_index=start_index,
                     workers=workers, preview=preview)
    click.echo(f"wrote {n} samples ({','.join(domains)}) to {out}")
    if preview is not None:
        click.echo(f"preview: {preview}")
