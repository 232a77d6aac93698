"""Class-frequency calibration of a mask regressor on the latents `synthgen sample` draws.

A mask anchor learns at the encoder's latents, where the generated photo follows the mask
only roughly, and with class-balanced cross-entropy (`--class-balance`), which pays a thin
part's pixels more than skin's. Both make the regressor draw parts too large where it is
unsure: on G's own samples, eyes, brows and ears cover two to three times the share of the
picture that they cover in the domain's files.

The files say how much of a picture each class covers on average, and G's samples come from
the same world. So, after the fit, each over-drawn class gets a constant logit offset
(<= 0, folded into the regressor's output bias) that brings its share of argmax pixels on
sampled latents down to its share in the files, including a class that passes its share
only on the pixels others gave up. A class drawn *less* than in the files gets no offset
of its own: raising it would paint parts where G's photos have none. It can still gain
pixels up to its files' share where it is the runner-up of a lowered class (the shipped seg
anchor drew hats on 1.0% of the sampled pixels before and 1.7% after, the files' share;
holding such a class at the share it was drawn at changed its labels against the reference
segmenter by -0.001, and skin, under its share only because the parts over-draw onto it,
must not be held: docs/anchors.md, "Labels where sampling reads"). A class absent from the
files is never drawn.

Pixel shares do not say in how many pictures a class appears. Where unsure, the regressor
scatters small blobs of an occasional class (a hat, glasses, an open mouth) over pictures
that have none: after the share step the seg anchor drew a hat in 27% of its calibration
samples, glasses in 98% and an open mouth in 59%, against 15%, 20% and 28% of the files. So
a second step lowers every occasional class (in fewer than half of the files) that appears
in more samples than in the files until it appears in just that share of them, keeping its
most confident blobs (a class "appears" where it covers at least PRESENCE_AREA of the
picture). On three runs of the seg recipe this moved their labels against the reference
segmenter by +0.004 to +0.007 (docs/anchors.md). Nothing but the domain's own files and the
frozen generator is read.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from synthgen.anchors.anchor import Anchor
from synthgen.anchors.data import DomainDataset
from synthgen.generators.base import FrozenGenerator

# Pixels kept per sampled output: a strided grid of about this many (64 x 64), so 1024-px
# masks cost what 64-px ones do, and a class covering PRESENCE_AREA of the picture still
# holds a few grid pixels.
PIXELS_PER_SAMPLE = 4096
# A class appears in a picture where it covers at least this share of it: 4 px of a 64-px
# mask, so a stray pixel or two of a wavering boundary does not count as a hat.
PRESENCE_AREA = 1 / 1024
# Only occasional classes (in fewer than this share of the files) get a presence offset. A
# class most files hold (hair: 90% of the seg files) is part of nearly every picture, and G
# may draw it more often than the files show (hair in 96% of its photos, by the reference
# segmenter); lowering it to the files' share removed real hair (seg runs of seeds 2 and 3:
# hair 0.67 -> 0.58, 0.75 -> 0.69 against the judge; docs/anchors.md).
OCCASIONAL_PRESENCE = 0.5
ABSENT_EPS = 1e-6  # share given to a class the files never show (its offset then sinks far below 0)


@dataclass(frozen=True)
class FileClassStats:
    """What a mask domain's files say about each class (K,)."""
    pixels: torch.Tensor  # pixel count over the files read
    presence: torch.Tensor  # share of the files in which the class appears (PRESENCE_AREA)

    @property
    def shares(self) -> torch.Tensor:
        counts = self.pixels.double()
        return (counts / counts.sum().clamp_min(1)).float()


def presence_pixels(height: int, width: int) -> int:
    """Pixels a class must cover to appear in a height x width picture."""
    return max(1, round(height * width * PRESENCE_AREA))


def file_class_stats(data: DomainDataset, limit: int = 2000) -> FileClassStats:
    """Pixel counts and presence per class over (up to `limit` of, evenly spread) the mask files."""
    step = max(1, len(data) // limit)
    return mask_class_stats((data[i] for i in range(0, len(data), step)), data.spec.num_classes)


def mask_class_stats(masks: Iterable[torch.Tensor], num_classes: int) -> FileClassStats:
    """Pixel counts and presence per class over (H, W) masks of class ids."""
    k = num_classes
    pixels, present, read = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64), 0
    for mask in masks:
        mask = torch.as_tensor(mask).long()
        counts = torch.bincount(mask.reshape(-1), minlength=k).double()
        pixels += counts
        present += (counts >= presence_pixels(*mask.shape[-2:])).double()
        read += 1
    return FileClassStats(pixels=pixels, presence=(present / max(read, 1)).float())


