"""uint8 arrays -> PNG bytes, with zlib and one fixed row filter per kind of image.

On 64 px samples about half of what Pillow's PNG encoder spends goes beyond zlib itself (its
per-image set-up and row filtering): one sample of the built-in world's four domains took
0.78-0.84 ms to encode through Pillow and takes 0.56 ms here, of which zlib is 0.28 ms, at
the same file sizes (docs/sampling.md, "Benchmark"). On a fast device the encode threads
are what bounds `synthgen sample`. The filters:

- photos and drawings (`filtered=True`): Paeth (each byte minus the best of its left,
  upper and upper-left neighbours), vectorised over the whole image, since encoding reads
  only original bytes; the built-in world's photos come out the size Pillow wrote them, to
  the byte, and its sketches within a byte;
- palette images and drawn maps (`filtered=False`, always for a palette): no filter. The
  PNG specification recommends none for palette images (differences of class ids mix
  unrelated values), and a drawn map is mostly flat background.

The bytes are a pure function of (array, palette, filter, level) and the zlib build, as
Pillow's were; any PNG reader decodes them to the same array.
"""
from __future__ import annotations

import struct
import zlib
from typing import Sequence

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_NONE, _FILTER_PAETH = 0, 4
_GRAY, _RGB, _PALETTE = 0, 2, 3  # IHDR colour types


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _paeth_residuals(rows: np.ndarray, bpp: int) -> np.ndarray:
    """(H, W * bpp) uint8 -> PNG Paeth filter bytes (mod 256) of every row at once."""
    x = rows.astype(np.int16)
    a = np.zeros_like(x)  # left
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)  # up
    b[1:] = x[:-1]
    c = np.zeros_like(x)  # upper left
    c[1:, bpp:] = x[:-1, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)  # |p - a|, |p - b|, |p - c| for p = a + b - c
    predictor = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))  # the specification's tie order
    return (x - predictor).astype(np.uint8)  # two's complement wrap = mod 256


def _scanlines(rows: np.ndarray, bpp: int, filtered: bool) -> bytes:
    """(H, W * bpp) uint8 rows -> the scanlines, each led by its filter byte."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = _FILTER_PAETH if filtered else _FILTER_NONE
    out[:, 1:] = _paeth_residuals(rows, bpp) if filtered else rows
    return out.tobytes()


def png_bytes(pixels: np.ndarray, level: int = 1, palette: Sequence[Sequence[int]] | None = None,
              filtered: bool = True) -> bytes:
    """(H, W) gray, (H, W, 1) gray, (H, W, 3) RGB uint8 -> PNG bytes; with `palette`, (H, W)
    indices into it (a palette PNG whose pixel values are the indices themselves, never
    filtered). `filtered=False` writes the rows as they are (drawn maps)."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        channels = 1
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        channels = 3
    else:
        raise ValueError(f"PNG pixels must be (H, W), (H, W, 1) or (H, W, 3), got {pixels.shape}")
    if palette is not None and channels != 1:
        raise ValueError("a palette PNG takes (H, W) indices")
    h, w = pixels.shape[:2]
    color_type = _PALETTE if palette is not None else (_GRAY if channels == 1 else _RGB)
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))]
    if palette is not None:
        if not 1 <= len(palette) <= 256:
            raise ValueError(f"a PNG palette holds 1 to 256 colours, got {len(palette)}")
        if pixels.size and int(pixels.max()) >= len(palette):
            raise ValueError(f"index {int(pixels.max())} is outside the palette of {len(palette)} colours")
        parts.append(_chunk(b"PLTE", bytes(int(c) for rgb in palette for c in rgb)))
    scanlines = _scanlines(pixels.reshape(h, w * channels), channels, filtered and palette is None)
    parts += [_chunk(b"IDAT", zlib.compress(scanlines, level)), _chunk(b"IEND", b"")]
    return b"".join(parts)
