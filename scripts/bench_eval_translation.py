"""Translation metrics for every pair of built-in domains on held-out ToyFaces pairs.

Needs the trained defaults: a generator and an anchors folder with <domain>.safetensors
for rgb, seg, sketch and landmark, and a pairs folder rendered from the held-out `test`
split (rgb/, seg/, sketch/, landmark/ with matching stems). Pairs whose anchors are
missing are skipped with a note. Prints one table and writes one JSON per pair (--out).

    python scripts/bench_eval_translation.py --generator domains/toyfaces64.safetensors \
        --anchors domains --pairs out/toyfaces-test --segmenter domains/segmenter.safetensors \
        --n 500 --out out/bench-translation
"""
from __future__ import annotations

import itertools
from pathlib import Path

import click

from synthgen.devices import DEVICES
from synthgen.evaluation.report import format_table
from synthgen.evaluation.translation import TranslationEvalError, run_translation_eval

DOMAINS = ("rgb", "seg", "sketch", "landmark")
HEADLINE = {"mask": ("miou", "pixel_accuracy"), "keypoints": ("nme_inter_ocular", "fraction_within_0.08"),
            "image": ("psnr", "ssim")}


@click.command()
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), required=True, help="Generator checkpoint.")
@click.option("--anchors", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder with <domain>.safetensors anchors.")
@click.option("--pairs", type=click.Path(exists=True, file_okay=False), required=True,
              help="Held-out paired folder (one subfolder per domain).")
@click.option("--segmenter", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Reference segmenter for seg -> rgb faithfulness.")
@click.option("--n", type=int, default=500, show_default=True, help="Pairs per domain pair.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Pairs per batch.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for JSON + grids.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="auto (CUDA when visible), cpu, cuda.")
def main(generator, anchors, pairs, segmenter, n, batch_size, out, device):
    """Score every built-in domain pair and print one table."""
    rows = []
    for source, target in itertools.permutations(DOMAINS, 2):
        try:
            r = run_translation_eval(source=source, target=target, pairs=pairs, generator=generator,
                                     anchors=anchors, n=n, batch_size=batch_size, segmenter=segmenter,
                                     out=Path(out) if out else None, device=device)
        except TranslationEvalError as exc:
            click.echo(f"skip {source} -> {target}: {exc}", err=True)
            continue
        first, second = HEADLINE[r["kind"]]
        rows.append([f"{source} -> {target}", r["n"], first, r[first], second, r[second],
                     r.get("faithfulness_miou")])
    click.echo(format_table(["pair", "n", "metric", "value", "metric", "value", "faithfulness mIoU"], rows))


if __name__ == "__main__":
    main()
