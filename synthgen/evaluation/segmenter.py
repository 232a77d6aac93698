"""The reference segmenter: a small U-Net for face parsing, and its file format.

It is the judge of two benchmarks: does a photo generated from a mask respect that mask
(seg -> rgb faithfulness), and what is synthetic training data worth (downstream: the
same net trained fresh on synthetic and on real pairs). Fully convolutional, so any
input size works; inputs whose sides are not a multiple of 2^depth are padded and the
logits cropped back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.atomic_files import atomic_write
from synthgen.celebamask import CLASS_NAMES
from synthgen.evaluation.errors import SegmenterFileError
from synthgen.pixels import from_uint8_images

@dataclass
class SegmenterConfig:
    num_classes: int = 19  # CelebAMask-HQ label set
    base_channels: int = 16  # channels of the first level; doubles each level down
    depth: int = 3  # number of 2x downsamplings (bottleneck at 1/8 resolution)
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    train_size: int = 64  # image side the net was trained at; `predict` resizes to it

    def __post_init__(self):
        if len(self.class_names) != self.num_classes:
            self.class_names = [f"class_{i}" for i in range(self.num_classes)]


class ConvBlock(nn.Sequential):
    """Two 3x3 conv -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015): encoder levels, bottleneck, decoder with skips."""

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        self.config = config
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]
        self.down = nn.ModuleList([ConvBlock(3, widths[0])])
        self.down.extend(ConvBlock(widths[i], widths[i + 1]) for i in range(config.depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(config.depth))
        )
        self.merge = nn.ModuleList(ConvBlock(2 * widths[i], widths[i]) for i in reversed(range(config.depth)))
        self.head = nn.Conv2d(widths[0], config.num_classes, 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        m = 2**self.config.depth
        ph, pw = (-h) % m, (-w) % m
        return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), h, w

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> feature maps of every level, finest first."""
        skips = [self.down[0](x)]
        for block in self.down[1:]:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        return skips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> logits (B, num_classes, H, W)."""
        x, h, w = self._pad(x)
        skips = self.encode(x)
        y = skips[-1]
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            y = merge(torch.cat([up(y), skip], dim=1))
        return self.head(y)[..., :h, :w]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) global-average-pooled features of every level: the
        feature space of the default Fréchet distance."""
        x, _, _ = self._pad(x)
        return torch.cat([s.mean(dim=(2, 3)) for s in self.encode(x)], dim=1)


def images_to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) photos -> float (B, 3, H, W) in [-1, 1], the range G's photos use."""
    shape = np.shape(images)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"expected uint8 photos (B, H, W, 3), got {tuple(shape)}")
    return from_uint8_images(images)


@torch.no_grad()
def predict(model: UNet, images, batch_size: int = 64, resize: bool = True) -> np.ndarray:
    """uint8 photos (B, H, W, 3) -> uint8 class ids (B, H, W).

    With `resize`, photos are resized to the training size and the logits back
    (bilinear on logits, argmax after, so class ids are never blended).
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = images_to_input(images[start : start + batch_size]).to(device)
        h, w = x.shape[-2:]
        size = model.config.train_size
        if resize and (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            logits = F.interpolate(model(x), size=(h, w), mode="bilinear", align_corners=False)
        else:
            logits = model(x)
        out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(np.shape(images)[1:3]), np.uint8)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class UNetFile:
    """A file format of a trained U-Net: the weights as safetensors; the format tag, the
    model's config (a dataclass, as JSON) and its training facts in the metadata."""

    format: str  # the metadata's "format" tag
    name: str  # what the file holds, as messages name it
    command: str  # the `synthgen eval` command that writes one
    config_class: type  # the dataclass of the config
    config_attr: str  # the model's attribute that holds its config
    build: Callable[[Any], UNet]  # config -> a model of that shape
    version: int = 1

    def save(self, model: UNet, path: str | Path, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": self.format,
            "format_version": str(self.version),
            "config": json.dumps(asdict(getattr(model, self.config_attr))),
            "extra": json.dumps(extra or {}),
        }
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_write(path) as tmp:
            save_file(state, str(tmp), metadata=meta)
        return path

    def load(self, path: str | Path, device: str | torch.device = "cpu") -> UNet:
        """Read a file written by `save`; the model comes back in eval mode."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise SegmenterFileError(f"{self.name} file {path} not found: train one with `synthgen eval {self.command}`")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a foreign file
            raise SegmenterFileError(f"{path} is not a safetensors file ({exc})") from None
        if meta.get("format") != self.format:
            raise SegmenterFileError(
                f"{path} is not a synthgen {self.name} (format {meta.get('format')!r}): "
                f"pass a file written by `synthgen eval {self.command}`"
            )
        model = self.build(self.config_class(**json.loads(meta["config"])))
        model.load_state_dict(state)
        model.training_facts = json.loads(meta.get("extra", "{}"))
        return model.to(device).eval()


SEGMENTER_FILE = UNetFile("synthgen-segmenter", "segmenter", "train-segmenter", SegmenterConfig, "config", UNet)


def save_segmenter(model: UNet, path: str | Path, extra: dict | None = None) -> Path:
    """Weights as safetensors; the config and training facts in its JSON metadata."""
    return SEGMENTER_FILE.save(model, path, extra)


def load_segmenter(path: str | Path, device: str | torch.device = "cpu") -> UNet:
    """Read a file written by `save_segmenter`; the model comes back in eval mode."""
    return SEGMENTER_FILE.load(path, device)
