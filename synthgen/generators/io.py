"""`load_generator`: read any supported checkpoint, the format chosen by content, not by name.

Formats: the native safetensors file; rosinality's `.pt` (torch zip with `g_ema`); NVIDIA's
stylegan2-ada / stylegan3-repo StyleGAN2 `.pkl` (read with a restricted unpickler); BigGAN-deep
in the pytorch-pretrained-biggan layout (a folder or `config.json` + `pytorch_model.bin`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from synthgen import safetensors_files
from synthgen.generators.base import FrozenGenerator
from synthgen.generators.errors import CheckpointError
from synthgen.generators.native import is_native, load_native, save_generator

FORMATS = ("native", "rosinality", "nvidia-pkl", "biggan-deep")
# torch.save's legacy (non-zip) format starts with this pickled magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _biggan_files(path: Path) -> tuple[Path, Path] | None:
    folder = path if path.is_dir() else path.parent
    config, weights = folder / "config.json", folder / "pytorch_model.bin"
    if path.is_dir() or path.name in ("config.json", "pytorch_model.bin"):
        if config.is_file() and weights.is_file():
            return config, weights
    return None


def detect_format(path: str | Path) -> str:
    """One of FORMATS, decided from the bytes of the file (or the files of a folder)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file or folder: check the path (a .safetensors, .pt or .pkl file, "
                                    "or a BigGAN-deep folder)")
    if _biggan_files(path) is not None:
        return "biggan-deep"
    if path.is_dir():
        raise CheckpointError(path, "folder without config.json + pytorch_model.bin (the BigGAN-deep layout)")
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 8:
        raise CheckpointError(path, "file too short to be a checkpoint (truncated?)")
    if head[8:9] == b"{" and is_native(path):
        return "native"
    if head.startswith(b"PK\x03\x04") or head.startswith(_LEGACY_TORCH_MAGIC):
        return "rosinality"
    if head[:1] == b"\x80":
        return "nvidia-pkl"
    if head[8:9] == b"{":
        problem = safetensors_files.damage(path)
        if problem is not None:  # cut short by a copy or download: not a foreign file
            raise CheckpointError(path, safetensors_files.damaged(problem))
        raise CheckpointError(path, "safetensors file without synthgen metadata; convert the original checkpoint with `synthgen convert`")
    raise CheckpointError(path, "unknown checkpoint format (expected synthgen .safetensors, rosinality .pt, NVIDIA .pkl or a BigGAN-deep folder)")


def load_generator(
    path: str | Path, class_index: int | str | None = None, tap: str = "last",
    tap_resolution: int | None = None, device: str | torch.device = "cpu",
) -> FrozenGenerator:
    """Any supported checkpoint -> a frozen generator on `device`.

    class_index: BigGAN-deep class (index or ImageNet class name); ignored by StyleGAN2.
    tap, tap_resolution: the StyleGAN2 feature tap ("last" | "last2", resolution).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "native":
        gen = load_native(path, class_index=class_index, tap=tap, tap_resolution=tap_resolution)
    elif fmt == "rosinality":
        from synthgen.generators.readers.rosinality import read_rosinality

        gen = read_rosinality(path, tap=tap, tap_resolution=tap_resolution)
    elif fmt == "nvidia-pkl":
        from synthgen.generators.readers.nvidia_pkl import read_nvidia_pkl

        gen = read_nvidia_pkl(path, tap=tap, tap_resolution=tap_resolution)
    else:
        from synthgen.generators.readers.biggan import read_biggan

        config, weights = _biggan_files(path)
        gen = read_biggan(config, weights, class_index=0 if class_index is None else class_index)
    return gen.to(device)


def frozen_generator(generator: "str | Path | FrozenGenerator", device: str | torch.device = "cpu",
                     class_index: int | str | None = None) -> FrozenGenerator:
    """A checkpoint path (read with `load_generator`) or a generator already loaded -> frozen
    (eval mode, no gradients) on `device`: the one way every command gets its generator."""
    if not isinstance(generator, FrozenGenerator):
        generator = load_generator(generator, class_index=class_index)
    return generator.freeze().to(device)


def convert(src: str | Path, dst: str | Path, class_index: int | str | None = None) -> FrozenGenerator:
    """Any supported checkpoint -> the native format; returns the generator that was written."""
    gen = load_generator(src, class_index=class_index)
    save_generator(gen, dst)
    return gen


__all__ = ["FORMATS", "convert", "detect_format", "frozen_generator", "load_generator", "save_generator"]
