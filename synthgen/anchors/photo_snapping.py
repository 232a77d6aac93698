"""Photo snapping: a mask's small parts moved onto where G's photo shows them.

A seg anchor learns from pairs (G's features at E(m), m), and G draws a part a pixel or two
off the place the file m has it. G's photo shows a part as a region whose colour stands out
from what surrounds it, so per sample the part pixels (the classes part alignment moves,
under 2% of the files' pixels) form 8-connected groups, and a group of one class enclosed by
one class (an eye in the skin) moves as a whole, by the whole-pixel shift within `radius`,
to where its mean colour differs most from that of a one-pixel ring around it, if that raises
the contrast by more than `margin` (relative). Groups of several classes (the lips and the
mouth) and groups on the edge between two classes (an ear against hair) stay: there the
photo's contrast does not say where each part is.

`fit --photo-snap` applies it to each file's mask before the loss, on G's photo at the
encoder's latents (`snap_target`), so the regressor learns a part where the photo shows it.
Applied instead to the labels after the regressor (`snap_parts` on its logits,
scripts/probe_part_snapping.py) it raised the eyes against the reference segmenter but
trained worse downstream eyes; in the fit the eyes rose against the judge and downstream,
and the shipped seg anchor is a recipe run continued 1,500 steps with it (docs/anchors.md,
"Part snapping onto the photo"). Only the files, the regressor's classes and G's photo are read.

`fit --photo-trim` then trims what snapping cannot move: a part's edge pixels (those with a
large-class neighbour) whose colour in G's photo is nearer the mean of the part's large-class
ring than TRIM_MARGIN times its distance to the part's own mean colour take the nearest large
class (`trim_target`), where the part stands out from its ring by at least TRIM_MIN_CONTRAST. It
was made for a part of several classes (the lips drawn two rows tall where G draws one), which it
barely moved, and a part drawn thicker than the photo shows it (a brow), which it thins; the labels
gained against the judge, the downstream net did not (docs/anchors.md, "Parts trimmed to the photo").
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from synthgen.anchors.alignment import fill_static, max3x3, shifted

SNAP_MARGIN = 0.5  # a move must raise the part's contrast with its ring by more than half
SNAP_ENCLOSED = 0.8  # share of a group's ring one class must hold for the group to move
TRIM_MARGIN = 0.7  # an edge pixel is trimmed when nearer the ring's colour than this x its distance to the part's
TRIM_MIN_CONTRAST = 0.3  # parts whose mean colour is nearer their ring's than this (photo in [-1, 1]) are left alone


class PartSnapping(NamedTuple):
    classes: tuple[int, ...]  # the parts
    radius: int = 1  # largest shift per axis, in pixels
    margin: float = SNAP_MARGIN  # a move must raise the part's contrast with its ring by more than this fraction
    enclosed: float = SNAP_ENCLOSED  # share of a group's ring one class must hold for the group to move


def part_groups(parts: torch.Tensor, max_groups: int) -> torch.Tensor:
    """(B, 1, S, S) bool -> (B, G, S, S) bool: the 8-connected groups of each sample's part pixels,
    G the most any sample has (at most max_groups; a sample's further groups are left out, so they
    stay as drawn), in a fixed order per sample (by the group's largest pixel index)."""
    b, _, h, w = parts.shape
    ids = torch.arange(1, h * w + 1, dtype=torch.float32, device=parts.device).view(1, 1, h, w) * parts
    for _ in range(h * w):  # each pass spreads a group's largest id one pixel further
        spread = max3x3(ids) * parts
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
    ring = (max3x3(groups) & ~groups).flatten(2).float()
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


@torch.no_grad()
def snap_target(target: torch.Tensor, photo: torch.Tensor, movable: torch.Tensor, radius: int) -> torch.Tensor:
    """target (B, S, S) class ids with its movable classes' groups snapped onto G's (B, 3, S, S)
    photo (radius, SNAP_MARGIN, SNAP_ENCLOSED); a pixel a part leaves takes the nearest static
    class, as part alignment fills it."""
    classes = tuple(int(c) for c in movable.nonzero().flatten())
    if radius <= 0 or not classes:
        return target
    k = movable.numel()
    logits = 2.0 * F.one_hot(target, k).permute(0, 3, 1, 2).float()
    logits += F.one_hot(fill_static(target, movable), k).permute(0, 3, 1, 2).float()  # the runner-up where a part leaves
    return snap_parts(logits, photo, PartSnapping(classes, radius)).argmax(1)


@torch.no_grad()
def trim_target(target: torch.Tensor, photo: torch.Tensor, movable: torch.Tensor,
                margin: float = TRIM_MARGIN, min_contrast: float = TRIM_MIN_CONTRAST) -> torch.Tensor:
    """target (B, S, S) with each movable class's edge pixels that look like its surroundings in
    G's (B, 3, S, S) photo given to the nearest static class. Per sample and class: the part's
    mean colour, and that of the static pixels 8-adjacent to it (its ring); where the two differ
    by at least `min_contrast`, a part pixel with a static neighbour whose colour is nearer the
    ring's mean than `margin` x its distance to the part's mean is trimmed. Every class is judged
    on the input target, so the order of the classes does not matter."""
    static = ~movable[target]
    near_static = max3x3(static)
    fill = fill_static(target, movable)
    out = target.clone()
    for c in movable.nonzero().flatten().tolist():
        part = target == c
        ring = max3x3(part) & static
        n_part, n_ring = part.sum((1, 2)), ring.sum((1, 2))
        seen = (n_part > 0) & (n_ring > 0)
        if not seen.any():
            continue
        mean_part = (photo * part[:, None]).sum((2, 3)) / n_part.clamp(min=1)[:, None]
        mean_ring = (photo * ring[:, None]).sum((2, 3)) / n_ring.clamp(min=1)[:, None]
        stands_out = seen & ((mean_part - mean_ring).norm(dim=1) >= min_contrast)
        to_ring = (photo - mean_ring[:, :, None, None]).norm(dim=1)
        to_part = (photo - mean_part[:, :, None, None]).norm(dim=1)
        trimmed = part & near_static & (to_ring < margin * to_part) & stands_out[:, None, None]
        out = torch.where(trimmed, fill, out)
    return out
