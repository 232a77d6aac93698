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
files is never drawn. Nothing but the domain's own files and the frozen generator is read.
"""
from __future__ import annotations

import math

import torch

from synthgen.anchors.anchor import Anchor
from synthgen.generators.base import FrozenGenerator

# Pixels kept per sampled output: a strided grid of about this many, so 1024-px masks cost
# what 32-px ones do.
PIXELS_PER_SAMPLE = 1024
ABSENT_EPS = 1e-6  # share given to a class the files never show (its offset then sinks far below 0)


def file_class_shares(counts: torch.Tensor) -> torch.Tensor:
    """Pixel counts per class over the domain's files (K,) -> their shares."""
    counts = counts.double()
    return (counts / counts.sum().clamp_min(1)).float()


@torch.no_grad()
def sampled_logits(anchor: Anchor, generator: FrozenGenerator, n: int, seed: int, batch_size: int = 32) -> torch.Tensor:
    """The regressor's logits on n latents drawn as `sample` draws them (seed, indices 0..n-1),
    on a strided pixel grid: (n * pixels, K)."""
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
    return torch.cat(rows)


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
        for c in over:
            cur = logits + bias
            others = cur.clone()
            others[:, c] = float("-inf")
            margin = cur[:, c] - others.max(1).values  # > 0: the pixel is c's
            keep = int(float(target[c]) * n)
            if int((margin > 0).sum()) <= keep:
                continue
            # the (keep + 1)-th largest margin: lowering c by it leaves exactly `keep` pixels above 0
            threshold = float(torch.kthvalue(-margin, keep + 1).values.neg())
            bias[c] -= max(threshold, 0.0) + 1e-6
            moved = True
        if not moved:
            break
    return bias


def fold_class_offsets(anchor: Anchor, bias: torch.Tensor) -> None:
    """Add per-class offsets to the logits the regressor outputs (its heads' last biases)."""
    anchor.regressor.add_output_bias(bias)


def calibrate_class_frequencies(anchor: Anchor, generator: FrozenGenerator, file_counts: torch.Tensor, n: int,
                                seed: int) -> dict:
    """Fit and fold the offsets of a mask anchor; returns what to record in its metadata."""
    if anchor.spec.kind != "mask" or anchor.regressor is None:
        raise ValueError(f"class-frequency calibration needs a mask domain, not {anchor.spec.kind!r}")
    logits = sampled_logits(anchor, generator, n, seed)
    target = file_class_shares(file_counts)
    before = argmax_shares(logits, torch.zeros(logits.shape[1]))
    bias = frequency_offsets(logits, target)
    fold_class_offsets(anchor, bias)
    after = argmax_shares(logits, bias)
    names = anchor.spec.class_names
    return {"latents": n, "seed": seed,
            "offsets": {c: round(float(b), 4) for c, b in zip(names, bias)},
            "share_files": {c: round(float(s), 5) for c, s in zip(names, target)},
            "share_before": {c: round(float(s), 5) for c, s in zip(names, before)},
            "share_after": {c: round(float(s), 5) for c, s in zip(names, after)}}
