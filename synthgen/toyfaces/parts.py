"""The parts of a ToyFace, each an implicit shape painted in painter's order.

`PAINT_ORDER` is the order: a later part overwrites an earlier one in colour, class,
kind and sketch ink alike. Class ids are CelebAMask-HQ's (synthgen/celebamask.py);
"l_"/"r_" classes are the parts on the image left/right.
"""
from __future__ import annotations

import numpy as np

from synthgen.celebamask import CLASS_ID as C
from synthgen.toyfaces.canvas import Canvas, pixel_centres

# Part kinds: finer than classes (iris vs eye white, teeth vs mouth) so the sketch can
# draw their contours. Each has an edge weight: a contour between two kinds is drawn
# with the smaller weight (the nose's outline is faint, its nostrils are not).
KINDS = (
    ("background", 1.0), ("hair", 1.0), ("neck", 1.0), ("cloth", 1.0), ("ear", 1.0),
    ("ear_inner", 0.6), ("skin", 1.0), ("nose", 0.3), ("nostril", 1.0), ("eye_white", 1.0),
    ("iris", 1.0), ("pupil", 1.0), ("lash", 1.0), ("brow", 1.0), ("u_lip", 0.9),
    ("l_lip", 0.9), ("mouth", 1.0), ("teeth", 0.7), ("glasses", 1.0), ("hat", 1.0),
    ("hat_band", 1.0), ("earring", 1.0),
)
K = {name: i for i, (name, _) in enumerate(KINDS)}
EDGE_WEIGHT = np.array([w for _, w in KINDS], dtype=np.float32)

SIDES = (-1, 1)  # image left, image right
EYE_CLASS = {-1: C["l_eye"], 1: C["r_eye"]}
BROW_CLASS = {-1: C["l_brow"], 1: C["r_brow"]}
EAR_CLASS = {-1: C["l_ear"], 1: C["r_ear"]}


def _lambert(canvas: Canvas, nx, ny, strength: float = 1.0):
    """Diffuse shading of a surface whose normal is (nx, ny, sqrt(1 - nx^2 - ny^2))."""
    f = canvas.face
    nz = np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.0))
    d = np.maximum(nx * f.light[0] + ny * f.light[1] + nz * f.light[2], 0.0)
    amb = f.ambient + (1.0 - strength) * (1.0 - f.ambient)
    return amb + (1.0 - amb) * d


def _shade(colour, shade):
    return np.asarray(colour, dtype=np.float32) * shade[..., None]


