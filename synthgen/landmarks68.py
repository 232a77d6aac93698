"""The 68-point facial landmark layout (dlib / iBUG 300-W order) and landmark maps.

Points are x,y in pixels with pixel centres at integer coordinates (point (0, 0) is the
centre of the top-left pixel), the convention dlib and the 300-W annotations use.
"Left" and "right" below are image left and right (the subject's right eye is 36-41).

`draw_landmarks` works for any keypoint count: give it the points and a skeleton
(a list of polylines, each a sequence of point indices).
"""
from __future__ import annotations

from typing import Sequence

import functools

import numpy as np

NUM_POINTS = 68

# Index groups of the iBUG 300-W markup, in the order dlib's shape predictor emits them.
JAW = range(0, 17)  # image-left ear level, down to the chin (8), up to image-right
LEFT_BROW = range(17, 22)  # image-left brow, outer end to inner end
RIGHT_BROW = range(22, 27)  # image-right brow, inner end to outer end
NOSE_BRIDGE = range(27, 31)  # between the eyes down to the tip
NOSE_BASE = range(31, 36)  # lower edge of the nose, image left to right
LEFT_EYE = range(36, 42)  # outer corner, two upper-lid points, inner corner, two lower
RIGHT_EYE = range(42, 48)  # inner corner, two upper-lid points, outer corner, two lower
OUTER_LIPS = range(48, 60)  # left corner, upper outer contour, right corner, lower contour
INNER_LIPS = range(60, 68)  # left inner corner, upper inner, right inner corner, lower inner

GROUPS = {
    "jaw": JAW, "left_brow": LEFT_BROW, "right_brow": RIGHT_BROW,
    "nose_bridge": NOSE_BRIDGE, "nose_base": NOSE_BASE, "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE, "outer_lips": OUTER_LIPS, "inner_lips": INNER_LIPS,
}

# The eye groups whose centres define the inter-ocular distance (the NME normaliser of 300-W).
INTER_OCULAR = (range(36, 42), range(42, 48))


def _closed(group: range) -> tuple[int, ...]:
    return tuple(group) + (group[0],)


# Polylines to draw: open for jaw, brows and nose bridge; closed for eyes and lips.
LANDMARKS68_SKELETON: tuple[tuple[int, ...], ...] = (
    tuple(JAW),
    tuple(LEFT_BROW),
    tuple(RIGHT_BROW),
    tuple(NOSE_BRIDGE) + (33,),  # the bridge ends at the middle of the nose base
    tuple(NOSE_BASE),
    _closed(LEFT_EYE),
    _closed(RIGHT_EYE),
    _closed(OUTER_LIPS),
    _closed(INNER_LIPS),
)


def inter_ocular_distance(points: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres: (..., 68, 2) -> (...)."""
    left = points[..., list(INTER_OCULAR[0]), :].mean(axis=-2)
    right = points[..., list(INTER_OCULAR[1]), :].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


def _stencil(radius: float) -> np.ndarray:
    """Integer offsets (K, 2) of a disc, so a splat gets `radius` pixels of thickness."""
    r = int(np.ceil(radius))
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    keep = ox**2 + oy**2 <= radius**2 + 1e-6
    return np.stack([ox[keep], oy[keep]], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _edges(skeleton: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(E, 2) point-index pairs of every segment of every polyline."""
    pairs = [(a, b) for line in skeleton for a, b in zip(line[:-1], line[1:])]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _splat(samples: np.ndarray, size: int, stencil: np.ndarray, weight) -> np.ndarray:
    """Bilinear splat of sample positions (M, 2) through a stencil into a (size, size) buffer;
    weight is a scalar or one value per sample."""
    pts = (samples[:, None, :] + stencil[None, :, :]).reshape(-1, 2)
    weight = np.broadcast_to(np.asarray(weight, dtype=np.float64)[..., None],
                             (samples.shape[0], len(stencil))).reshape(-1)
    x0 = np.floor(pts[:, 0])
    y0 = np.floor(pts[:, 1])
    fx = pts[:, 0] - x0
    fy = pts[:, 1] - y0
    flat, weights = [], []
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi = x0 + dx
        yi = y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        flat.append((yi[ok] * size + xi[ok]).astype(np.int64))
        weights.append(w[ok] * weight[ok])
    acc = np.bincount(np.concatenate(flat), weights=np.concatenate(weights),
                      minlength=size * size)
    return acc.reshape(size, size)


def draw_landmarks(
    points: np.ndarray,
    size: int,
    skeleton: Sequence[Sequence[int]] = LANDMARKS68_SKELETON,
    line_width: float | None = None,
    dot_radius: float | None = None,
) -> np.ndarray:
    """A landmark map: skeleton lines and point dots, white on black.

    points: (N, 2) x,y pixels (any N; the skeleton indexes into it). Returns uint8
    (size, size). Lines default to ~1 px and dots to single pixels at 64 px, both growing with the image size, and
    lines are anti-aliased by splatting densely sampled points bilinearly.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if line_width is None:
        line_width = max(1.0, size / 96)
    if dot_radius is None:
        dot_radius = size / 128
    edges = _edges(tuple(tuple(int(i) for i in line) for line in skeleton))
    samples = None
    if len(edges):
        a, b = points[edges[:, 0]], points[edges[:, 1]]  # (E, 2)
        # Sample every segment with as many points as the longest needs (<= 1/4 px apart);
        # a segment's samples then weigh in proportion to their spacing, so all lines
        # come out equally dark.
        length = np.linalg.norm(b - a, axis=1)
        m = int(min(max(np.ceil(length.max() * 4), 2), 16 * size))
        t = np.linspace(0.0, 1.0, m, dtype=np.float32)
        samples = (a[:, None, :] + (b - a)[:, None, :] * t[None, :, None]).reshape(-1, 2)
        spacing = np.repeat(np.maximum(length / (m - 1), 1e-3), m)
    canvas = np.zeros((size, size), dtype=np.float64)
    if samples is not None:
        line_r = max(line_width / 2 - 0.5, 0.0)
        canvas += _splat(samples, size, _stencil(line_r), 1.2 * spacing)
    dots = _splat(points, size, _stencil(dot_radius), 1.5)
    out = np.clip(np.maximum(canvas, dots), 0.0, 1.0)
    return np.round(out * 255).astype(np.uint8)
