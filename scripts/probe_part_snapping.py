"""Does photo-guided part snapping place a seg anchor's parts where the judge sees them?

A regressor taught on encoded latents draws a part where the domain's files have it at those
latents; on G's own samples G may draw it a pixel off (the built-in seg anchor draws both eyes
about a row below the judge's reading of G's photo: docs/anchors.md, "Parts drawn off place").
G's photo shows a part as a region whose colour stands out from what surrounds it. Per sample,
the part pixels (the classes part alignment moves, under 2% of the files' pixels, from the
anchor's calibration record) form 8-connected groups; a group of one class enclosed by one class
(an eye in the skin) moves as a whole, by the whole-pixel shift within RADIUS, to where its
mean colour differs most from that of a one-pixel ring around it, if that raises the contrast
by more than MARGIN (relative). Groups of several classes (the lips and the mouth) and groups
whose ring is less than ENCLOSED one class (an ear against hair) stay as drawn.

For each `--settings` entry, the anchor's labels on latents drawn as `synthgen sample` draws
them are snapped on G's photo of the same pass, and the labels as drawn and as snapped are
scored against the reference segmenter's parsing of the photo (the judge, evaluation only).
Measured on the built-in world, the snapped eyes agree better with the judge but train a
worse downstream net (docs/anchors.md, "Parts drawn off place"), so no anchor applies it.

    python scripts/probe_part_snapping.py --anchor domains/seg.safetensors --n 300 --seed 123 --settings 1:0.5:0.8,1:1.0:0.8
"""
from __future__ import annotations

import json
from typing import NamedTuple

import click
import torch
import torch.nn.functional as F

from synthgen.anchors.alignment import shifted


class PartSnapping(NamedTuple):
    classes: tuple[int, ...]  # the parts
    radius: int = 1  # largest shift per axis, in pixels
    margin: float = 0.5  # a move must raise the part's contrast with its ring by more than this fraction
    enclosed: float = 0.8  # share of a group's ring one class must hold for the group to move


def part_groups(parts: torch.Tensor, max_groups: int) -> torch.Tensor:
    """(B, 1, S, S) bool -> (B, G, S, S) bool: the 8-connected groups of each sample's part pixels,
    G the most any sample has (at most max_groups; a sample's further groups are left out, so they
    stay as drawn), in a fixed order per sample (by the group's largest pixel index)."""
    b, _, h, w = parts.shape
    ids = torch.arange(1, h * w + 1, dtype=torch.float32, device=parts.device).view(1, 1, h, w) * parts
    for _ in range(h * w):  # each pass spreads a group's largest id one pixel further
        spread = F.max_pool2d(ids, 3, 1, 1) * parts
        if torch.equal(spread, ids):
            break
        ids = spread
    flat = ids.flatten(1)
    found = [flat[i].unique().flip(0) for i in range(b)]  # descending; 0 (no part) last
    found = [v[v > 0][:max_groups] for v in found]
    g = max(1, max(len(v) for v in found))
    index = torch.zeros(b, g, device=parts.device)  # 0: an empty slot (no pixel has id 0 in a group)
    for i, v in enumerate(found):
        index[i, : len(v)] = v
    groups = (flat[:, None, :] == index[:, :, None]) & (index[:, :, None] > 0)
    return groups.view(b, g, h, w)


def snap_parts(logits: torch.Tensor, photo: torch.Tensor, snapping: PartSnapping, max_groups: int = 32) -> torch.Tensor:
    """(B, K, S, S) logits and G's (B, 3, S, S) photo in [-1, 1] -> logits whose argmax is the
    snapped label. Per sample, the part pixels form 8-connected groups (an eye; the lips and the
    mouth between them). A group of one class whose ring is mostly one class moves as a whole to
    the shift that sets it off most from its ring in the photo (by more than the margin; else it
    stays). Pixels a group leaves take the best non-part class there. Logits of unchanged pixels
    are untouched. Per sample only, so a sample's output does not depend on its batch."""
    x = logits.float()
    rgb = photo.float().clamp(-1, 1)
    b, k, h, w = x.shape
    labels = x.argmax(1, keepdim=True)
    parts = torch.zeros(k, dtype=torch.bool, device=x.device)
    parts[list(snapping.classes)] = True
    is_part = parts[labels]
    if not bool(is_part.any()):
        return logits
    groups = part_groups(is_part, max_groups)  # (B, G, S, S)
    g = groups.shape[1]
    region = groups.flatten(2).float()  # (B, G, S*S)
    ring = (F.max_pool2d(groups.float(), 3, 1, 1) - groups.float()).flatten(2)
    one_hot = F.one_hot(labels.flatten(1), k).float()  # (B, S*S, K)
    held, around = region @ one_hot, ring @ one_hot  # (B, G, K): pixels of each class in and around
    single = (held > 0).sum(2) == 1
    # A group of several parts (the lips and the mouth between them) stays: its contrast with its
    # ring says nothing about where each of its parts sits (moved whole, the lips lost 0.04). So
    # does a part on the edge between two classes (an ear against hair or background): the photo's
    # contrast there is the edge's, wherever the part sits (moved, the ears lost 0.03-0.06).
    movable = single & (around.amax(2) >= snapping.enclosed * around.sum(2)) & (around.sum(2) > 0)
    area, ring_area = region.sum(2, keepdim=True).clamp_min(1), ring.sum(2, keepdim=True).clamp_min(1)

    def contrast(dy: int, dx: int) -> torch.Tensor:
        """(B, G): the contrast of every group moved by (dy, dx), read as the photo moved by
        (-dy, -dx) under the unmoved group (edges repeat)."""
        pad = F.pad(rgb, (1 + abs(dx), 1 + abs(dx), 1 + abs(dy), 1 + abs(dy)), mode="replicate")
        oy, ox = 1 + abs(dy) + dy, 1 + abs(dx) + dx
        seen = pad[:, :, oy: oy + h, ox: ox + w].flatten(2).transpose(1, 2)  # (B, S*S, 3)
        return (region @ seen / area - ring @ seen / ring_area).norm(dim=2)

    r = snapping.radius
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    best = torch.where(movable, contrast(0, 0) * (1 + snapping.margin), torch.full((b, g), float("inf"), device=x.device))
    choice = torch.full((b, g), -1, dtype=torch.long, device=x.device)
    for i, (dy, dx) in enumerate(offsets):  # the first of equal scores wins: a fixed order
        score = contrast(dy, dx)
        better = score > best
        best = torch.where(better, score, best)
        choice = torch.where(better, torch.full_like(choice, i), choice)
    if not bool((choice >= 0).any()):
        return logits
    rest = x.masked_fill(parts[None, :, None, None], float("-inf")).argmax(1, keepdim=True)
    moved = (choice >= 0)[:, :, None, None] & groups  # (B, G, S, S) pixels that leave
    snapped = torch.where(moved.any(1, keepdim=True), rest, labels)
    for i, (dy, dx) in enumerate(offsets):  # two moved groups landing on one pixel: the later offset's wins
        going = (choice == i)[:, :, None, None] & groups
        if bool(going.any()):
            arrive = shifted(going.any(1, keepdim=True).float(), dy, dx) > 0  # only moved pixels: their labels
            snapped = torch.where(arrive, shifted(labels, dy, dx), snapped)
    changed = snapped != labels
    lift = x.amax(1, keepdim=True) + 1.0  # the new class's logit where a pixel changed: now its argmax
    out = x.scatter(1, snapped, torch.where(changed, lift, x.gather(1, snapped)))
    return out.to(logits.dtype)


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