def paint_background(canvas: Canvas) -> None:
    """A linear gradient times soft blotches; smooth, so computed per output pixel and
    broadcast to its sub-pixels."""
    f = canvas.face
    k = canvas.supersample
    g = pixel_centres(canvas.n // k)
    X, Y = g[None, :], g[:, None]  # (1, S), (S, 1)
    t = np.clip((X * np.cos(f.bg_angle) + Y * np.sin(f.bg_angle) + 1.4) / 2.8, 0.0, 1.0)
    blotch = np.sin(2.3 * X + 1.1 * Y + f.bg_phase) * np.sin(1.7 * Y - 2.6 * X + 0.6 * f.bg_phase)
    shade = 1.0 + f.bg_pattern * blotch
    small = f.bg0 * shade[..., None] + (f.bg1 - f.bg0) * (t * shade)[..., None]  # (S, S, 3)
    s = small.shape[0]
    rows = np.repeat(small, k, axis=1)  # (S, N, 3)
    canvas.rgb.reshape(s, k, canvas.n, 3)[:] = rows[:, None]
    canvas.label[:] = C["background"]
    canvas.kind[:] = K["background"]


def _strands(canvas: Canvas, U, V):
    """(h, w) in [-1, 1]: hair strands fanning from above the crown, sideways to the part."""
    f = canvas.face
    top = f.cy - f.b - f.volume
    r = (U - f.part_u) / (V - top + 0.28)
    return 0.65 * np.sin(r * 60.0 + f.strand_phase) + 0.35 * np.sin(r * 137.0 + 1.7 * f.strand_phase)


def _hair_colour(canvas: Canvas, U, V, half_w: float, darken: float = 1.0):
    f = canvas.face
    s = _strands(canvas, U, V)
    shade = _lambert(canvas, np.clip(U / half_w, -1, 1) * 0.9, -0.3, 0.8) * (0.85 + 0.15 * s) * darken
    sheen = 0.18 * np.exp(-(((V - (f.cy - 0.55 * f.b)) / 0.05) ** 2)) * np.maximum(1 - np.abs(U) / half_w, 0)
    colour = _shade(f.hair, shade) + sheen[..., None] * np.float32(0.8)
    ink = np.where(s > 0.7, np.float32(0.4), np.float32(0.97))
    return colour, ink


def paint_hair_back(canvas: Canvas) -> None:
    f = canvas.face
    if f.style != "long":
        return
    top = f.cy - f.b - f.volume
    w0 = f.a0 + f.volume + 0.04
    win = canvas.window(-w0 - 0.12, w0 + 0.12, top, f.hair_end)
    if win is None:
        return
    U, V = win.U, win.V
    half_w = w0 + 0.09 * np.clip((V - f.ey) / 0.5, 0.0, 1.0)
    vc, hl = (top + f.hair_end) / 2, (f.hair_end - top) / 2
    x2, y2 = (U / half_w) ** 2, ((V - vc) / hl) ** 2
    inside = x2 * x2 + y2 * y2 < 1.0
    colour, ink = _hair_colour(canvas, U, V, w0 + 0.09, darken=0.82)
    canvas.paint(win, inside, colour, C["hair"], K["hair"], ink)


def paint_neck(canvas: Canvas) -> None:
    f = canvas.face
    win = canvas.window(-f.neck_w * 2.5, f.neck_w * 2.5, f.cy + 0.3 * f.b, f.cy + f.b + 1.6)
    if win is None:
        return
    U, V = win.U, win.V
    chin = f.cy + f.b
    half_w = f.neck_w * (1.0 + 0.6 * np.clip(V - chin - 0.05, 0.0, 1.0))
    inside = np.abs(U) < half_w
    shade = _lambert(canvas, np.clip(U / (half_w * 1.3), -1, 1), 0.0) * 0.9
    shade = shade * (0.62 + 0.38 * np.clip((V - chin + 0.02) / 0.1, 0.0, 1.0))
    canvas.paint(win, inside, _shade(f.skin, shade), C["neck"], K["neck"])


def paint_cloth(canvas: Canvas) -> None:
    f = canvas.face
    win = canvas.window(-2.5, 2.5, f.shoulder_v - 0.05, f.shoulder_v + 2.0)
    if win is None:
        return
    U, V = win.U, win.V
    shoulder = f.shoulder_v + 0.25 * U * U + 2.0 * np.maximum(np.abs(U) - 0.55, 0.0) ** 2
    neckline = (U / (f.neck_w * 1.3)) ** 2 + ((V - f.shoulder_v + 0.03) / f.neckline_depth) ** 2 < 1.0
    inside = (V > shoulder) & ~neckline
    folds = 1.0 + 0.05 * np.sin(13.0 * U + 4.0 * V)
    shade = _lambert(canvas, np.clip(U / 1.1, -1, 1), -0.25) * folds
    canvas.paint(win, inside, _shade(f.cloth, shade), C["cloth"], K["cloth"], 0.97)


def ear_centre(face, side: int) -> float:
    grow = 1.0 - 0.35 * side * face.yaw
    return side * (float(face.head_half_width(face.ear_v)) + face.ear_w * (0.45 * grow - 0.05))


def paint_ears(canvas: Canvas) -> None:
    f = canvas.face
    for side in SIDES:
        grow = 1.0 - 0.35 * side * f.yaw
        cu, w = ear_centre(f, side), f.ear_w * grow
        win = canvas.window(cu - w, cu + w, f.ear_v - f.ear_h, f.ear_v + f.ear_h)
        if win is None:
            continue
        x, y = (win.U - cu) / w, (win.V - f.ear_v) / f.ear_h
        r2 = x * x + y * y
        shade = _lambert(canvas, x * 0.8, y * 0.5) * 0.92
        canvas.paint(win, r2 < 1.0, _shade(f.skin, shade), EAR_CLASS[side], K["ear"])
        xi, yi = (win.U - cu - side * 0.15 * w) / (0.5 * w), (win.V - f.ear_v + 0.1 * f.ear_h) / (0.6 * f.ear_h)
        canvas.paint(win, xi * xi + yi * yi < 1.0, _shade(f.skin, shade * 0.72), EAR_CLASS[side],
                     K["ear_inner"])


def paint_head(canvas: Canvas) -> None:
    f = canvas.face
    win = canvas.window(-f.a0, f.a0, f.cy - f.b, f.cy + f.b)
    if win is None:
        return
    U, V = win.U, win.V
    inside = np.abs(U) < f.head_half_width(V)
    nx = np.clip(U / (f.a0 * 1.05), -1, 1)
    ny = (V - f.cy) / (f.b * 1.2)
    shade = _lambert(canvas, nx, ny)
    shade = shade * (1.0 + f.tex_a * np.sin(23.0 * U + 11.0 * V) + f.tex_b * np.sin(17.0 * V - 29.0 * U))
    colour = _shade(f.skin, shade)
    cheeks = np.exp(-((np.abs(U - f.fx) - 0.18) ** 2 + (V - f.ey - 0.12) ** 2) / 0.004) * f.blush
    colour += cheeks[..., None] * np.array([0.25, -0.08, -0.06], dtype=np.float32)
    canvas.paint(win, inside, colour, C["skin"], K["skin"])


def paint_nose(canvas: Canvas) -> None:
    f = canvas.face
    tip_u, _ = f.nose_line(1.0)
    win = canvas.window(min(f.fx, tip_u) - f.nw, max(f.fx, tip_u) + f.nw, f.n_top, f.n_bot)
    if win is None:
        return
    U, V = win.U, win.V
    t = np.clip((V - f.n_top) / (f.n_bot - f.n_top), 0.0, 1.0)
    cu, _ = f.nose_line(t)
    half = f.nose_half_width(t)
    ridge = (np.abs(U - cu) < half) & (V >= f.n_top)
    bx, by = (U - tip_u) / (0.5 * f.nw), (V - f.n_bot + f.nose_r) / f.nose_r
    inside = ridge | (bx * bx + by * by < 1.0)
    for side in SIDES:
        ax = (U - tip_u - side * 0.36 * f.nw) / (0.2 * f.nw)
        ay = (V - f.n_bot + 0.7 * f.nose_r) / (0.72 * f.nose_r)
        inside |= ax * ax + ay * ay < 1.0
    nx = np.clip((U - cu) / (half + 0.01), -1, 1)
    shade = _lambert(canvas, nx, -0.1 + 0.4 * t)
    canvas.paint(win, inside, _shade(f.skin, shade * 1.02), C["nose"], K["nose"])
    for side in SIDES:
        nx_ = (U - tip_u - side * 0.22 * f.nw) / 0.016
        ny_ = (V - f.n_bot + 0.011) / 0.0075
        nostril = nx_ * nx_ + ny_ * ny_ < 1.0
        canvas.paint(win, nostril, _shade(f.skin, np.full(U.shape, 0.32, np.float32)), C["nose"],
                     K["nostril"], 0.25)


def paint_eyes(canvas: Canvas) -> None:
    f = canvas.face
    for side in SIDES:
        cu, cv = f.eye_centre(side)
        w = f.eye_width(side)
        lash = 0.009
        win = canvas.window(cu - 1.1 * w, cu + 1.1 * w, cv - f.eh_up - 2 * lash, cv + f.eh_lo + 0.01)
        if win is None:
            continue
        x, y = (win.U - cu) / w, win.V - cv
        upper, lower = f.eye_lids(x)
        inside = (np.abs(x) < 1.0) & (y > upper) & (y < lower)
        lid_shadow = 0.78 + 0.22 * np.clip((y - upper) / (0.8 * f.eh_up), 0.0, 1.0)
        white = np.array([0.93, 0.91, 0.89], dtype=np.float32)
        cls = EYE_CLASS[side]
        canvas.paint(win, inside, _shade(white, lid_shadow), cls, K["eye_white"])
        ir = 0.55 * (f.eh_up + f.eh_lo) + 0.004
        ic_u, ic_v = cu + f.gaze * w * 0.45, cv + 0.002
        d = np.sqrt((win.U - ic_u) ** 2 + (y - 0.002) ** 2) / ir
        iris = inside & (d < 1.0)
        canvas.paint(win, iris, _shade(f.iris, (1.15 - 0.55 * d * d) * lid_shadow), cls, K["iris"], 0.55)
        pupil = inside & (d < 0.42)
        canvas.paint(win, pupil, np.array([0.03, 0.03, 0.035], np.float32), cls, K["pupil"], 0.05)
        glint = inside & ((win.U - ic_u + 0.3 * ir) ** 2 + (win.V - ic_v + 0.3 * ir) ** 2 < (0.2 * ir) ** 2)
        canvas.rgb[win.ys, win.xs][glint] = 0.95
        thick = lash * (1.0 + 0.6 * np.clip(side * x, 0.0, 1.0))
        lid = (np.abs(x) < 1.02) & (y > upper - thick) & (y < upper + 0.3 * thick)
        canvas.paint(win, lid, np.array([0.09, 0.06, 0.06], np.float32), cls, K["lash"], 0.1)


def paint_brows(canvas: Canvas) -> None:
    f = canvas.face
    for side in SIDES:
        cu = f.brow_centre(side)
        win = canvas.window(cu - f.bw * 1.05, cu + f.bw * 1.05, f.by - f.arch - f.bt, f.by + f.bt + 0.01)
        if win is None:
            continue
        x = side * (win.U - cu) / f.bw  # -1 inner end, +1 outer end
        inside = (np.abs(x) <= 1.0) & (np.abs(win.V - f.brow_curve(x)) < 0.5 * f.brow_thickness(x))
        hairs = 0.9 + 0.12 * np.sin(70.0 * win.U * side + 40.0 * win.V)
        canvas.paint(win, inside, _shade(f.brow, hairs), BROW_CLASS[side], K["brow"], 0.35)


def paint_mouth(canvas: Canvas) -> None:
    f = canvas.face
    cu = f.mouth_centre()
    rise = 0.04 * abs(f.smile)
    win = canvas.window(cu - f.mw * 1.02, cu + f.mw * 1.02, f.my - rise - f.opening - f.lip_u - 0.01,
                        f.my + rise + f.opening + f.lip_l + 0.01)
    if win is None:
        return
    x, V = (win.U - cu) / f.mw, win.V
    upper_out, upper_in, lower_in, lower_out = f.mouth_curves(x)
    across = np.abs(x) < 1.0
    shade = _lambert(canvas, x * 0.6, np.clip((V - f.my) / 0.06, -1, 1))
    canvas.paint(win, across & (V > upper_out) & (V <= upper_in), _shade(f.lip, shade * 0.86),
                 C["u_lip"], K["u_lip"], 0.85)
    canvas.paint(win, across & (V >= lower_in) & (V < lower_out), _shade(f.lip, shade * 1.05),
                 C["l_lip"], K["l_lip"], 0.85)
    if f.opening > 0:
        interior = across & (V > upper_in) & (V < lower_in)
        canvas.paint(win, interior, np.array([0.25, 0.06, 0.07], np.float32), C["mouth"], K["mouth"], 0.3)
        teeth = interior & (V < upper_in + 0.45 * (lower_in - upper_in)) & (np.abs(x) < 0.75)
        canvas.paint(win, teeth, np.array([0.92, 0.9, 0.84], np.float32), C["mouth"], K["teeth"])


def _hairline(f, U):
    """The lower edge of the hair cap at U: high on the forehead, down to the ears at the sides."""
    brow_outer = f.es + f.bw + 0.03
    side = np.clip((np.abs(U - 0.5 * f.fx) - brow_outer) / (f.a0 + f.volume - brow_outer), 0.0, 1.0)
    line = f.hairline_v
    if f.style == "bangs":
        line = line + 0.011 * np.sin(U * 45.0 + f.strand_phase) + 0.05 * f.part_u * U / 0.3
    return line + (f.ey - 0.035 - line) * side**1.5


def paint_hair_cap(canvas: Canvas) -> None:
    f = canvas.face
    if f.style == "bald":
        return
    hw, hh = f.a0 + f.volume, f.b + f.volume
    win = canvas.window(-hw, hw, f.cy - hh, f.ey)
    if win is None:
        return
    U, V = win.U, win.V
    tufts = 1.0 + 0.035 * np.sin(U * 31.0 + f.strand_phase)  # an uneven silhouette, not a helmet
    inside = ((U / hw) ** 2 + ((V - f.cy) / hh) ** 2 < tufts) & (V < _hairline(f, U))
    colour, ink = _hair_colour(canvas, U, V, hw)
    canvas.paint(win, inside, colour, C["hair"], K["hair"], ink)


def _superellipse(x, y, p: float):
    return np.abs(x) ** p + np.abs(y) ** p


def paint_glasses(canvas: Canvas) -> None:
    f = canvas.face
    if not f.glasses:
        return
    th, gh = 0.015, 0.058
    frame = f.frame_colour
    ring_v = f.ey + 0.004
    for side in SIDES:
        cu, _ = f.eye_centre(side)
        gw = f.eye_width(side) * 1.5
        head_edge = float(f.head_half_width(f.ey)) + 0.01
        u0, u1 = (-head_edge, cu + gw + th) if side < 0 else (cu - gw - th, head_edge)
        win = canvas.window(u0, u1, ring_v - gh - th, ring_v + gh + th)
        if win is None:
            continue
        x, y = (win.U - cu), (win.V - ring_v)
        lens = _superellipse(x / gw, y / gh, f.glasses_p) < 1.0
        outer = _superellipse(x / (gw + th), y / (gh + th), f.glasses_p) < 1.0
        canvas.tint(win, lens, f.lens_tint)
        temple = (side * x > gw) & (np.abs(win.U) < head_edge) & (np.abs(y + 0.35 * gh) < 0.4 * th)
        shine = 1.0 + 0.25 * np.clip(-y / gh, 0, 1)
        canvas.paint(win, (outer & ~lens) | temple, _shade(frame, shine), C["eye_g"], K["glasses"], 0.1)
    lu, _ = f.eye_centre(-1)
    ru, _ = f.eye_centre(1)
    a, b_ = lu + f.eye_width(-1) * 1.5, ru - f.eye_width(1) * 1.5
    win = canvas.window(a - th, b_ + th, ring_v - gh, ring_v)
    if win is not None:
        mid = (a + b_) / 2
        arc = ring_v - 0.55 * gh + 0.25 * gh * ((win.U - mid) / max((b_ - a) / 2, 1e-3)) ** 2
        bridge = (win.U > a - th) & (win.U < b_ + th) & (np.abs(win.V - arc) < 0.45 * th)
        canvas.paint(win, bridge, frame, C["eye_g"], K["glasses"], 0.1)


def paint_hat(canvas: Canvas) -> None:
    f = canvas.face
    if not f.hat:
        return
    hw = f.a0 + f.volume + 0.045
    win = canvas.window(-hw - 0.02, hw + 0.02, f.hat_top, f.hat_brim + 0.02)
    if win is None:
        return
    U, V = win.U, win.V
    crown_h = f.hat_brim - f.hat_top
    crown = (U / hw) ** 2 + ((V - f.hat_brim) / crown_h) ** 2 < 1.0
    crown &= V < f.hat_brim
    shade = _lambert(canvas, np.clip(U / hw, -1, 1), np.clip((V - f.hat_brim) / crown_h, -1, 0), 0.8)
    canvas.paint(win, crown, _shade(f.hat_colour, shade), C["hat"], K["hat"], 0.92)
    band = (np.abs(U) < hw + 0.015) & (V > f.hat_brim - 0.05) & (V < f.hat_brim + 0.015)
    ribs = 0.85 + 0.15 * np.sin(U * 110.0)
    canvas.paint(win, band, _shade(f.hat_colour * 0.85, shade * ribs), C["hat"], K["hat_band"], 0.85)


def paint_earrings(canvas: Canvas) -> None:
    f = canvas.face
    if not f.earrings:
        return
    r = 0.017
    for side in SIDES:
        cu = ear_centre(f, side)
        cv = f.ear_v + f.ear_h + 0.3 * r
        win = canvas.window(cu - r, cu + r, cv - 2.2 * r, cv + r)
        if win is None:
            continue
        x, y = (win.U - cu) / r, (win.V - cv) / r
        drop = (x * x + y * y < 1.0) | ((np.abs(x) < 0.22) & (y < 0) & (y > -2.2))
        shade = _lambert(canvas, np.clip(x, -1, 1), np.clip(y, -1, 1)) * 1.1
        canvas.paint(win, drop, _shade(f.metal, shade), C["ear_r"], K["earring"], 0.4)


PAINT_ORDER = (
    paint_background, paint_hair_back, paint_neck, paint_cloth, paint_ears, paint_head,
    paint_nose, paint_eyes, paint_brows, paint_mouth, paint_hair_cap, paint_glasses,
    paint_hat, paint_earrings,
)
