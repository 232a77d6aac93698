"""Tiny domain datasets written with PIL/numpy, shared by the anchor tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32


def _blob(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A boolean disc at a random place: the shared layout of every toy domain."""
    x, y = rng.uniform(10, size - 10, 2)
    r = rng.uniform(4, 8)
    yy, xx = np.mgrid[:size, :size]
    return (xx - x) ** 2 + (yy - y) ** 2 < r * r


def write_masks(folder: Path, n: int = 8, seed: int = 0, num_classes: int = 19) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        m = np.zeros((SIZE, SIZE), np.uint8)
        m[_blob(rng)] = 1 + i % (num_classes - 1)
        m[: SIZE // 4] = 0 if i % 2 else min(13, num_classes - 1)
        Image.fromarray(m, mode="L").save(folder / f"mask_{i:03d}.png")
    return folder


def write_images(folder: Path, n: int = 8, seed: int = 0, channels: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        blob = _blob(rng)
        if channels == 1:
            img = np.where(blob, 30, 230).astype(np.uint8)
        else:
            colour = rng.integers(0, 256, 3)
            img = np.where(blob[..., None], colour, 128).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img_{i:03d}.png")
    return folder


def write_keypoints(folder: Path, n: int = 8, seed: int = 0, num_points: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.array([[10, 10], [22, 10], [16, 16], [11, 23], [21, 23]], np.float32)
    for i in range(n):
        pts = np.resize(base, (num_points, 2)) + rng.normal(0, 1.5, (num_points, 2)).astype(np.float32)
        np.save(folder / f"pts_{i:03d}.npy", pts.astype(np.float32))
    return folder


def write_keypoint_spec(path: Path, num_points: int = 5) -> Path:
    spec = {"name": "dots", "kind": "keypoints", "num_points": num_points,
            "skeleton": [[0, 1], [3, 4]], "heatmap_sigma": 0.06}
    path.write_text(json.dumps(spec))
    return path


DOMAIN_KINDS = ("mask", "image", "keypoints", "rgb")


def domain_of_kind(kind: str, folder: Path) -> tuple[str, Path]:
    """(domain name or spec path, data folder) of a small domain of each kind under `folder`."""
    if kind == "mask":
        return "seg", write_masks(folder / "d")
    if kind == "image":
        return "sketch", write_images(folder / "d")
    if kind == "keypoints":
        return str(write_keypoint_spec(folder / "dots.json")), write_keypoints(folder / "d")
    if kind == "rgb":
        return "rgb", write_images(folder / "d", channels=3)
    raise ValueError(f"unknown kind {kind!r}")
