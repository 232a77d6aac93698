"""render(z) -> aligned rgb, seg, sketch and landmarks of one ToyFace.

The photo is anti-aliased by supersampling: parts are painted on a grid `supersample`
times finer and box-downsampled. Masks are never blended: each output pixel takes the
most frequent class of its block (ties: the first in row-major order), so every class
in the mask covers at least one sub-pixel of its block and shows in the photo.
"""
from __future__ import annotations

import functools
import multiprocessing
from typing import Iterable, Iterator, Sequence

import numpy as np

from synthgen.celebamask import CLASS_ID
from synthgen.errors import UserError
from synthgen.landmarks68 import LANDMARKS68_SKELETON, draw_landmarks
from synthgen.toyfaces.canvas import Canvas
from synthgen.toyfaces.face import face_from_z
from synthgen.toyfaces.landmarks import landmarks68
from synthgen.toyfaces.parts import EDGE_WEIGHT, PAINT_ORDER, paint_background

DOMAINS = ("rgb", "seg", "sketch", "landmark")
MIN_SIZE, MAX_SIZE = 32, 256
SUPERSAMPLE = 2  # sub-pixels per pixel side for the photo's anti-aliasing
_NOISE_SEED = 0x70FACE  # the fixed pixel-noise basis; z only weights it


class ToyFacesError(ValueError, UserError):
    """A bad render request (size or domain); the message says what is allowed."""


def check_request(size: int, domains: Iterable[str]) -> tuple[str, ...]:
    domains = tuple(domains)
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ToyFacesError(f"size {size} is out of range: use {MIN_SIZE}..{MAX_SIZE}")
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown or not domains:
        raise ToyFacesError(f"unknown domain(s) {unknown or domains}: choose from {', '.join(DOMAINS)}")
    return domains


@functools.lru_cache(maxsize=8)
def _noise_basis(size: int) -> np.ndarray:
    """(3, S, S, 3) fixed standard-normal images; a face's noise is their z-weighted sum."""
    rng = np.random.default_rng([_NOISE_SEED, size])
    return rng.standard_normal((3, size, size, 3), dtype=np.float32)


