"""BigGAN-deep in the pytorch-pretrained-biggan layout: `config.json` + `pytorch_model.bin`.

The weights load with torch.load(weights_only=True). Spectral norm is applied once here, as its
eval mode does: W = W_orig / sigma with sigma = u^T W_orig v from the stored vectors.
An optional `classes.txt` (one ImageNet class name per line) lets a class be chosen by name.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from synthgen.generators.biggan.frozen import FrozenBigGAN
from synthgen.generators.biggan.model import BigGANConfig
from synthgen.generators.errors import CheckpointError
from synthgen.generators.readers.rosinality import load_weights_only


def spectral_normalized(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch.nn.utils.spectral_norm in eval mode: the stored u, v give sigma without iterating."""
    sigma = torch.dot(u, torch.mv(weight_orig.flatten(1), v))
    return weight_orig / sigma


def apply_spectral_norms(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if key.endswith(("weight_u", "weight_v")):
            continue
        if key.endswith(".weight_orig"):
            base = key[: -len("_orig")]
            try:
                out[base] = spectral_normalized(t, state[base + "_u"], state[base + "_v"])
            except KeyError as exc:
                raise CheckpointError(path, f"spectral norm vector {exc.args[0]} missing") from None
        else:
            out[key] = t
    return out


def resolve_class(class_index: int | str, folder: Path, num_classes: int) -> int:
    if isinstance(class_index, int) or str(class_index).strip().isdigit():
        return int(class_index)
    names_file = folder / "classes.txt"
    if not names_file.is_file():
        raise CheckpointError(folder, f"class name {class_index!r} needs classes.txt beside the weights; pass an index instead")
    names = [line.strip().lower() for line in names_file.read_text().splitlines()]
    if str(class_index).lower() not in names:
        raise CheckpointError(names_file, f"unknown class name {class_index!r}")
    return names.index(str(class_index).lower())


def read_biggan(config_path: Path, weights_path: Path, class_index: int | str = 0) -> FrozenBigGAN:
    try:
        cfg = BigGANConfig.from_dict(json.loads(Path(config_path).read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(config_path, f"not a BigGAN config ({exc})") from None
    state = load_weights_only(weights_path)
    if not isinstance(state, dict) or "embeddings.weight" not in state:
        raise CheckpointError(weights_path, "no 'embeddings.weight': not a pytorch-pretrained-biggan state dict")
    state = apply_spectral_norms(dict(state), weights_path)
    state = {("model." + k.removeprefix("generator.")) if k.startswith("generator.") else "model." + k: v.float()
             for k, v in state.items()}
    index = resolve_class(class_index, Path(config_path).parent, cfg.num_classes)
    return FrozenBigGAN.from_state(cfg, state, class_index=index, source=weights_path)
