"""Per-kind codecs: domain files <-> arrays <-> network tensors.

Three representations of one sample:
- compact (what `read_file` returns and the data folders keep in memory): image uint8
  (C, S, S); mask uint8 (S, S) class ids; keypoints float32 (N, 2) x, y in pixels of S;
- network input / target (`to_input`, `to_target`): image in [-1, 1]; mask one-hot
  (input) or int64 ids (target); keypoints as N Gaussian heatmaps, one channel per point,
  so that coordinates can be read back from the regressor's output;
- decoded output (`decode`, the contract in docs/architecture.md): uint8 images,
  uint8 class ids, float32 points + a drawn uint8 map.

Pixel centres sit at integer coordinates: x = 0 is the centre of the first column.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from synthgen.anchors.spec import DomainSpec
from synthgen.errors import UserError
from synthgen.landmarks68 import draw_landmarks
from synthgen.pixels import to_uint8_images, to_unit

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
KEYPOINT_EXTENSIONS = (".npy", ".pts", ".txt")

# A file on disk, or (name, bytes) for a member of a WebDataset shard.
Source = Union[str, Path, tuple[str, bytes]]


class DomainFileError(ValueError, UserError):
    """A domain file that cannot be used."""


class CorruptFileError(DomainFileError):
    """Unreadable or malformed: data folders skip these and report a count."""


class MaskRangeError(DomainFileError):
    """A mask holding a class id the domain does not have: fitting stops on these."""


def extensions(spec: DomainSpec) -> tuple[str, ...]:
    return KEYPOINT_EXTENSIONS if spec.kind == "keypoints" else IMAGE_EXTENSIONS


def _name_and_stream(source: Source) -> tuple[str, object]:
    if isinstance(source, tuple):
        return source[0], io.BytesIO(source[1])
    return str(source), source


# -- reading ---------------------------------------------------------------------
def read_file(spec: DomainSpec, source: Source, size: int, points_frame: int | None = None) -> np.ndarray:
    """One domain file -> its compact array at working size `size` (see module doc).

    points_frame: side of the image that keypoint coordinates refer to (default: `size`).
    """
    if spec.kind == "keypoints":
        return _read_points(spec, source, size, points_frame or size)
    name, stream = _name_and_stream(source)
    try:
        with Image.open(stream) as img:
            img.load()
            if spec.kind == "image":
                img = img.convert("L" if spec.channels == 1 else "RGB")
                if img.size != (size, size):
                    img = img.resize((size, size), Image.LANCZOS)
                arr = np.array(img, dtype=np.uint8)
                return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()
            ids = _mask_ids(spec, img, name)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DomainFileError):
            raise
        raise CorruptFileError(f"{name}: not a readable image ({exc})") from None
    _check_ids(spec, ids, name)
    if ids.shape != (size, size):
        # Nearest only: interpolating class ids would invent classes at boundaries.
        ids = np.asarray(Image.fromarray(ids.astype(np.uint8)).resize((size, size), Image.NEAREST))
    return ids.astype(np.uint8)


def _mask_ids(spec: DomainSpec, img: Image.Image, name: str) -> np.ndarray:
    if img.mode in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(img).astype(np.int64)  # the pixel value (palette index) is the class id
    if img.mode in ("RGB", "RGBA"):
        # A colour mask: map each palette colour back to its class id.
        rgb = np.asarray(img.convert("RGB"), dtype=np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(spec.palette)}
        ids = np.full(code.shape, -1, dtype=np.int64)
        for value in np.unique(code):
            if int(value) not in lut:
                y, x = np.argwhere(code == value)[0]
                colour = tuple(int(v) for v in rgb[y, x])
                raise MaskRangeError(
                    f"{name}: colour {colour} at pixel (x={x}, y={y}) is not in the palette of domain "
                    f"'{spec.name}'; save masks as class-id PNGs or add the colour to the spec"
                )
            ids[code == value] = lut[int(value)]
        return ids
    raise CorruptFileError(f"{name}: unsupported mask mode {img.mode!r}; save masks as class-id PNGs")


def _check_ids(spec: DomainSpec, ids: np.ndarray, name: str) -> None:
    bad = (ids < 0) | (ids >= spec.num_classes)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise MaskRangeError(
            f"{name}: class id {int(ids[y, x])} at pixel (x={x}, y={y}) is out of range for domain "
            f"'{spec.name}' ({spec.num_classes} classes, ids 0..{spec.num_classes - 1}); "
            "remap the masks or use a domain spec with more classes"
        )


def _read_points(spec: DomainSpec, source: Source, size: int, frame: int) -> np.ndarray:
    name, stream = _name_and_stream(source)
    try:
        if name.endswith(".npy"):
            pts = np.load(stream, allow_pickle=False)
        else:
            text = stream.getvalue().decode() if isinstance(stream, io.BytesIO) else Path(stream).read_text()
            pts = _parse_point_text(text, is_pts=name.endswith(".pts"))
        pts = np.asarray(pts, dtype=np.float64)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{name}: not a readable keypoint file ({exc})") from None
    if pts.ndim != 2 or pts.shape[0] != spec.num_points or pts.shape[1] < 2:
        raise CorruptFileError(
            f"{name}: expected {spec.num_points} points of (x, y), got an array of shape {pts.shape}"
        )
    if not np.isfinite(pts[:, :2]).all():
        raise CorruptFileError(f"{name}: keypoints contain NaN or inf")
    scale = size / frame
    return ((pts[:, :2] + 0.5) * scale - 0.5).astype(np.float32)


def _parse_point_text(text: str, is_pts: bool) -> list[list[float]]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if is_pts:
        # dlib / ibug .pts: "version: 1", "n_points: N", "{", N lines "x y", "}"
        if "{" not in lines or "}" not in lines:
            raise ValueError("a .pts file needs its '{' ... '}' block")
        lines = lines[lines.index("{") + 1: lines.index("}")]
    return [[float(v) for v in ln.replace(",", " ").split()[:2]] for ln in lines]


# -- network tensors -------------------------------------------------------------
def gaussian_heatmaps(points: torch.Tensor, size: int, sigma_fraction: float) -> torch.Tensor:
    """(B, N, 2) x, y pixels -> (B, N, size, size) Gaussians with peak 1 at each point."""
    sigma = sigma_fraction * size
    grid = torch.arange(size, dtype=torch.float32, device=points.device)
    dx = (grid.view(1, 1, 1, size) - points[..., 0, None, None]) ** 2  # (B, N, 1, S)
    dy = (grid.view(1, 1, size, 1) - points[..., 1, None, None]) ** 2  # (B, N, S, 1)
    return torch.exp(-(dx + dy) / (2 * sigma * sigma))


def to_target(spec: DomainSpec, batch: torch.Tensor, size: int) -> torch.Tensor:
    """Compact batch -> what the regressor output is compared with (paper eq. 4)."""
    if spec.kind == "image":
        return to_unit(batch)  # (B, C, S, S) in [-1, 1]
    if spec.kind == "mask":
        return batch.long()  # (B, S, S) class ids for cross-entropy
    return gaussian_heatmaps(batch.float(), size, spec.heatmap_sigma)  # (B, N, S, S)


def to_input(spec: DomainSpec, batch: torch.Tensor, size: int) -> torch.Tensor:
    """Compact batch -> encoder input (B, spec.in_channels, S, S)."""
    if spec.kind == "mask":
        return F.one_hot(batch.long(), spec.num_classes).permute(0, 3, 1, 2).float()
    return to_target(spec, batch, size)


# -- decoding model outputs ------------------------------------------------------
# Decoded keypoints are rounded to this grid (px; far below landmark accuracy, exact in
# float32), as images are rounded to uint8: float kernels may round the last bit differently
# for another batch shape or machine, and quantizing every written value keeps that noise out
# of the file bytes except at a grid boundary. The drawn map is drawn from the rounded points,
# so a written .npy and its .png always agree.
POINT_STEP = 1 / 256


def heatmap_peaks(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) -> (B, N, 2) x, y: argmax refined to sub-pixel by a parabola fit of the
    log heatmap through the peak's neighbours (exact for a Gaussian)."""
    b, n, h, w = heatmaps.shape
    # log is monotone: the argmax of the clamped heatmap is the log's, and only the five values
    # the parabolas read need their log (a full-map log pass cost more than the regressor's last layer).
    values = heatmaps.float().clamp_min(1e-6).reshape(b, n, h * w)
    flat = values.argmax(-1)
    y, x = flat // w, flat % w

    def offset(axis_vals: tuple[torch.Tensor, torch.Tensor, torch.Tensor], inside: torch.Tensor) -> torch.Tensor:
        left, mid, right = axis_vals
        denom = left - 2 * mid + right
        off = torch.where(denom < 0, 0.5 * (left - right) / denom.clamp_max(-1e-12), torch.zeros_like(mid))
        return torch.where(inside, off.clamp(-0.5, 0.5), torch.zeros_like(off))

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(-1)
        return values.gather(-1, idx).squeeze(-1).log()

    mid = at(y, x)
    ox = offset((at(y, x - 1), mid, at(y, x + 1)), (x > 0) & (x < w - 1))
    oy = offset((at(y - 1, x), mid, at(y + 1, x)), (y > 0) & (y < h - 1))
    return torch.stack([x.float() + ox, y.float() + oy], dim=-1)


