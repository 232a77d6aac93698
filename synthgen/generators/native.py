"""synthgen's own generator format: one safetensors file, the architecture as JSON in its metadata.

safetensors holds tensors only (no pickle, nothing to execute); the metadata keys are
`synthgen` = "generator", `format_version`, `kind` ("stylegan2" | "biggan-deep") and `config`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from synthgen.atomic_files import atomic_write
from synthgen.generators.base import FrozenGenerator
from synthgen.generators.errors import CheckpointError
from synthgen.generators.state import load_state_strict

FORMAT_TAG = "generator"
FORMAT_VERSION = "1"


def is_native(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("synthgen") == FORMAT_TAG
    except Exception:
        return False


def save_generator(gen: FrozenGenerator, path: str | Path) -> Path:
    """Write `gen` (weights, buffers, w_avg, architecture) to a native safetensors file."""
    path = Path(path)
    kind = getattr(gen, "kind", None)
    if kind not in ("stylegan2", "biggan-deep"):
        raise TypeError(f"cannot save a {type(gen).__name__}: only StyleGAN2 and BigGAN-deep generators")
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in gen.state_dict().items()}
    metadata = {
        "synthgen": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": json.dumps(gen.cfg.to_dict(), sort_keys=True),
    }
    if kind == "biggan-deep":
        metadata["class_index"] = str(gen.class_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def read_native(path: Path) -> tuple[str, dict, dict[str, str], dict[str, torch.Tensor]]:
    """-> (kind, config dict, metadata, state dict)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(path, f"unreadable safetensors file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if meta.get("synthgen") != FORMAT_TAG:
        raise CheckpointError(path, "safetensors file without synthgen generator metadata; convert it with `synthgen convert`")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(path, f"generator format version {meta.get('format_version')!r} is not {FORMAT_VERSION!r}; upgrade synthgen")
    try:
        config = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(path, "metadata 'config' is missing or not JSON") from None
    return meta.get("kind", ""), config, meta, state


def load_native(
    path: Path, class_index: int | str | None = None, tap: str = "last",
    tap_resolution: int | None = None, device: str | torch.device = "cpu",
) -> FrozenGenerator:
    from synthgen.generators.stylegan2 import ConfigError, FrozenStyleGAN2, StyleGAN2Config, StyleGAN2Generator

    kind, config, meta, state = read_native(path)
    if kind == "stylegan2":
        try:
            cfg = StyleGAN2Config.from_dict(config)
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(path, f"bad StyleGAN2 config: {exc}") from None
        gen = FrozenStyleGAN2(
            StyleGAN2Generator(cfg), w_avg=torch.zeros(cfg.w_dim), tap=tap, tap_resolution=tap_resolution
        )
        load_state_strict(gen, state, path)
        return gen.to(device)
    if kind == "biggan-deep":
        from synthgen.generators.biggan.frozen import FrozenBigGAN
        from synthgen.generators.biggan.model import BigGANConfig

        cfg = BigGANConfig.from_dict(config)
        if class_index is None:
            class_index = int(meta.get("class_index", 0))
        gen = FrozenBigGAN.from_state(cfg, state, class_index=class_index, source=path)
        return gen.to(device)
    raise CheckpointError(path, f"unknown generator kind {kind!r} in metadata")
