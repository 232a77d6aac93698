"""Feature spaces for the Fréchet distance: a torchvision backbone from a local weights file,
or the reference segmenter's encoder. Nothing is ever downloaded.

FID proper uses an Inception network whose weights cannot be fetched here; the distance
is only comparable between runs that use the same feature space, which is why every
result names it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.evaluation.errors import EvaluationError, FeatureSpaceError
from synthgen.evaluation.segmenter import UNet, images_to_input
from synthgen.metrics import frechet_distance_of_features

# uint8 photos (B, H, W, 3) -> features (B, D)
FeatureExtractor = Callable[[np.ndarray], np.ndarray]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _read_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise FeatureSpaceError(f"weights file {path} not found (weights are never downloaded)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FeatureSpaceError(f"{path} is not a torch state dict ({exc})") from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_backbone(name: str, weights: str | Path) -> nn.Module:
    """A torchvision classifier with its weights from `weights`, its last layer removed."""
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise FeatureSpaceError(f"unknown torchvision model {name!r} (e.g. {known}, ...)") from None
    try:
        model.load_state_dict(_read_state_dict(Path(weights)))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise FeatureSpaceError(f"{weights} does not hold {name} weights: {first}") from None
    # The penultimate activations are the feature space, as in FID's pool3.
    for head in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(model, head, None), nn.Module):
            setattr(model, head, nn.Identity())
            break
    else:
        raise FeatureSpaceError(f"{name} has no fc/classifier/heads layer to remove")
    return model.eval()


def backbone_extractor(name: str, weights: str | Path, image_size: int = 224) -> FeatureExtractor:
    model = load_backbone(name, weights)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def extract(images: np.ndarray) -> np.ndarray:
        x = (images_to_input(images) + 1) / 2  # (B, 3, H, W) in [0, 1]
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        return model((x - mean) / std).flatten(1).double().numpy()

    extract.feature_space = f"{name}:{Path(weights).name}"
    return extract


def segmenter_extractor(model: UNet) -> FeatureExtractor:
    @torch.no_grad()
    def extract(images: np.ndarray) -> np.ndarray:
        model.eval()
        return model.embed(images_to_input(images)).double().numpy()

    extract.feature_space = "reference-segmenter"
    return extract


def extract_features(extractor: FeatureExtractor, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return np.concatenate([extractor(images[s : s + batch_size]) for s in range(0, len(images), batch_size)])


def frechet_distance_of_images(
    images_a: np.ndarray, images_b: np.ndarray, extractor: FeatureExtractor, batch_size: int = 64
) -> float:
    """Fréchet distance between two sets of uint8 photos (N, H, W, 3) in the extractor's space."""
    if min(len(images_a), len(images_b)) < 2:
        raise EvaluationError(f"the Fréchet distance needs at least 2 photos in each set, got {len(images_a)} "
                              f"and {len(images_b)}: pass more photos (or a larger --n)")
    return frechet_distance_of_features(
        extract_features(extractor, images_a, batch_size), extract_features(extractor, images_b, batch_size)
    )
