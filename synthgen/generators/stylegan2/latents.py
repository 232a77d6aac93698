"""Operations on w+ latents: truncation and style mixing."""
from __future__ import annotations

import torch


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick, w' = w_avg + psi (w - w_avg), on every layer (psi=1: unchanged)."""
    if psi == 1.0:
        return ws
    return w_avg.to(ws.dtype) + psi * (ws - w_avg.to(ws.dtype))


def mix_latents(latents: torch.Tensor, other: torch.Tensor, start: int) -> torch.Tensor:
    """Style mixing: w+ entries start.. taken from `other` (coarse structure kept, fine style
    swapped: the paper's multimodal generation). latents, other (B, num_ws, D) or other (B, D)."""
    if other.ndim == 2:
        other = other[:, None].expand_as(latents)
    if not 0 <= start <= latents.shape[1]:
        raise ValueError(f"style mixing start must be in [0, {latents.shape[1]}], got {start}")
    return torch.cat([latents[:, :start], other[:, start:].to(latents.dtype)], dim=1)
