"""Would G's photo place a seg anchor's parts better than its regressor does? Judge-free snapping.

A regressor taught on encoded latents draws a part where the domain's files have it at those
latents; on G's own samples G may draw it a pixel off (the built-in seg anchor draws both eyes
about a row below the judge's reading of G's photo: docs/anchors.md, "Parts drawn off place").
This probe reads only the anchor's labels and G's photo of the same pass: per sample, the part
pixels (classes under 2% of the files' pixels, from the anchor's calibration record) form
8-connected groups (an eye; the lips and the mouth between them), and each group moves as a
whole, by the whole-pixel shift within `--radius`, to where its region's mean colour differs
most from that of a one-pixel ring around it, if that contrast grows by more than `--margin`
(relative). Pixels a group leaves take the best non-part class there. It then prints, per
setting, the labels' IoU against the reference segmenter on the photo (the judge), drawn and
snapped, on latents drawn as `synthgen sample` draws them.

    python scripts/probe_part_snapping.py --anchor domains/seg.safetensors --n 300 --seed 123 --settings 1:0.5,1:1.0
"""
from __future__ import annotations

import json
from typing import NamedTuple

import click
import torch
import torch.nn.functional as F


class PartSnapping(NamedTuple):
    classes: tuple[int, ...]  # the parts: each group of them may move as a whole
    radius: int = 1  # largest shift per axis, in pixels
    margin: float = 0.5  # a move must raise the contrast by more than this fraction


