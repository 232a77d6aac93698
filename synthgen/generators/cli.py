"""`synthgen convert` and `synthgen info`: thin click layers over synthgen.generators.io."""
from __future__ import annotations

import json

import click


def _class_option(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def generator_info(path: str, class_index: int | str | None = None) -> dict:
    """Facts about a checkpoint: format, kind, sizes, fingerprint, parameter count."""
    from synthgen.generators.io import detect_format, load_generator

    gen = load_generator(path, class_index=class_index)
    info = {"path": str(path), "format": detect_format(path), **gen.describe()}
    # What `synthgen fit --feature-tap` can choose besides the default, with its channel count.
    info["extra_taps"] = {tap: gen.tap_channels(tap) for tap in gen.extra_taps}
    info["fingerprint"] = gen.fingerprint
    info["parameters"] = sum(p.numel() for p in gen.parameters())
    return info


# Paths are not checked by click (exists=True): detect_format says in one line that a file is
# missing (exit 1), where click would print a 3-line usage error (exit 2).
@click.command()
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path(dir_okay=False, writable=True))
@click.option("--class", "class_index", default=None, show_default=True,
              help="BigGAN-deep only: class index or name (names need classes.txt beside the weights); "
                   "stored as the default class of the converted file. Default: 0.")
def convert(src: str, dst: str, class_index: str | None) -> None:
    """Convert a generator checkpoint SRC (rosinality .pt, NVIDIA .pkl, BigGAN-deep folder or
    native file) to synthgen's native safetensors file DST. The format is read from the content."""
    from synthgen.generators.errors import CheckpointError
    from synthgen.generators.io import convert as convert_checkpoint

    try:
        gen = convert_checkpoint(src, dst, class_index=_class_option(class_index))
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {dst} ({gen.kind}, {gen.resolution}px, fingerprint {gen.fingerprint[:16]})")


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.option("--class", "class_index", default=None, show_default=True,
              help="BigGAN-deep only: class index or name to describe.")
@click.option("--json", "as_json", is_flag=True, default=False, show_default=True,
              help="Print one JSON object instead of aligned text.")
def info(checkpoint: str, class_index: str | None, as_json: bool) -> None:
    """Describe a generator CHECKPOINT: kind, resolution, num_ws, latent dim, feature tap
    (and the extra taps anchors may read, with their channels), fingerprint and parameter count."""
    from synthgen.generators.errors import CheckpointError

    try:
        facts = generator_info(checkpoint, class_index=_class_option(class_index))
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(facts, sort_keys=True))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        click.echo(f"{key:<{width}}  {value}")