def _box_down(a: np.ndarray, k: int) -> np.ndarray:
    """(N, N, ...) -> (N/k, N/k, ...) block means (strided sums: cheaper than a reshape mean)."""
    out = np.zeros((a.shape[0] // k, a.shape[1] // k, *a.shape[2:]), dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            out += a[dy::k, dx::k]
    out *= np.float32(1.0 / (k * k))
    return out


# Which class keeps a block when two classes cover it equally: small face parts first, so a
# thin brow or frame that covers half of each block it crosses is not voted away.
_TIE_PRIORITY = np.zeros(256, dtype=np.uint8)
for _name, _rank in {"cloth": 1, "neck": 2, "neck_l": 2, "hair": 3, "skin": 3, "l_ear": 3, "r_ear": 3,
                     "hat": 4, "nose": 5, "l_eye": 6, "r_eye": 6, "l_brow": 6, "r_brow": 6,
                     "u_lip": 6, "l_lip": 6, "mouth": 7, "eye_g": 8, "ear_r": 8}.items():
    _TIE_PRIORITY[CLASS_ID[_name]] = _rank


def _block_mode(labels: np.ndarray, k: int) -> np.ndarray:
    """(N, N) uint8 -> (N/k, N/k): the most frequent class of each k x k block.

    Equal counts go to the higher _TIE_PRIORITY; the chosen class always covers at least
    one sub-pixel of the block, so it always shows in the photo.
    """
    subs = [labels[dy::k, dx::k] for dy in range(k) for dx in range(k)]
    scores = [sum((s == t).view(np.uint8) for t in subs) * np.uint16(32) + _TIE_PRIORITY[s] for s in subs]
    best, best_score = subs[0].copy(), scores[0]
    for s, score in zip(subs[1:], scores[1:]):
        np.copyto(best, s, where=score > best_score)
        best_score = np.maximum(best_score, score)
    return best


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _photo(canvas: Canvas, size: int, ss: int) -> np.ndarray:
    rgb = _box_down(canvas.rgb, ss)
    for weight, image in zip(canvas.face.noise, _noise_basis(size)):
        rgb += weight * image
    return _to_uint8(rgb)


def _sketch(canvas: Canvas, ss: int) -> np.ndarray:
    """Contours between part kinds (two sub-pixels wide) over each part's ink tone."""
    kind = canvas.kind
    w = EDGE_WEIGHT[kind]  # (N, N)
    line = np.zeros_like(w)
    wh = np.where(kind[:, 1:] != kind[:, :-1], np.minimum(w[:, 1:], w[:, :-1]), 0.0)
    wv = np.where(kind[1:, :] != kind[:-1, :], np.minimum(w[1:, :], w[:-1, :]), 0.0)
    np.maximum(line[:, 1:], wh, out=line[:, 1:])
    np.maximum(line[:, :-1], wh, out=line[:, :-1])
    np.maximum(line[1:, :], wv, out=line[1:, :])
    np.maximum(line[:-1, :], wv, out=line[:-1, :])
    return _to_uint8(_box_down(canvas.ink * (1.0 - line), ss))


def render(z, size: int = 64, domains: Sequence[str] = DOMAINS, supersample: int = SUPERSAMPLE) -> dict:
    """One face: a pure function of z (Z_DIM,), same z -> same bytes.

    Returns the requested domains: "rgb" uint8 (S, S, 3); "seg" uint8 (S, S) CelebAMask
    class ids; "sketch" uint8 (S, S) black lines on white; for "landmark" both
    "landmark" float32 (68, 2) x,y pixels and "landmark_map" uint8 (S, S).
    """
    domains = check_request(size, domains)
    face = face_from_z(z)
    out: dict[str, np.ndarray] = {}
    if {"rgb", "seg", "sketch"} & set(domains):
        canvas = Canvas(face, size, supersample)
        for paint in PAINT_ORDER:
            paint(canvas)
        if "rgb" in domains:
            out["rgb"] = _photo(canvas, size, supersample)
        if "seg" in domains:
            out["seg"] = _block_mode(canvas.label, supersample)
        if "sketch" in domains:
            out["sketch"] = _sketch(canvas, supersample)
    if "landmark" in domains:
        points = landmarks68(face, size)
        out["landmark"] = points
        out["landmark_map"] = draw_landmarks(points, size, LANDMARKS68_SKELETON)
    return out


def render_background(z, size: int = 64, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """uint8 (S, S, 3): the background layer alone, noise included (what a face covers)."""
    check_request(size, ("rgb",))
    canvas = Canvas(face_from_z(z), size, supersample)
    paint_background(canvas)
    return _photo(canvas, size, supersample)


def render_batch(zs, size: int = 64, domains: Sequence[str] = DOMAINS) -> dict:
    """Stacked render of every row of zs (B, Z_DIM): each key gets a leading batch axis."""
    zs = np.asarray(zs, dtype=np.float32)
    domains = check_request(size, domains)
    samples = [render(z, size, domains) for z in zs]
    if not samples:
        return {}
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def _render_chunk(args) -> dict:
    zs, size, domains = args
    return render_batch(zs, size, domains)


def render_pool(
    zs, size: int = 64, domains: Sequence[str] = DOMAINS, workers: int = 2, chunk_size: int = 64
) -> Iterator[dict]:
    """render_batch over chunks of zs in `workers` processes; yields chunks in order."""
    zs = np.asarray(zs, dtype=np.float32)
    domains = check_request(size, domains)
    chunks = [(zs[i : i + chunk_size], size, domains) for i in range(0, len(zs), chunk_size)]
    if workers <= 1:
        yield from map(_render_chunk, chunks)
        return
    with pool_context().Pool(workers) as pool:
        yield from pool.imap(_render_chunk, chunks)


def pool_context():
    """fork is fastest to start, but forking after torch has started threads can deadlock:
    spawn once torch is loaded."""
    import sys

    return multiprocessing.get_context("spawn" if "torch" in sys.modules else "fork")
