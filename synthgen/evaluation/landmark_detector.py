"""The reference landmark detector: the segmenter's U-Net with one heatmap per point.

It is the landmark judge of `eval consistency`, as the reference segmenter is the seg
judge: trained on paired renders (photo, 68 dlib points) of the ToyFaces `segmenter`
split, never on the generator. The U-Net's head gives K heatmap logits; a point is the
soft-argmax (the expectation of the pixel grid under the softmax of its heatmap, "integral
regression", Sun et al. 2018), trained with an L1 loss on coordinates normalised by the
side. Points are (x, y) pixels with pixel centres at integers, as the codecs write them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthgen.evaluation.errors import PairsError
from synthgen.evaluation.segmenter import SegmenterConfig, UNet, UNetFile, count_parameters, images_to_input

@dataclass
class DetectorConfig:
    num_points: int = 68
    base_channels: int = 16
    depth: int = 3
    train_size: int = 64


def new_detector(config: DetectorConfig, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    model = UNet(SegmenterConfig(num_classes=config.num_points, class_names=[], base_channels=config.base_channels,
                                 depth=config.depth, train_size=config.train_size))
    model.detector_config = config
    return model


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) heatmap logits -> (B, K, 2) expected (x, y) in pixels."""
    b, k, h, w = logits.shape
    prob = logits.flatten(2).softmax(-1).reshape(b, k, h, w)
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device)
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device)
    return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], dim=-1)


def rescale_points(points, from_side: float, to_side: float):
    """Pixel-centre convention: x' = (x + 0.5) * to / from - 0.5."""
    return (points + 0.5) * (to_side / from_side) - 0.5


@torch.no_grad()
def predict_landmarks(model: UNet, images, batch_size: int = 64) -> np.ndarray:
    """uint8 photos (B, H, W, 3), square -> (B, K, 2) float32 points in the photos' pixels."""
    model.eval()
    device = next(model.parameters()).device
    size = model.config.train_size
    out = []
    for start in range(0, len(images), batch_size):
        x = images_to_input(images[start : start + batch_size]).to(device)
        side = x.shape[-1]
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(rescale_points(soft_argmax(model(x)), size, side).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.config.num_classes, 2), np.float32)


def train_landmark_detector(images: np.ndarray, points: np.ndarray, config: DetectorConfig | None = None,
                            steps: int = 2000, batch_size: int = 16, lr: float = 2e-3, seed: int = 0) -> tuple[UNet, dict]:
    """Adam + L1 on side-normalised soft-argmax coordinates, cosine decay to 5 %; no augmentation
    (a flip would need the 68-point left/right permutation). Same data + options + seed = same weights."""
    config = config or DetectorConfig(num_points=points.shape[1], train_size=images.shape[1])
    model = new_detector(config, seed)
    size = config.train_size
    x_all = images_to_input(images)
    if x_all.shape[-1] != size:
        x_all = F.interpolate(x_all, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    y_all = torch.as_tensor(rescale_points(np.asarray(points, np.float32), images.shape[1], size))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    model.train()
    start, loss = time.perf_counter(), torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(len(x_all), (batch_size,), generator=gen)
        loss = (soft_argmax(model(x_all[idx])) - y_all[idx]).abs().mean() / size
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    return model, {"steps": steps, "train_pairs": len(images), "final_loss": float(loss.detach()), "seconds": seconds,
                   "steps_per_second": steps / seconds if seconds else float("nan"),
                   "parameters": count_parameters(model), "seed": seed, "lr": lr, "batch_size": batch_size}


DETECTOR_FILE = UNetFile("synthgen-landmark-detector", "landmark detector", "train-landmark-detector", DetectorConfig,
                         "detector_config", new_detector)


def save_detector(model: UNet, path: str | Path, extra: dict | None = None) -> Path:
    return DETECTOR_FILE.save(model, path, extra)


def load_detector(path: str | Path, device: str = "cpu") -> UNet:
    return DETECTOR_FILE.load(path, device)


def read_landmark_folder(root: str | Path, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """root/rgb/<stem>.png + root/landmark/<stem>.npy ((K, 2) x, y), as `synthgen toyfaces
    render --domains rgb,landmark` writes them -> (photos (N, H, W, 3) uint8, points (N, K, 2))."""
    from synthgen.evaluation.pairs import PHOTO_SUFFIXES, decode_photo

    root = Path(root)
    if not (root / "rgb").is_dir() or not (root / "landmark").is_dir():
        raise PairsError(f"{root} needs rgb/ and landmark/ subfolders with the same file stems")
    photos = {p.stem: p for p in sorted((root / "rgb").iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES}
    points = {p.stem: p for p in sorted((root / "landmark").glob("*.npy"))}
    keys = sorted(set(photos) & set(points))[:n] if n else sorted(set(photos) & set(points))
    if not keys:
        raise PairsError(f"{root}: no stem has both rgb/<stem>.png and landmark/<stem>.npy")
    images = [decode_photo(photos[k]) for k in keys]
    pts = []
    for k in keys:
        try:
            pts.append(np.asarray(np.load(points[k], allow_pickle=False), dtype=np.float32))
        except (OSError, ValueError) as exc:
            raise PairsError(f"{points[k]}: not a readable .npy of (x, y) points ({exc})") from None
    for what, arrays, paths in (("photos", images, photos), ("points", pts, points)):
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            first = next(paths[k] for k, a in zip(keys, arrays) if a.shape != arrays[0].shape)
            raise PairsError(f"{root}: {what} come in several shapes {shapes} (e.g. {first}): they must all match")
    return np.stack(images), np.stack(pts)


def train_detector_on_folder(*, data, out, steps=2000, batch_size=16, seed=0, n=None, base_channels=16, lr=2e-3) -> dict:
    images, points = read_landmark_folder(data, n)
    config = DetectorConfig(num_points=points.shape[1], base_channels=base_channels, train_size=images.shape[1])
    model, facts = train_landmark_detector(images, points, config, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    save_detector(model, out, extra=facts)
    return facts