def _shift(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """x (B, C, H, W) moved down by dy and right by dx; uncovered pixels are `fill`."""
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    out[..., max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
        x[..., max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return out


def region_contrast(region: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) 0/1 region and (B, 3, S, S) photo -> (B,) distance between the region's mean
    colour and that of the one-pixel ring around it (0 where the region or the ring is empty)."""
    ring = F.max_pool2d(region, 3, 1, 1) - region
    area, ring_area = region.sum((2, 3)), ring.sum((2, 3))
    inside = (photo * region).sum((2, 3)) / area.clamp_min(1)
    around = (photo * ring).sum((2, 3)) / ring_area.clamp_min(1)
    found = (area > 0) & (ring_area > 0)
    return torch.where(found.squeeze(1), (inside - around).norm(dim=1), torch.zeros_like(area[:, 0]))


def part_groups(parts: torch.Tensor, max_groups: int) -> torch.Tensor:
    """(B, 1, S, S) bool -> (B, G, S, S) bool: the 8-connected groups of each sample's part pixels
    (at most max_groups per sample, the rest empty), in a fixed order (by the group's last pixel)."""
    b, _, h, w = parts.shape
    ids = torch.arange(1, h * w + 1, dtype=torch.float32, device=parts.device).view(1, 1, h, w) * parts
    for _ in range(h * w):  # each pass spreads a group's largest id one pixel further
        spread = F.max_pool2d(ids, 3, 1, 1) * parts
        if torch.equal(spread, ids):
            break
        ids = spread
    flat = ids.flatten(1)
    groups = torch.zeros(b, max_groups, h * w, dtype=torch.bool, device=parts.device)
    for i in range(b):
        for g, v in enumerate(flat[i].unique().flip(0)[:max_groups]):
            if v > 0:
                groups[i, g] = flat[i] == v
    return groups.view(b, max_groups, h, w)


def snap_parts(logits: torch.Tensor, photo: torch.Tensor, snapping: PartSnapping, max_groups: int = 32) -> torch.Tensor:
    """(B, K, S, S) logits and G's (B, 3, S, S) photo in [-1, 1] -> logits whose argmax is the
    snapped label. Per sample, the part pixels form connected groups (an eye; the lips and the
    mouth between them); each group moves as a whole, its classes kept, to the shift that sets it
    off most from its ring in the photo (by more than the margin; else it stays). Pixels a group
    leaves take the best non-part class there. Logits of unchanged pixels are untouched. Per
    sample only, so a sample's output does not depend on its batch."""
    x = logits.float()
    rgb = photo.float().clamp(-1, 1)
    labels = x.argmax(1, keepdim=True)
    parts = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
    parts[list(snapping.classes)] = True
    is_part = parts[labels]
    if not bool(is_part.any()):
        return logits
    b, _, h, w = labels.shape
    groups = part_groups(is_part, max_groups)  # (B, G, S, S)
    g = groups.shape[1]
    region = groups.reshape(b * g, 1, h, w).float()
    photos = rgb.repeat_interleave(g, 0)
    r = snapping.radius
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    best = region_contrast(region, photos) * (1 + snapping.margin)
    choice = torch.full((b * g,), -1, dtype=torch.long, device=x.device)
    for i, (dy, dx) in enumerate(offsets):  # the first of equal scores wins: a fixed order
        score = region_contrast(_shift(region, dy, dx, 0.0), photos)
        better = score > best
        best = torch.where(better, score, best)
        choice = torch.where(better, torch.full_like(choice, i), choice)
    if not bool((choice >= 0).any()):
        return logits
    rest = x.masked_fill(parts[None, :, None, None], float("-inf")).argmax(1, keepdim=True)
    group_labels = torch.where(region > 0, labels.repeat_interleave(g, 0), torch.full_like(region, -1, dtype=torch.long))
    placed = torch.full_like(group_labels, -1)
    for i, (dy, dx) in enumerate(offsets):
        rows = choice == i
        if bool(rows.any()):
            placed[rows] = _shift(group_labels[rows], dy, dx, -1)
    left = ((choice >= 0)[:, None, None, None] & (region > 0)).view(b, g, h, w).any(1, keepdim=True)
    snapped = torch.where(left, rest, labels)
    for k in range(g):  # moved groups painted in their fixed order
        moved_here = placed.view(b, g, 1, h, w)[:, k]
        snapped = torch.where(moved_here >= 0, moved_here, snapped)
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
@click.option("--settings", default="1:0.5,1:1.0", show_default=True,
              help="Comma-separated RADIUS:MARGIN pairs to measure.")
@click.option("--batch-size", type=click.IntRange(1), default=50, show_default=True, help="Latents per generator pass.")
def main(anchor: str, generator: str, judge: str, n: int, seed: int, settings: str, batch_size: int) -> None:
    """Per setting, the labels' IoU against the judge, as drawn and snapped on G's photo."""
    from synthgen.anchors.alignment import movable_classes
    from synthgen.anchors.anchor import anchor_taps, load_anchor
    from synthgen.anchors.codecs import decode
    from synthgen.anchors.spec import DomainSpec
    from synthgen.evaluation.segmenter import load_segmenter, predict
    from synthgen.generators import load_generator
    from synthgen.metrics import ConfusionMatrix

    G = load_generator(generator).freeze()
    a = load_anchor(anchor, generator=G)
    record = a.metadata.get("class_frequency_calibration")
    if a.spec.kind != "mask" or record is None:
        raise click.ClickException(f"{anchor}: needs a mask anchor with a class-frequency calibration record "
                                   "(fit's default --calibration-latents)")
    names = a.spec.class_names
    parts = movable_classes(torch.tensor([record["share_files"][c] for c in names]))
    try:
        pairs = [(int(r), float(m)) for r, m in (s.split(":") for s in settings.split(","))]
    except ValueError:
        raise click.ClickException(f"--settings {settings!r}: expected RADIUS:MARGIN pairs such as 1:0.5") from None
    snaps = [PartSnapping(tuple(int(c) for c in torch.nonzero(parts).flatten()), r, m) for r, m in pairs]
    segmenter = load_segmenter(judge)
    photo_spec = DomainSpec(name="photo", kind="image", channels=3)
    scores = [ConfusionMatrix(len(names), names) for _ in range(len(snaps) + 1)]
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            syn = G.synthesize(G.sample_latents(list(range(lo, min(lo + batch_size, n))), seed), taps=anchor_taps([a]))
            truth = predict(segmenter, decode(photo_spec, syn.rgb)["image"])
            raw = a.regress(syn)
            scores[0].update(decode(a.spec, raw)["mask"], truth)
            for snap, score in zip(snaps, scores[1:]):
                score.update(decode(a.spec, snap_parts(raw, syn.photo(a.size), snap))["mask"], truth)
    for label, score in zip(["drawn"] + [f"{r}:{m}" for r, m in pairs], scores):
        report = score.report()
        iou = {names[c]: round(report["iou"][names[c]], 3) for c in snaps[0].classes
               if report["iou"][names[c]] == report["iou"][names[c]]}  # NaN: in neither
        click.echo(json.dumps({"setting": label, "miou": round(report["miou"], 4), "parts": iou}))


if __name__ == "__main__":
    main()
