"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 `.pkl` -> FrozenStyleGAN2 (from `G_ema`).

Key mapping onto rosinality's layout (which is synthgen's): mapping.fc{i} -> style.{i+1};
b4.const -> input.input; b4.conv1 -> conv1; b{4*2^k}.conv{j} -> convs.{2k-2+j};
noise_const -> noises.noise_{layer}; noise_strength -> noise.weight; bias -> activate.bias;
affine -> modulation; b4.torgb -> to_rgb1, b{4*2^k}.torgb -> to_rgbs.{k-1}; mapping.w_avg -> w_avg.

NVIDIA's FullyConnectedLayer computes x W^T * lr_mul/sqrt(in) + b * lr_mul, which is rosinality's
EqualLinear, so weights copy unchanged; lr_mul of the mapping is read from the file (0.01).
Math differences: NVIDIA runs the 4 highest resolutions in fp16 on GPU (fp32 here); its
conv_clamp (256) is kept as the config's conv_clamp; its demodulation adds eps=1e-8 to the
unscaled weight energy (here to the 1/sqrt(fan_in)-scaled one), a relative change below 1e-6.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from synthgen.generators.errors import CheckpointError
from synthgen.generators.readers.safe_pickle import safe_load_pickle
from synthgen.generators.readers.stylegan2_state import frozen_from_rosinality_state
from synthgen.generators.stylegan2 import FrozenStyleGAN2


def flatten_persistent(obj: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """A persistent module dict -> flat state dict, like nn.Module.state_dict()."""
    state = obj["state"]
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is not None:
                out[prefix + name] = t
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, dict) and child.get("__persistent__"):
            out.update(flatten_persistent(child, f"{prefix}{name}."))
        elif child is not None:
            raise ValueError(f"submodule {prefix}{name} is not a plain network module")
    return out


def _child_state(obj: dict, *names: str) -> dict:
    for name in names:
        obj = obj["state"]["_modules"][name]
    return obj["state"]


def nvidia_to_rosinality(nv: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    out: dict[str, torch.Tensor] = {}
    for key, t in nv.items():
        if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key):
            out[f"style.{int(m.group(1)) + 1}.{m.group(2)}"] = t
    res_blocks = sorted({int(m.group(1)) for k in nv if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not res_blocks or res_blocks[0] != 4:
        raise CheckpointError(path, "no synthesis.b4 block: not a StyleGAN2 generator (StyleGAN3 pkls are not supported)")
    out["input.input"] = nv["synthesis.b4.const"][None]
    layer = 0
    for res in res_blocks:
        k = int(math.log2(res)) - 2  # 0 for b4
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        for j, conv in enumerate(convs):
            src = f"synthesis.b{res}.{conv}."
            dst = "conv1." if res == 4 else f"convs.{2 * k - 2 + j}."
            out[dst + "conv.weight"] = nv[src + "weight"][None]
            out[dst + "conv.modulation.weight"] = nv[src + "affine.weight"]
            out[dst + "conv.modulation.bias"] = nv[src + "affine.bias"]
            out[dst + "noise.weight"] = nv[src + "noise_strength"].reshape(1)
            out[dst + "activate.bias"] = nv[src + "bias"]
            out[f"noises.noise_{layer}"] = nv[src + "noise_const"][None, None]
            if res > 4 and j == 0:
                # NVIDIA stores the normalized 4x4 filter; rosinality's blur kernel is it x 4.
                out[dst + "conv.blur.kernel"] = nv[src + "resample_filter"] * 4
            layer += 1
        src = f"synthesis.b{res}.torgb."
        dst = "to_rgb1." if res == 4 else f"to_rgbs.{k - 1}."
        out[dst + "conv.weight"] = nv[src + "weight"][None]
        out[dst + "conv.modulation.weight"] = nv[src + "affine.weight"]
        out[dst + "conv.modulation.bias"] = nv[src + "affine.bias"]
        out[dst + "bias"] = nv[src + "bias"].reshape(1, -1, 1, 1)
    return out, nv.get("mapping.w_avg")


def _check_supported(g: dict, path: Path) -> dict[str, Any]:
    """Refuse what this StyleGAN2 cannot reproduce; return config overrides read from the file."""
    state = g["state"]
    if g.get("class_name") != "Generator":
        raise CheckpointError(path, f"G_ema is a {g.get('class_name')!r}, expected a Generator")
    if state.get("c_dim", 0):
        raise CheckpointError(path, f"class-conditional generator (c_dim={state['c_dim']}) is not supported")
    if state.get("img_channels", 3) != 3:
        raise CheckpointError(path, f"img_channels={state['img_channels']}, only RGB generators are supported")
    synthesis = _child_state(g, "synthesis")
    for name, block in synthesis["_modules"].items():
        arch = block["state"].get("architecture", "skip")
        if arch != "skip":
            raise CheckpointError(path, f"synthesis.{name} has architecture {arch!r}; only 'skip' (StyleGAN2 config F) is supported")
    fc0 = _child_state(g, "mapping", "fc0")
    if fc0.get("activation", "lrelu") != "lrelu":
        raise CheckpointError(path, f"mapping activation {fc0.get('activation')!r} is not lrelu")
    first_block = sorted(synthesis["_modules"], key=lambda n: int(n[1:]))[0]
    conv_clamp = _child_state(g, "synthesis", first_block, "conv1").get("conv_clamp")
    return {"lr_mlp": float(fc0.get("bias_gain", 0.01)), "conv_clamp": None if conv_clamp is None else float(conv_clamp)}


def read_nvidia_pkl(path: Path, tap: str = "last", tap_resolution: int | None = None) -> FrozenStyleGAN2:
    data = safe_load_pickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), dict) or not data["G_ema"].get("__persistent__"):
        raise CheckpointError(path, "pickle has no persistent 'G_ema' network (not a stylegan2-ada/stylegan3 pkl)")
    g = data["G_ema"]
    try:
        overrides = _check_supported(g, path)
        nv = flatten_persistent(g)
        if any(k.startswith("mapping.embed") for k in nv):
            raise CheckpointError(path, "class-conditional generator (mapping.embed) is not supported")
        state, w_avg = nvidia_to_rosinality(nv, path)
    except KeyError as exc:
        raise CheckpointError(path, f"missing key {exc.args[0]} in G_ema") from None
    except ValueError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(path, str(exc)) from None
    return frozen_from_rosinality_state(state, w_avg, path, tap=tap, tap_resolution=tap_resolution, **overrides)