def decode(spec: DomainSpec, raw: torch.Tensor) -> dict[str, np.ndarray]:
    """Regressor output (B, out_channels, H, W) -> numpy batches (docs/architecture.md)."""
    # Decoded where raw was computed, so only the small results cross to the host: a 256-px
    # sample's landmark heatmaps are 18 MB of float32, its points 544 bytes.
    raw = raw.detach().float()
    if spec.kind == "image":
        return {"image": to_uint8_images(raw)}  # (B, H, W, C)
    if spec.kind == "mask":
        return {"mask": raw.argmax(1).to(torch.uint8).cpu().numpy()}  # (B, H, W)
    points = np.round(heatmap_peaks(raw).cpu().numpy() / POINT_STEP) * POINT_STEP  # (B, N, 2)
    points = points.astype(np.float32)
    size = raw.shape[-1]
    maps = np.stack([draw_landmarks(p, size, spec.skeleton) for p in points]) if len(points) else \
        np.zeros((0, size, size), np.uint8)
    return {"points": points, "map": maps}


def compact_to_decoded(spec: DomainSpec, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Compact input arrays -> the decoded form, so inputs and outputs draw the same way."""
    if spec.kind == "image":
        return {"image": batch.transpose(0, 2, 3, 1)}
    if spec.kind == "mask":
        return {"mask": batch.astype(np.uint8)}
    return {"points": batch.astype(np.float32), "map": None}  # map drawn by to_rgb_preview


def to_rgb_preview(spec: DomainSpec, decoded: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Decoded batch -> (B, size, size, 3) uint8 for preview grids."""
    if spec.kind == "image":
        img = decoded["image"]
        img = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    elif spec.kind == "mask":
        img = np.asarray(spec.palette, dtype=np.uint8)[decoded["mask"]]
    else:
        maps = decoded.get("map")
        if maps is None:
            maps = np.stack([draw_landmarks(p, size, spec.skeleton) for p in decoded["points"]])
        img = np.repeat(maps[..., None], 3, axis=-1)
    if img.shape[1] != size:
        img = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.NEAREST)) for im in img])
    return img


# -- writing files ---------------------------------------------------------------
def write_decoded(spec: DomainSpec, decoded: dict[str, np.ndarray], k: int, out_dir: Path, stem: str) -> list[Path]:
    """Write sample k of a decoded batch as <out_dir>/<stem>.png (+ <stem>.npy for keypoints)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{stem}.png"
    if spec.kind == "image":
        img = decoded["image"][k]
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(png)
        return [png]
    if spec.kind == "mask":
        # Pixel value = class id; the palette only makes the file look right in viewers.
        img = Image.fromarray(decoded["mask"][k], mode="P")
        img.putpalette([v for c in spec.palette for v in c])
        img.save(png)
        return [png]
    Image.fromarray(decoded["map"][k]).save(png)
    npy = out_dir / f"{stem}.npy"
    np.save(npy, decoded["points"][k].astype(np.float32))
    return [png, npy]
