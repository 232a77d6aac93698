"""The 68 dlib-order landmarks of a ToyFace, placed on the curves its parts are drawn from.

Each point is evaluated on the same curve function (face.py) that bounds its part, so
eye points lie on the eye's lids, lip points on the lip contours, jaw points on the head
outline: the landmarks are exact, not annotated.
"""
from __future__ import annotations

import math

import numpy as np

from synthgen.toyfaces.face import Face

_THIRDS = np.array([-1 / 3, 1 / 3])
_CORNER = 0.96  # corner points sit just inside the pointed ends of eyes and lips


def _jaw(f: Face) -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(0.12, math.pi / 2, 9)
    v = f.cy + f.b * np.sin(theta)
    u = np.asarray(f.head_half_width(v), dtype=np.float64)
    u[-1] = 0.0
    return np.concatenate([-u, u[-2::-1]]), np.concatenate([v, v[-2::-1]])


def _brows(f: Face):
    us, vs = [], []
    for side, xs in ((-1, [1, 0.5, 0, -0.5, -1]), (1, [-1, -0.5, 0, 0.5, 1])):
        x = np.asarray(xs, dtype=np.float64) * 0.92
        us.append(f.brow_centre(side) + side * x * f.bw)
        vs.append(f.brow_curve(x))
    return np.concatenate(us), np.concatenate(vs)


def _nose(f: Face):
    t_tip = (f.n_bot - 0.9 * f.nose_r - f.n_top) / (f.n_bot - f.n_top)
    t = np.linspace(0.05, t_tip, 4)
    bridge_u, bridge_v = f.nose_line(t)
    tip_u, _ = f.nose_line(1.0)
    base_u = tip_u + f.nw * np.array([-0.45, -0.22, 0.0, 0.22, 0.45])
    base_v = f.n_bot - f.nose_r * np.array([0.7, 0.4, 0.2, 0.4, 0.7])
    return np.concatenate([bridge_u, base_u]), np.concatenate([bridge_v, base_v])


def _eyes(f: Face):
    us, vs = [], []
    for side in (-1, 1):
        cu, cv = f.eye_centre(side)
        w = f.eye_width(side)
        # dlib: left eye starts at its outer corner, right eye at its inner corner; both
        # then go along the upper lid to the other corner and back along the lower lid.
        x = np.array([-_CORNER, *_THIRDS, _CORNER, *_THIRDS[::-1]])
        upper, lower = f.eye_lids(x)
        y = np.concatenate([[0.0], upper[1:3], [0.0], lower[4:6]])
        us.append(cu + x * w)
        vs.append(cv + y)
    return np.concatenate(us), np.concatenate(vs)


def _mouth(f: Face):
    cu = f.mouth_centre()
    outer_x = np.array([-_CORNER, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, _CORNER, 2 / 3, 1 / 3, 0, -1 / 3, -2 / 3])
    uo, ui, li, lo = f.mouth_curves(outer_x)
    mid = (ui + li) / 2
    outer_v = np.concatenate([mid[:1], uo[1:6], mid[6:7], lo[7:]])
    inner_x = np.array([-0.9, -0.45, 0, 0.45, 0.9, 0.45, 0, -0.45])
    uo, ui, li, lo = f.mouth_curves(inner_x)
    mid = (ui + li) / 2
    inner_v = np.concatenate([mid[:1], ui[1:4], mid[4:5], li[5:]])
    return cu + f.mw * np.concatenate([outer_x, inner_x]), np.concatenate([outer_v, inner_v])


def landmarks68(face: Face, size: int) -> np.ndarray:
    """(68, 2) float32 x,y pixels, pixel centres at integers (synthgen.landmarks68)."""
    parts = [_jaw(face), _brows(face), _nose(face), _eyes(face), _mouth(face)]
    u = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    X, Y = face.to_image(u, v)
    return np.stack([(X + 1) / 2 * size - 0.5, (Y + 1) / 2 * size - 0.5], axis=1).astype(np.float32)
