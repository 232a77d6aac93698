"""Training and scoring the reference segmenter on in-memory (photo, mask) pairs.

Made for a small CPU: the whole training set sits in memory as uint8 tensors, a batch is
an index draw plus a light augmentation, and every random choice comes from one seeded
generator, so the same (data, config) gives the same weights.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from synthgen.evaluation.errors import EvaluationError
from synthgen.evaluation.pairs import Pairs, read_pairs
from synthgen.evaluation.segmenter import (
    SegmenterConfig,
    UNet,
    count_parameters,
    images_to_input,
    predict,
    save_segmenter,
)
from synthgen.metrics import ConfusionMatrix


@dataclass
class TrainConfig:
    steps: int = 2000  # optimizer steps
    batch_size: int = 16  # pairs per step
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to 5% by the last step
    seed: int = 0  # weight init, batch order and augmentation
    flip: bool = True  # horizontal flips, swapping left/right classes
    jitter: float = 0.1  # brightness/contrast jitter amplitude (fraction of the range)


def mirror_class_map(class_names: list[str]) -> torch.Tensor:
    """(K,) class id -> id after a horizontal flip: l_eye <-> r_eye, l_brow <-> r_brow, ...

    A flipped face's left eye is labelled right eye by the CelebAMask-HQ convention;
    flipping pixels without swapping labels would teach the net that sides are random.
    """
    ids = {name: i for i, name in enumerate(class_names)}
    table = torch.arange(len(class_names))
    for name, i in ids.items():
        if name.startswith("l_") and "r_" + name[2:] in ids:
            j = ids["r_" + name[2:]]
            table[i], table[j] = j, i
    return table


def augment(
    x: torch.Tensor, y: torch.Tensor, config: TrainConfig, mirror: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, 3, H, W) in [-1, 1], y (B, H, W) class ids -> lightly augmented copies."""
    b = x.shape[0]
    if config.flip:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], mirror[y.flip(-1)], y)
    if config.jitter:
        gain = 1 + config.jitter * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
        shift = config.jitter * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
        x = (x * gain + shift).clamp(-1, 1)
    return x, y


def check_class_ids(masks: np.ndarray, num_classes: int, where: str = "masks") -> None:
    top = int(masks.max(initial=0))
    if top >= num_classes:
        raise EvaluationError(
            f"{where} hold class id {top} but the segmenter has {num_classes} classes: "
            "check the label order or pass the right class count"
        )


def new_segmenter(config: SegmenterConfig, seed: int) -> UNet:
    """A freshly initialised U-Net whose weights depend only on (config, seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(config)


def train_segmenter(
    pairs: Pairs,
    config: TrainConfig | None = None,
    model_config: SegmenterConfig | None = None,
    progress: bool = True,
    desc: str = "segmenter",
) -> tuple[UNet, dict]:
    """Train a fresh U-Net on `pairs` with Adam + cross-entropy; returns it and training facts."""
    config = config or TrainConfig()
    model_config = model_config or SegmenterConfig(train_size=pairs.images.shape[1])
    check_class_ids(pairs.masks, model_config.num_classes)
    model = new_segmenter(model_config, config.seed)
    images = torch.from_numpy(pairs.images)  # (N, H, W, 3) uint8, decoded once
    masks = torch.from_numpy(pairs.masks).long()  # (N, H, W)
    mirror = mirror_class_map(model_config.class_names)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * s / max(config.steps, 1)))
    )
    model.train()
    losses = []
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        idx = torch.randint(len(images), (config.batch_size,), generator=gen)
        x, y = augment(images_to_input(images[idx]), masks[idx], config, mirror, gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    seconds = time.perf_counter() - started
    model.eval()
    facts = {
        "train_config": asdict(config),
        "train_pairs": len(pairs),
        "parameters": count_parameters(model),
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
        "seconds": seconds,
        "steps_per_second": config.steps / seconds if seconds > 0 else None,
    }
    return model, facts


def evaluate_segmenter(model: UNet, pairs: Pairs, batch_size: int = 64) -> ConfusionMatrix:
    """Confusion matrix of the model's predictions on `pairs` (accumulated over batches)."""
    check_class_ids(pairs.masks, model.config.num_classes, "test masks")
    cm = ConfusionMatrix(model.config.num_classes, model.config.class_names)
    for start in range(0, len(pairs), batch_size):
        pred = predict(model, pairs.images[start : start + batch_size], batch_size=batch_size)
        cm.update(pred, pairs.masks[start : start + batch_size])
    return cm


def train_segmenter_on_folder(
    *,
    data: str | Path,
    out: str | Path,
    steps: int = 2000,
    batch_size: int = 16,
    seed: int = 0,
    n: int | None = None,
    size: int | None = None,
    num_classes: int = 19,
    base_channels: int = 16,
    lr: float = 2e-3,
    val: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Read pairs from `data`, train, save to `out`; optionally score on `val` pairs."""
    pairs = read_pairs(data, n=n, size=size)
    model_config = SegmenterConfig(
        num_classes=num_classes, base_channels=base_channels, train_size=pairs.images.shape[1]
    )
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    model, facts = train_segmenter(pairs, config, model_config, progress=progress)
    facts["data"] = str(data)
    if val:
        facts["val"] = evaluate_segmenter(model, read_pairs(val, size=pairs.images.shape[1])).report()
    save_segmenter(model, out, extra=facts)
    facts["out"] = str(out)
    return facts