@torch.no_grad()
def sampled_logits(anchor: Anchor, generator: FrozenGenerator, n: int, seed: int,
                   batch_size: int = 32) -> tuple[torch.Tensor, tuple[int, int]]:
    """The regressor's logits on n latents drawn as `sample` draws them (seed, indices 0..n-1),
    on a strided pixel grid: (n * pixels, K) with each sample's pixels together, and the
    grid's (height, width)."""
    was_training = anchor.training
    anchor.eval()
    rows = []
    try:
        for lo in range(0, n, batch_size):
            idx = list(range(lo, min(lo + batch_size, n)))
            raw = anchor.regress(generator.synthesize(generator.sample_latents(idx, seed), taps=(anchor.tap,))).float()
            stride = max(1, math.ceil(raw.shape[-1] / math.sqrt(PIXELS_PER_SAMPLE)))
            raw = raw[:, :, ::stride, ::stride]
            rows.append(raw.permute(0, 2, 3, 1).reshape(-1, raw.shape[1]).cpu())
    finally:
        anchor.train(was_training)
    return torch.cat(rows), tuple(raw.shape[-2:])


def argmax_shares(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Share of pixels whose argmax is each class, with per-class offsets added: (K,)."""
    k = logits.shape[1]
    counts = torch.bincount((logits + bias).argmax(1), minlength=k).double()
    return (counts / counts.sum()).float()


def frequency_offsets(logits: torch.Tensor, target: torch.Tensor, rounds: int = 100) -> torch.Tensor:
    """Offsets b <= 0 (K,): every class drawn above its `target` share of `logits`' argmax
    pixels is lowered to that share; a class never above it keeps offset 0.

    The pixels a lowered class gives up go to its runner-up, so parts the generator draws
    less often than the files show are never forced in. A class under its share can pass it
    on those pixels (the shipped seg anchor's lowered lips handed the mouth beside them
    3.4 x its share), so the over-drawn classes are recounted every sweep. Coordinate steps,
    each exact: an over-drawn class's pixel margins over the best other class say how far it
    must drop to keep just target_c of the pixels. Offsets only fall; with clear margins it
    settles in a few sweeps. Near-tied logits (an untrained regressor) trade pixels in steps
    of their tiny margins and may end `rounds` sweeps still a little over.
    """
    n, k = logits.shape
    target = target.float()
    bias = torch.zeros(k)
    for _ in range(rounds):
        moved = False
        # Recounted every sweep: a class drawn below its share can pass it on the pixels the
        # lowered classes give up (their runner-up), and is then lowered as well.
        shares = argmax_shares(logits, bias)
        over = [c for c in range(k) if float(shares[c]) > float(target[c]) + 0.5 / n]
        cur = logits + bias
        for c in over:
            # The best other class: the larger of the maxima left and right of column c (exact,
            # and no copy of the (pixels, K) logits per class: 256 latents x 4,096 pixels x K).
            best_other = torch.full((n,), float("-inf"), dtype=cur.dtype, device=cur.device)
            for side in (slice(0, c), slice(c + 1, k)):
                if side.stop > side.start:
                    best_other = torch.maximum(best_other, cur[:, side].amax(1))
            margin = cur[:, c] - best_other  # > 0: the pixel is c's
            keep = int(float(target[c]) * n)
            if int((margin > 0).sum()) <= keep:
                continue
            # the (keep + 1)-th largest margin: lowering c by it leaves exactly `keep` pixels above 0
            threshold = float(torch.kthvalue(-margin, keep + 1).values.neg())
            bias[c] -= max(threshold, 0.0) + 1e-6
            cur[:, c] = logits[:, c] + bias[c]  # the column logits + bias would give
            moved = True
        if not moved:
            break
    return bias


def presence(logits: torch.Tensor, bias: torch.Tensor, min_pixels: int) -> torch.Tensor:
    """Share of samples in which each class holds >= min_pixels argmax pixels: (K,).
    logits: (n, pixels, K), one row per sample."""
    drawn = (logits + bias).argmax(-1)  # (n, pixels)
    return torch.stack([_holds(drawn, c, min_pixels) for c in range(logits.shape[-1])]).float().mean(1)


def _holds(drawn: torch.Tensor, c: int, min_pixels: int) -> torch.Tensor:
    """Per sample (drawn: (n, pixels) argmax classes), whether class c appears in it: (n,) bool."""
    return (drawn == c).sum(1) >= min_pixels


def presence_targets(file_presence: torch.Tensor) -> torch.Tensor:
    """The share of samples each class may appear in: its files' share for an occasional
    class, any share (1) for a class most files hold."""
    return torch.where(file_presence < OCCASIONAL_PRESENCE, file_presence, torch.ones_like(file_presence))


def presence_offsets(logits: torch.Tensor, target: torch.Tensor, min_pixels: int, rounds: int = 30) -> torch.Tensor:
    """Offsets b <= 0 (K,): every class that appears in more than its `target` share of the
    samples (logits: (n, pixels, K)) is lowered until it appears in just that share.

    Per sample, a class appears while its min_pixels-th largest margin over the best other
    class is > 0; lowering it by the (keep + 1)-th largest of those leaves it in `keep`
    samples, the ones where the regressor is surest of it. Recounted every sweep: the pixels a
    lowered class gives up go to its runner-up, which may then appear more often than its
    files show.
    """
    n, _, k = logits.shape
    bias = torch.zeros(k)
    for _ in range(rounds):
        moved = False
        for c in range(k):
            if float(target[c]) >= 1:  # a class that may appear in every sample is never over
                continue
            cur = logits + bias
            appears = _holds(cur.argmax(-1), c, min_pixels).float().mean()
            if float(appears) <= float(target[c]) + 0.5 / n:
                continue
            others = cur.clone()
            others[..., c] = float("-inf")
            margin = cur[..., c] - others.max(-1).values  # (n, pixels); > 0: the pixel is c's
            deciding = margin.topk(min(min_pixels, margin.shape[1]), dim=1).values[:, -1]  # c appears iff > 0
            keep = int(float(target[c]) * n)
            threshold = float(torch.kthvalue(-deciding, keep + 1).values.neg())
            if threshold > 0:
                bias[c] -= threshold + 1e-6
                moved = True
        if not moved:
            break
    return bias


def fold_class_offsets(anchor: Anchor, bias: torch.Tensor) -> None:
    """Add per-class offsets to the logits the regressor outputs (its heads' last biases)."""
    anchor.regressor.add_output_bias(bias)


def calibrate_class_frequencies(anchor: Anchor, generator: FrozenGenerator, files: FileClassStats, n: int,
                                seed: int) -> dict:
    """Fit and fold the offsets of a mask anchor (pixel shares, then presence); returns what to
    record in its metadata."""
    if anchor.spec.kind != "mask" or anchor.regressor is None:
        raise ValueError(f"class-frequency calibration needs a mask domain, not {anchor.spec.kind!r}")
    logits, side = sampled_logits(anchor, generator, n, seed)
    k = logits.shape[1]
    zero = torch.zeros(k)
    target = files.shares
    shares_before = argmax_shares(logits, zero)
    by_share = frequency_offsets(logits, target)
    per_sample = (logits + by_share).reshape(n, -1, k)
    min_pixels = presence_pixels(*side)
    presence_before = presence(per_sample, zero, min_pixels)
    by_presence = presence_offsets(per_sample, presence_targets(files.presence), min_pixels)
    bias = by_share + by_presence
    fold_class_offsets(anchor, bias)
    names = anchor.spec.class_names

    def per_class(values, digits=5):
        return {c: round(float(v), digits) for c, v in zip(names, values)}

    return {"latents": n, "seed": seed, "offsets": per_class(bias, 4), "presence_offsets": per_class(by_presence, 4),
            "share_files": per_class(target), "share_before": per_class(shares_before),
            "share_after": per_class(argmax_shares(logits, bias)),
            "presence_files": per_class(files.presence, 3), "presence_before": per_class(presence_before, 3),
            "presence_after": per_class(presence(per_sample, by_presence, min_pixels), 3)}
