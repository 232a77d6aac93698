"""Photo-guided refinement of a mask anchor's large classes (skin, hair, background, ...).

A regressor that reads the coarse feature levels (`--feature-tap pyramid`) draws a large
class's outline partly where the encoder *meant* it when it was fit (a file's hairstyle),
which G draws only loosely; on G's own samples the hair then spills into the background
or stops short of it. G's photo shows where the outline is. After the regressor, a few
mean-field steps of a dense CRF (Krähenbühl & Koltun 2011), in a window and with a
bilateral kernel on the photo's colours, let each pixel of a large class take the large
class its look-alike neighbours have. The parts (classes under 2% of the files' pixels, the
classes part alignment moves) are left exactly as the regressor draws them: on low-contrast
parts such as the nose and lips the smoothing would erase them.

Nothing is learned: it reads the regressor's output, G's photo of the same latents and, once,
the class shares of the domain's files. The settings are recorded in the anchor file
(`photo_refinement` in its metadata), so `sample`, `translate` and `eval` apply it through
`Anchor.regress`; fit never does (its losses read the heads themselves).

The same refinement also measures a regressor: `photo_agreement` is how little it moves the
large classes, the judge-free score by which `synthgen fit --trials` picks a seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from synthgen.anchors.alignment import movable_classes
from synthgen.anchors.regressor import mean_of_heads
from synthgen.metrics import ConfusionMatrix

METADATA_KEY = "photo_refinement"
FREE_LOGIT = -1e4  # a part's logit at a pixel the refinement gave to a large class: never its argmax


@dataclass(frozen=True)
class PhotoRefinement:
    classes: tuple[int, ...]  # the large classes: a pixel drawn as one of them may become another
    radius: int = 3  # window of (2 radius + 1)^2 neighbours
    sigma_xy: float = 3.0  # pixels
    sigma_rgb: float = 0.1  # photo values in [-1, 1]
    weight: float = 1.0
    iterations: int = 5

    def to_dict(self) -> dict:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> "PhotoRefinement":
        return cls(**{**d, "classes": tuple(int(c) for c in d["classes"])})


def large_class_refinement(file_class_counts: torch.Tensor) -> PhotoRefinement:
    """The refinement of a mask domain whose files have these per-class pixel counts: every
    class present in the files that part alignment would not move (>= 2% of the pixels)."""
    counts = file_class_counts.double()
    large = (counts > 0) & ~movable_classes(counts)
    return PhotoRefinement(classes=tuple(int(c) for c in torch.nonzero(large).flatten()))


def refine_logits(logits: torch.Tensor, photo: torch.Tensor, refinement: PhotoRefinement) -> torch.Tensor:
    """(B, K, S, S) logits and G's (B, 3, S, S) photo in [-1, 1] -> logits whose argmax is the
    refined label: a pixel whose argmax is a part keeps its logits; every other pixel gets the
    log of its mean-field distribution over the large classes (the parts at FREE_LOGIT).

    Per sample and per pixel window only, so a sample's output does not depend on its batch.
    """
    k = logits.shape[1]
    large = torch.zeros(k, dtype=torch.bool, device=logits.device)
    large[list(refinement.classes)] = True
    index = torch.nonzero(large).flatten()
    x = logits.float()
    rgb = photo.float().clamp(-1, 1)
    # The mean field runs on the large classes alone: a part never gains a pixel here, so its
    # probability would stay 0 and its messages cost most of the work (e.g. 14 of 19 classes).
    unary = F.log_softmax(x, 1).index_select(1, index)
    q = unary.softmax(1)
    r, (h, w) = refinement.radius, x.shape[-2:]
    rgb_pad = F.pad(rgb, (r, r, r, r), mode="replicate")
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    # The bilateral weight of each neighbour (B, 1, S, S), once: the photo does not change.
    kernels = []
    for dy, dx in offsets:
        near = rgb_pad[:, :, r + dy: r + dy + h, r + dx: r + dx + w]
        colour = (near - rgb).square().sum(1, keepdim=True) / (2 * refinement.sigma_rgb ** 2)
        kernels.append(refinement.weight * torch.exp(-(dy * dy + dx * dx) / (2 * refinement.sigma_xy ** 2) - colour))
    for _ in range(refinement.iterations):
        q_pad = F.pad(q, (r, r, r, r), mode="replicate")
        message = torch.zeros_like(q)
        for (dy, dx), kernel in zip(offsets, kernels):
            message.addcmul_(q_pad[:, :, r + dy: r + dy + h, r + dx: r + dx + w], kernel)
        q = (unary + message).softmax(1)
    refined = torch.full_like(x, FREE_LOGIT)
    refined[:, index] = q.clamp_min(1e-30).log()
    keep = (~large)[x.argmax(1)].unsqueeze(1)  # pixels the regressor gives to a part
    return torch.where(keep, x, refined).to(logits.dtype)


@torch.no_grad()
def photo_agreement(anchor, generator, refinement: PhotoRefinement, n: int, seed: int,
                    batch_size: int = 50) -> dict[str, float]:
    """How closely a mask anchor's large classes follow G's photo: per large class, the IoU
    between the regressor's labels and the same labels refined on the photo, over n latents
    drawn as `sample` draws them (seed, indices 0..n-1). A regressor that draws a large
    class where the encoder meant it (a template hair outline) rather than where the photo
    shows it loses pixels to the refinement. Reads only the regressor and G's photo of the
    same pass: no judge. The anchor's own recorded refinement, if any, is not applied first."""
    names = anchor.spec.class_names
    agreement = ConfusionMatrix(len(names))  # rows: refined, columns: as drawn
    was_training = anchor.training
    anchor.eval()
    try:
        for lo in range(0, n, batch_size):
            syn = generator.synthesize(generator.sample_latents(list(range(lo, min(lo + batch_size, n))), seed),
                                       taps=(anchor.tap,))
            raw = mean_of_heads(anchor.regress_heads(syn)).float()
            agreement.update(raw.argmax(1), refine_logits(raw, syn.photo(anchor.size), refinement).argmax(1))
    finally:
        anchor.train(was_training)
    iou = agreement.iou()
    return {names[c]: round(float(iou[c]), 4) for c in refinement.classes if iou[c] == iou[c]}  # NaN: in neither
