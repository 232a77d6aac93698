"""A contact sheet: one row per sample, its aligned domains side by side."""
from __future__ import annotations

import numpy as np

from synthgen.celebamask import PALETTE

_PALETTE = np.asarray(PALETTE, dtype=np.uint8)
LANDMARK_COLOUR = np.array([40, 255, 60], dtype=np.float32)


def colourise_seg(seg: np.ndarray) -> np.ndarray:
    """(..., H, W) class ids -> (..., H, W, 3) palette colours."""
    return _PALETTE[seg]


def landmarks_over_photo(rgb: np.ndarray, landmark_map: np.ndarray) -> np.ndarray:
    alpha = landmark_map[..., None].astype(np.float32) / 255.0
    return (rgb * (1 - alpha) + LANDMARK_COLOUR * alpha).astype(np.uint8)


def contact_sheet(batch: dict, min_tile: int = 128) -> np.ndarray:
    """uint8 (rows * T, cols * T, 3) from a render_batch result; tiles upscaled (nearest)
    to at least `min_tile` pixels so small renders stay legible."""
    columns = []
    if "rgb" in batch:
        columns.append(batch["rgb"])
    if "seg" in batch:
        columns.append(colourise_seg(batch["seg"]))
    if "sketch" in batch:
        columns.append(np.repeat(batch["sketch"][..., None], 3, axis=-1))
    if "landmark_map" in batch:
        base = batch["rgb"] if "rgb" in batch else np.zeros((*batch["landmark_map"].shape, 3), np.uint8)
        columns.append(landmarks_over_photo(base, batch["landmark_map"]))
    rows = np.concatenate(columns, axis=2)  # (B, S, cols * S, 3)
    sheet = np.concatenate(list(rows), axis=0)
    k = max(1, -(-min_tile // rows.shape[1]))
    return np.repeat(np.repeat(sheet, k, axis=0), k, axis=1)
