"""Part alignment: a mask file's small parts moved onto where the regressor reads them.

A seg anchor learns from pairs (G's features at E(m), m), and G rarely draws a part exactly
where the file has it: at the previous seg anchor's encoder latents the reference
segmenter's parsing of G's photo meets the files' eyes, brows and nose at IoU 0.28-0.36, and
at 0.54-0.68 once each part may move freely by up to 2 px to where it sees them
(docs/anchors.md, "Part alignment", which also gives the centred figures). Under plain
cross-entropy the 1x1 regressor then learns that an eye's features mean "eye" only a third
of the time, and it blurs or drops the part. Moving each small class of the target by the
shift (within `radius`) that the regressor's own output best supports, before the loss,
keeps the file's shape and count of every part and only corrects its position by a few
pixels, the way edge learners align noisy boundaries to their prediction (STEAL, Acuna et
al. 2019). Only the domain's files and R's own output are read, so the rule holds for any
mask domain and any generator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# A class covering less than this share of the files' pixels is a part that can be moved;
# larger ones (background, skin, hair, clothes) stay where the file has them and fill the
# pixels a moved part leaves.
MOVABLE_MAX_SHARE = 0.02


def movable_classes(counts: torch.Tensor, max_share: float = MOVABLE_MAX_SHARE) -> torch.Tensor:
    """(K,) bool: classes present in the files with less than max_share of their pixels."""
    share = counts.double() / counts.sum().clamp(min=1)
    return (share > 0) & (share < max_share)


def max3x3(t: torch.Tensor) -> torch.Tensor:
    """F.max_pool2d(t, 3, 1, 1) over the last two dims, for any dtype (bool included).

    Rows, then columns, each the maximum of three shifted views: on the CPU 10-20x faster than
    max_pool2d's 3x3 window at these sizes, and the same values (the border takes the maximum of
    its in-bounds neighbours, as max_pool2d's -inf padding gives).
    """
    rows = t.clone()
    rows[..., 1:] = torch.maximum(rows[..., 1:], t[..., :-1])
    rows[..., :-1] = torch.maximum(rows[..., :-1], t[..., 1:])
    out = rows.clone()
    out[..., 1:, :] = torch.maximum(out[..., 1:, :], rows[..., :-1, :])
    out[..., :-1, :] = torch.maximum(out[..., :-1, :], rows[..., 1:, :])
    return out


def fill_static(target: torch.Tensor, movable: torch.Tensor) -> torch.Tensor:
    """target (B, S, S) ids with every movable pixel given the nearest static class (3x3 growth;
    among static classes equally near, the lowest id)."""
    static = (~movable).nonzero().flatten().to(target.device)
    grow = target[:, None] == static[None, :, None, None]  # (B, static classes, S, S)
    for _ in range(target.shape[-1]):
        unassigned = ~grow.any(1, keepdim=True)
        if not unassigned.any():
            break
        grow |= unassigned & max3x3(grow)
    # argmax takes the first of equal maxima: the lowest static id. A map with no static class at all stays 0.
    return torch.where(grow.any(1), static[grow.to(torch.uint8).argmax(1)], 0)


def shifted(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """t (..., S, S) moved by (dy, dx) pixels; what enters is 0."""
    s = t.shape[-1]
    out = torch.zeros_like(t)
    out[..., max(dy, 0):s + min(dy, 0), max(dx, 0):s + min(dx, 0)] = \
        t[..., max(-dy, 0):s + min(-dy, 0), max(-dx, 0):s + min(-dx, 0)]
    return out


@torch.no_grad()
def align_target(target: torch.Tensor, log_probs: torch.Tensor, movable: torch.Tensor, radius: int,
                 centered: bool = True) -> torch.Tensor:
    """target (B, S, S) class ids with each movable class moved by its best shift.

    log_probs (B, K, S, S): the regressor's log-softmax. A class c's region t_c moved by d
    scores sum_x t_c(x - d) * (log p_c(x) - log p_base(x)), the log-likelihood it gains over
    the static class under it; the best d with |dy|, |dx| <= radius wins (near-ties: no move). The
    moved parts are painted over the static fill in class order.

    centered: each class's shifts are taken relative to their median over the batch (the
    samples holding the class), so the batch's typical displacement of a part is zero.
    Without it the loss no longer cares where, within the radius, R draws a part, and R's
    map drifts off the files by a constant offset that the alignment then follows.
    """
    classes = movable.nonzero().flatten().tolist()
    if radius <= 0 or not classes:
        return target
    base = fill_static(target, movable)
    log_probs = log_probs.float()
    gain = log_probs[:, classes] - log_probs.gather(1, base[:, None])  # (B, M, S, S)
    parts = torch.stack([target == c for c in classes], 1).float()  # (B, M, S, S)
    padded = F.pad(gain, (radius,) * 4)
    s = target.shape[-1]
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    scores = torch.stack([(parts * padded[..., radius + dy:radius + dy + s, radius + dx:radius + dx + s]).sum((2, 3))
                          for dy, dx in shifts], -1)  # (B, M, shifts): score of moving part m by d
    # A move must gain over 1e-3 nats per pixel of the part: a tie (up to float rounding) keeps the file's position.
    scores[..., shifts.index((0, 0))] += 1e-3 * parts.sum((2, 3)) + 1e-6
    best = scores.argmax(-1)
    if centered:
        best = _centered(best, parts.sum((2, 3)) > 0, radius)
    placed = torch.zeros_like(parts)
    for i, (dy, dx) in enumerate(shifts):
        chosen = (best == i)[..., None, None]
        if chosen.any():
            placed += shifted(parts, dy, dx) * chosen
    out = base.clone()
    for m, c in enumerate(classes):
        out[placed[:, m] > 0] = c
    return out


def _centered(best: torch.Tensor, present: torch.Tensor, radius: int) -> torch.Tensor:
    """best (B, M) shift indices of a (2r+1)^2 grid, minus each class's median shift over the
    samples where it is present; clamped to the radius."""
    side = 2 * radius + 1
    dy, dx = best // side - radius, best % side - radius
    out = best.clone()
    for m in range(best.shape[1]):
        rows = present[:, m]
        if rows.any():
            cy, cx = dy[rows, m].median(), dx[rows, m].median()
            ny = (dy[:, m] - cy).clamp(-radius, radius)
            nx = (dx[:, m] - cx).clamp(-radius, radius)
            out[:, m] = (ny + radius) * side + (nx + radius)
    return out
