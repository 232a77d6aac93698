"""Per-sample label confidence, computed from the regressors' raw outputs on the device.

These fill the manifest's `<d>_confidence` / `<d>_entropy` columns so users can filter
uncertain samples, as DatasetGAN filters by its uncertainty maps:
- mask: softmax over the K class logits per pixel; confidence = mean over pixels of the
  max probability (1 = certain, 1/K = uniform), entropy = mean per-pixel entropy in nats;
- keypoints: regressors are trained onto Gaussian heatmaps with peak 1 (codecs.to_target),
  so the height of each channel's peak, clipped to [0, 1], is how sure the point is;
  confidence = mean over points.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def label_scores(spec: Any, raw: torch.Tensor) -> dict[str, np.ndarray]:
    """raw (B, C, H, W) -> {"<name>_confidence": (B,), ...} float32 numpy arrays."""
    raw = raw.float()
    if spec.kind == "mask":
        log_p = torch.log_softmax(raw, dim=1)  # (B, K, H, W)
        p = log_p.exp()
        confidence = p.amax(dim=1).mean(dim=(1, 2))
        entropy = -(p * log_p).sum(dim=1).mean(dim=(1, 2))
        both = torch.stack([confidence, entropy]).cpu().numpy().astype(np.float32)  # one copy to host
        return {f"{spec.name}_confidence": both[0], f"{spec.name}_entropy": both[1]}
    if spec.kind == "keypoints":
        peaks = raw.flatten(2).amax(dim=-1).clamp(0, 1)  # (B, N)
        return {f"{spec.name}_confidence": peaks.mean(dim=1).cpu().numpy().astype(np.float32)}
    return {}
