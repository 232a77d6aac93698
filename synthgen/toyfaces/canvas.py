"""A supersampled canvas that parts are painted on in painter's order.

Every paint writes the same pixels of four layers at once: colour, class id (CelebAMask
order), part kind (for sketch contours) and sketch ink. So a later part overwrites an
earlier one identically in every domain, and the mask can never disagree with the photo.
Parts only touch the window of sub-pixels their face-frame bounding box covers.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from synthgen.toyfaces.face import Face


@functools.lru_cache(maxsize=16)
def pixel_centres(n: int) -> np.ndarray:
    """(n,) image coordinates in [-1, 1] of the centres of n pixels along one axis."""
    return ((np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0).astype(np.float32)


class Window:
    """A rectangle of sub-pixels and its face-frame coordinates U, V (h, w)."""

    __slots__ = ("ys", "xs", "U", "V")

    def __init__(self, ys: slice, xs: slice, U: np.ndarray, V: np.ndarray) -> None:
        self.ys, self.xs, self.U, self.V = ys, xs, U, V


class Canvas:
    def __init__(self, face: Face, size: int, supersample: int) -> None:
        self.face = face
        self.supersample = supersample
        self.n = n = size * supersample
        self.rgb = np.empty((n, n, 3), dtype=np.float32)  # (N, N, 3) linear-ish RGB in [0, 1]
        self.label = np.zeros((n, n), dtype=np.uint8)  # (N, N) CelebAMask class ids
        self.kind = np.zeros((n, n), dtype=np.uint8)  # (N, N) part kind ids
        self.ink = np.ones((n, n), dtype=np.float32)  # (N, N) sketch tone, 1 = white paper
        self._cos = math.cos(face.roll)
        self._sin = math.sin(face.roll)

    def window(self, u0: float, u1: float, v0: float, v1: float) -> Window | None:
        """The sub-pixels whose centres may fall in the face-frame box [u0,u1] x [v0,v1]."""
        f = self.face
        c, s = self._cos * f.scale, self._sin * f.scale
        xs = [f.tx + c * u - s * v for u in (u0, u1) for v in (v0, v1)]
        ys = [f.ty + s * u + c * v for u in (u0, u1) for v in (v0, v1)]
        n = self.n
        x0 = max(int(math.floor((min(xs) + 1) / 2 * n - 0.5)), 0)
        x1 = min(int(math.ceil((max(xs) + 1) / 2 * n - 0.5)) + 1, n)
        y0 = max(int(math.floor((min(ys) + 1) / 2 * n - 0.5)), 0)
        y1 = min(int(math.ceil((max(ys) + 1) / 2 * n - 0.5)) + 1, n)
        if x1 <= x0 or y1 <= y0:
            return None
        grid = pixel_centres(n)
        dx = (grid[x0:x1] - np.float32(f.tx))[None, :]  # (1, w)
        dy = (grid[y0:y1] - np.float32(f.ty))[:, None]  # (h, 1)
        inv = np.float32(1.0 / f.scale)
        c, s = np.float32(self._cos * inv), np.float32(self._sin * inv)
        U = dx * c + dy * s
        V = dy * c - dx * s
        return Window(slice(y0, y1), slice(x0, x1), U, V)

    def full(self) -> Window:
        return self.window(-1e3, 1e3, -1e3, 1e3)

    def paint(self, win: Window, mask: np.ndarray, colour, label: int, kind: int, ink=1.0) -> None:
        """Paint `mask` (h, w) bool with colour (3,) or (h, w, 3), a class, a kind and ink."""
        if not mask.any():
            return
        np.copyto(self.rgb[win.ys, win.xs], colour, where=mask[..., None])
        np.copyto(self.label[win.ys, win.xs], label, where=mask)
        np.copyto(self.kind[win.ys, win.xs], kind, where=mask)
        np.copyto(self.ink[win.ys, win.xs], ink, where=mask)

    def tint(self, win: Window, mask: np.ndarray, factor) -> None:
        """Multiply colour only (a see-through lens): class, kind and ink stay."""
        region = self.rgb[win.ys, win.xs]
        np.copyto(region, region * np.asarray(factor, dtype=np.float32), where=mask[..., None])
