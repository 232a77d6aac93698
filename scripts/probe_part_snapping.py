"""Does photo-guided part snapping place a seg anchor's parts where the judge sees them?

A regressor taught on encoded latents draws a part where the domain's files have it at those
latents; on G's own samples G may draw it a pixel off (the built-in seg anchor draws both eyes
about a row below the judge's reading of G's photo: docs/anchors.md, "Parts drawn off place").
Here the labels are snapped after the regressor (`synthgen.anchors.photo_snapping.snap_parts`:
the part groups of the classes part alignment moves, from the anchor's calibration record,
each moved by up to RADIUS px to where G's photo sets it off from its ring by more than MARGIN,
if its ring is at least ENCLOSED one class).

For each `--settings` entry, the anchor's labels on latents drawn as `synthgen sample` draws
them are snapped on G's photo of the same pass, and the labels as drawn and as snapped are
scored against the reference segmenter's parsing of the photo (the judge, evaluation only).
Measured on the built-in world, the snapped eyes agree better with the judge but train a
worse downstream net (docs/anchors.md, "Part snapping onto the photo"), so no anchor applies
it after the regressor; `fit --photo-snap` applies it to the files' masks instead.

    python scripts/probe_part_snapping.py --anchor domains/seg.safetensors --n 300 --seed 123 --settings 1:0.5:0.8,1:1.0:0.8
"""
from __future__ import annotations

import json

import click
import torch

from synthgen.anchors.photo_snapping import PartSnapping, snap_parts


@click.command()
@click.option("--anchor", type=click.Path(exists=True, dir_okay=False), default="domains/seg.safetensors",
              show_default=True, help="A mask anchor with a class-frequency calibration record (fit's default).")
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), default="domains/generator.safetensors",
              show_default=True, help="The generator the anchor belongs to.")
@click.option("--judge", type=click.Path(exists=True, dir_okay=False), default="domains/segmenter.safetensors",
              show_default=True, help="Reference segmenter that parses G's photos (evaluation only).")
@click.option("--n", type=click.IntRange(1), default=300, show_default=True, help="Latents, indices 0..n-1.")
@click.option("--seed", type=int, default=123, show_default=True, help="Latent seed, as `synthgen sample --seed`.")
@click.option("--settings", default="1:0.5:0.8,1:1.0:0.8", show_default=True,
              help="Comma-separated RADIUS:MARGIN:ENCLOSED settings to measure (see above).")
@click.option("--batch-size", type=click.IntRange(1), default=50, show_default=True, help="Latents per generator pass.")
def main(anchor: str, generator: str, judge: str, n: int, seed: int, settings: str, batch_size: int) -> None:
    """Per setting, the labels' IoU against the judge, as drawn and snapped on G's photo."""
    from synthgen.anchors.alignment import movable_classes
    from synthgen.anchors.anchor import anchor_taps, load_anchor
    from synthgen.anchors.codecs import decode
    from synthgen.anchors.regressor import mean_of_heads
    from synthgen.evaluation.segmenter import load_segmenter, predict
    from synthgen.generators import load_generator
    from synthgen.metrics import ConfusionMatrix
    from synthgen.pixels import to_uint8_images

    G = load_generator(generator).freeze()
    a = load_anchor(anchor, generator=G)
    record = a.metadata.get("class_frequency_calibration")
    if a.spec.kind != "mask" or record is None:
        raise click.ClickException(f"{anchor}: needs a mask anchor with a class-frequency calibration record "
                                   "(fit's default --calibration-latents)")
    names = a.spec.class_names
    parts = movable_classes(torch.tensor([record["share_files"][c] for c in names]))  # part alignment's classes
    try:
        pairs = [(int(r), float(m), float(e)) for r, m, e in (s.split(":") for s in settings.split(","))]
    except ValueError:
        raise click.ClickException(f"--settings {settings!r}: expected RADIUS:MARGIN:ENCLOSED such as 1:0.5:0.8") from None
    snaps = [PartSnapping(tuple(int(c) for c in torch.nonzero(parts).flatten()), r, m, e) for r, m, e in pairs]
    segmenter = load_segmenter(judge)
    scores = [ConfusionMatrix(len(names), names) for _ in range(len(snaps) + 1)]
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            syn = G.synthesize(G.sample_latents(list(range(lo, min(lo + batch_size, n))), seed), taps=anchor_taps([a]))
            truth = predict(segmenter, to_uint8_images(syn.rgb))
            raw = mean_of_heads(a.regress_heads(syn))  # the regressor as drawn: no recorded refinement
            photo = syn.photo(a.size)
            scores[0].update(decode(a.spec, raw)["mask"], truth)
            for snap, score in zip(snaps, scores[1:]):
                score.update(decode(a.spec, snap_parts(raw, photo, snap))["mask"], truth)
    for label, score in zip(["drawn"] + [":".join(map(str, p)) for p in pairs], scores):
        report = score.report()
        iou = {names[c]: round(report["iou"][names[c]], 3) for c in snaps[0].classes
               if report["iou"][names[c]] == report["iou"][names[c]]}  # NaN: in neither
        click.echo(json.dumps({"setting": label, "miou": round(report["miou"], 4), "parts": iou}))


if __name__ == "__main__":
    main()
