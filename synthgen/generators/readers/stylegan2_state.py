"""Turn a StyleGAN2 state dict in rosinality's key layout into a FrozenStyleGAN2.

rosinality's names (`style.{i}`, `input.input`, `conv1`, `convs.{j}`, `to_rgb1`, `to_rgbs.{k}`,
`noises.noise_{l}`) are the names of synthgen's modules; other layouts are first renamed to them.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from synthgen.generators.errors import CheckpointError
from synthgen.generators.state import check_keys, load_state_strict
from synthgen.generators.stylegan2 import ConfigError, FrozenStyleGAN2, StyleGAN2Config, StyleGAN2Generator
from synthgen.generators.stylegan2.config import layer_resolution
from synthgen.seeding import index_rng

# Stream of synthgen.seeding for the constant noise of checkpoints that carry none.
MISSING_NOISE_STREAM = 2


def infer_config(state: dict[str, torch.Tensor], path: Path, **overrides) -> StyleGAN2Config:
    """Architecture from key shapes: n_mlp, z_dim, w_dim from `style.*`, size and channels from ToRGBs."""
    try:
        mlp = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
        if mlp != list(range(1, len(mlp) + 1)) or not mlp:
            raise CheckpointError(path, f"mapping layers style.1..N expected, found indices {mlp}")
        first = state["style.1.weight"]
        n_rgbs = len({m.group(1) for k in state if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
        size = 2 ** (n_rgbs + 2)
        channels = {4: int(state["input.input"].shape[1])}
        for k in range(n_rgbs):
            channels[2 ** (k + 3)] = int(state[f"to_rgbs.{k}.conv.weight"].shape[2])
        cfg_kwargs = dict(
            size=size, z_dim=int(first.shape[1]), w_dim=int(first.shape[0]), n_mlp=len(mlp),
            channels=channels, blur_kernel=_blur_taps(state, path),
        )
    except KeyError as exc:
        raise CheckpointError(path, f"missing key {exc.args[0]} (not a StyleGAN2 generator?)") from None
    cfg_kwargs.update(overrides)
    try:
        return StyleGAN2Config(**cfg_kwargs)
    except ConfigError as exc:
        raise CheckpointError(path, str(exc)) from None


def _blur_taps(state: dict[str, torch.Tensor], path: Path) -> tuple[float, ...]:
    """1-D taps of the stored blur kernel (a normalized outer product, x4 after upsampling)."""
    kernel = state.get("convs.0.conv.blur.kernel")
    if kernel is None:
        return (1, 3, 3, 1)
    kernel = kernel.double()
    taps = kernel.sum(1)
    if not torch.allclose(torch.outer(taps, taps) / taps.sum(), kernel, atol=1e-6):
        raise CheckpointError(path, "blur kernel is not separable; only separable FIR filters are supported")
    ratio = (taps / taps.min()).tolist()
    default = [1.0, 3.0, 3.0, 1.0]
    if len(ratio) == 4 and np.allclose(ratio, default, atol=1e-5):
        return (1, 3, 3, 1)
    return tuple(float(t) for t in ratio)


def missing_noise(cfg: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """Constant noise for files without `noises.*`: fixed by synthgen.seeding, so reproducible."""
    out = {}
    for layer in range(cfg.num_layers):
        r = layer_resolution(layer)
        noise = index_rng(0, layer, MISSING_NOISE_STREAM).standard_normal((1, 1, r, r), dtype=np.float32)
        out[f"noises.noise_{layer}"] = torch.from_numpy(noise)
    return out


def frozen_from_rosinality_state(
    state: dict[str, torch.Tensor], w_avg: torch.Tensor | None, path: Path,
    tap: str = "last", tap_resolution: int | None = None, **config_overrides,
) -> FrozenStyleGAN2:
    cfg = infer_config(state, path, **config_overrides)
    state = {k: v for k, v in state.items() if not k.endswith(".kernel")}  # derived from the config
    if not any(k.startswith("noises.") for k in state):
        state.update(missing_noise(cfg))
    generator = StyleGAN2Generator(cfg)
    # Checked in the file's own names, so an error message points at what the file lacks.
    expected = {k.removeprefix("synthesis."): v for k, v in generator.state_dict().items()}
    check_keys(expected, state, path)
    generator.load_state_dict({("" if k.startswith("style.") else "synthesis.") + k: v.float() for k, v in state.items()})
    mapped = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    if w_avg is None:
        w_avg = generator.mean_w()
    w_avg = w_avg.float().reshape(-1)
    if w_avg.numel() != cfg.w_dim:
        raise CheckpointError(path, f"latent_avg has {w_avg.numel()} entries, the mapping outputs {cfg.w_dim}")
    gen = FrozenStyleGAN2(generator, w_avg=torch.zeros(cfg.w_dim), tap=tap, tap_resolution=tap_resolution)
    mapped["latent_avg"] = w_avg
    load_state_strict(gen, mapped, path)
    return gen


