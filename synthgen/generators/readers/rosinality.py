"""rosinality/stylegan2-pytorch `.pt` checkpoints (torch zip with `g_ema`).

Loaded with torch.load(weights_only=True): only tensors and plain containers are unpickled.
Training checkpoints also carry `args`, an argparse.Namespace, which is allow-listed and nothing else.
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from synthgen.generators.errors import CheckpointError
from synthgen.generators.readers.stylegan2_state import frozen_from_rosinality_state
from synthgen.generators.stylegan2 import FrozenStyleGAN2

SAFE_GLOBALS = [argparse.Namespace]


def load_weights_only(path: Path) -> object:
    """torch.load restricted to tensors, containers and SAFE_GLOBALS; errors become CheckpointError."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line for line in str(exc).splitlines() if "Unsupported global" in line or "GLOBAL" in line]
        what = lines[0].strip() if lines else str(exc).splitlines()[0]
        raise CheckpointError(path, f"refused to unpickle: {what}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(path, f"unreadable torch file, truncated or corrupt ({first}): copy or download it again") from None


def read_rosinality(path: Path, tap: str = "last", tap_resolution: int | None = None) -> FrozenStyleGAN2:
    ckpt = load_weights_only(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(path, f"expected a dict with 'g_ema', found {type(ckpt).__name__}")
    if "g_ema" in ckpt:
        state, w_avg = ckpt["g_ema"], ckpt.get("latent_avg")
    elif "style.1.weight" in ckpt:  # a bare generator state dict
        state, w_avg = ckpt, None
    else:
        raise CheckpointError(path, f"no 'g_ema' generator in the checkpoint (keys: {sorted(map(str, ckpt))[:5]})")
    if not isinstance(state, dict):
        raise CheckpointError(path, "'g_ema' is not a state dict")
    return frozen_from_rosinality_state(dict(state), w_avg, path, tap=tap, tap_resolution=tap_resolution)
