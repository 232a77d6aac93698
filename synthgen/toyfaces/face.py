"""One face's geometry and colours, derived from z (see latent.Z_LAYOUT).

Shapes live in the face frame (u right, v down; the head is about 0.7 wide, the whole
image spans [-1, 1] at scale 1). The pose maps it into image coordinates X, Y in [-1, 1]:
(X, Y) = t + scale * R(roll) (u, v). Each curved part is written once as a curve
function used both to fill the part and to place its landmarks on its boundary.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from synthgen.toyfaces.latent import (
    EARRINGS_THRESHOLD, GLASSES_THRESHOLD, HAT_THRESHOLD, MOUTH_OPEN_THRESHOLD, Latent,
)


def _mix(a, b, t: float) -> np.ndarray:
    return np.asarray(a, dtype=np.float32) * (1 - t) + np.asarray(b, dtype=np.float32) * t


def _ramp(stops, t: float) -> np.ndarray:
    """Piecewise-linear colour ramp through `stops` for t in [0, 1]."""
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    k = min(int(t), len(stops) - 2)
    return _mix(stops[k], stops[k + 1], t - k)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


SKIN_RAMP = ((0.30, 0.19, 0.13), (0.55, 0.36, 0.24), (0.80, 0.60, 0.47), (0.96, 0.80, 0.70))
HAIR_RAMP = ((0.07, 0.05, 0.05), (0.25, 0.15, 0.08), (0.50, 0.33, 0.18), (0.86, 0.72, 0.46))
IRIS_RAMP = ((0.30, 0.17, 0.08), (0.45, 0.35, 0.15), (0.30, 0.50, 0.30), (0.25, 0.45, 0.75))


@dataclass
class Face:
    style: str
    # pose
    tx: float
    ty: float
    scale: float
    roll: float
    yaw: float  # in (-1, 1)
    # head (an egg: ellipse whose half-width narrows below the centre)
    cy: float
    a0: float
    b: float
    jaw: float
    # features
    fx: float  # horizontal shift of the features (yaw)
    ey: float
    es: float
    ew: float
    eh_up: float
    eh_lo: float
    gaze: float
    by: float
    bw: float
    bt: float
    arch: float
    n_top: float
    n_bot: float
    nw: float
    nose_r: float
    tip_shift: float
    my: float
    mw: float
    lip_u: float
    lip_l: float
    smile: float
    opening: float
    ear_v: float
    ear_w: float
    ear_h: float
    neck_w: float
    shoulder_v: float
    neckline_depth: float
    # hair
    volume: float
    hairline_v: float
    part_u: float
    hair_end: float
    # accessories
    glasses: bool
    glasses_p: float
    hat: bool
    hat_top: float
    hat_brim: float
    earrings: bool
    # colours (float32 RGB in [0, 1])
    skin: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    lip: np.ndarray
    cloth: np.ndarray
    bg0: np.ndarray
    bg1: np.ndarray
    hat_colour: np.ndarray
    frame_colour: np.ndarray
    lens_tint: np.ndarray
    metal: np.ndarray
    blush: float
    # light and texture
    light: np.ndarray  # unit (3,) vector
    ambient: float
    bg_angle: float
    bg_pattern: float
    bg_phase: float
    tex_a: float
    tex_b: float
    strand_phase: float
    noise: np.ndarray  # (3,) weights of the fixed pixel-noise images

    # -- the frame ----------------------------------------------------------------
    def to_image(self, u, v):
        """Face frame -> image coordinates in [-1, 1]."""
        c, s = math.cos(self.roll), math.sin(self.roll)
        return (self.tx + self.scale * (c * u - s * v), self.ty + self.scale * (s * u + c * v))

    # -- curves shared by painting and landmarks -----------------------------------
    def head_half_width(self, v):
        """Half-width of the head at height v (the egg narrows toward the chin)."""
        t = np.clip((v - self.cy) / self.b, -1.0, 1.0)
        narrow = 1.0 - self.jaw * np.clip(t, 0.0, 1.0) ** 2
        return self.a0 * narrow * np.sqrt(np.maximum(1.0 - t * t, 0.0))

    def eye_centre(self, side: int) -> tuple[float, float]:
        """side -1 = image left, +1 = image right."""
        return self.fx + side * self.es * (1 + 0.12 * side * self.yaw), self.ey

    def eye_width(self, side: int) -> float:
        return self.ew * (1 + 0.15 * side * self.yaw)

    def eye_lids(self, x):
        """Upper and lower lid offsets from the eye centre at x in [-1, 1] (fraction of width)."""
        w = np.maximum(1.0 - x * x, 0.0)
        return -self.eh_up * w, self.eh_lo * w

    def brow_centre(self, side: int) -> float:
        return self.eye_centre(side)[0] + side * 0.012

    def brow_curve(self, x):
        """Brow centre line at x in [-1, 1] (-1 inner end, +1 outer end)."""
        return self.by - self.arch * (1.0 - ((x - 0.15) / 1.15) ** 2) + 0.008 * x

    def brow_thickness(self, x):
        return self.bt * (1.0 - 0.25 * ((x + 1.0) / 2.0) ** 2)

    def nose_line(self, t):
        """Centre of the nose at fraction t in [0, 1] from top to bottom: (u, v)."""
        return self.fx + self.tip_shift * t * t, self.n_top + (self.n_bot - self.n_top) * t

    def nose_half_width(self, t):
        return 0.018 + (self.nw * 0.55 - 0.018) * t**3

    def mouth_centre(self) -> float:
        return self.fx * 1.1

    def mouth_curves(self, x):
        """(upper outer, upper inner, lower inner, lower outer) v at x in [-1, 1]."""
        w = np.maximum(1.0 - x * x, 0.0)
        mid = self.my - self.smile * 0.04 * x * x
        half_open = 0.5 * self.opening * np.sqrt(w)
        bow = 1.0 - 0.35 * np.exp(-((np.abs(x) - 0.0) / 0.12) ** 2)  # Cupid's bow dip
        upper_in = mid - half_open
        lower_in = mid + half_open
        upper_out = upper_in - self.lip_u * w**0.6 * bow
        lower_out = lower_in + self.lip_l * w**0.5
        return upper_out, upper_in, lower_in, lower_out


def face_from_z(z) -> Face:
    lat = Latent(z)
    g, u, t = lat.get, lat.u, lat.t
    style = lat.hair_style()

    a0 = 0.35 * (1 + 0.06 * t("head_width"))
    b = 0.46 * (1 + 0.05 * t("head_length"))
    cy = -0.04
    yaw = t("yaw", 0.6)
    ey = cy - 0.01 + 0.025 * t("eye_height")
    ew = 0.062 * (1 + 0.12 * t("eye_size"))
    eh_up = 0.030 * (1 + 0.25 * t("eye_open"))
    bt = 0.03 * (1 + 0.25 * t("brow_thickness"))
    by = ey - 0.095 - 0.015 * t("brow_raise") - 0.5 * bt
    n_bot = ey + 0.175 * (1 + 0.12 * t("nose_length"))
    lip_scale = 1 + 0.3 * t("lip_thickness")
    open_p = u("mouth_open")
    opening = 0.07 * max(0.0, (open_p - MOUTH_OPEN_THRESHOLD) / (1 - MOUTH_OPEN_THRESHOLD)) ** 0.7
    volume = 0.035 + 0.025 * t("hair_volume") if style != "bald" else 0.0
    brow_top = by - 0.035 - bt  # above the arch
    if style == "bangs":
        hairline_v = brow_top - 0.035 - 0.02 * (1 + t("hairline")) / 2
    else:
        hairline_v = cy - b * (0.62 + 0.1 * t("hairline"))
    hat_brim = cy - b * (0.66 + 0.06 * t("hat_height")) if style != "bangs" else brow_top - 0.05

    skin = _ramp(SKIN_RAMP, u("skin_tone") ** 0.5) * np.array(
        [1 + 0.05 * t("skin_warmth"), 1.0, 1 - 0.06 * t("skin_warmth")], dtype=np.float32)
    hair = _ramp(HAIR_RAMP, u("hair_shade") ** 1.3)
    hair = hair + np.array([0.16, 0.02, -0.05], dtype=np.float32) * max(0.0, t("hair_red"))
    grey = max(0.0, (u("hair_grey") - 0.8) / 0.2)
    hair = _mix(hair, (0.72, 0.72, 0.74), grey)
    brow = hair * (0.55 + 0.25 * (1 + t("brow_shade")) / 2)
    lip = _mix(skin * np.array([0.95, 0.7, 0.7], dtype=np.float32), (0.72, 0.22, 0.25),
               0.15 + 0.6 * u("lip_colour"))
    cloth = _hsv(u("cloth_hue"), 0.2 + 0.6 * u("cloth_saturation"), 0.25 + 0.65 * u("cloth_value"))
    bg_h = u("bg_hue")
    bg_v = 0.35 + 0.55 * u("bg_value")
    bg0 = _hsv(bg_h, 0.25, bg_v)
    bg1 = _hsv(bg_h + 0.08, 0.35, bg_v * 0.75)
    frame_t = u("glasses_colour")
    az = 0.75 * t("light_azimuth", 0.5)
    el = -0.35 + 0.25 * t("light_elevation")
    lz = math.sqrt(max(1.0 - az * az - el * el, 0.05))
    light = np.array([az, el, lz], dtype=np.float32)
    light /= np.linalg.norm(light)

    return Face(
        style=style,
        tx=0.05 * t("tx"), ty=0.03 + 0.05 * t("ty"), scale=1.3 * math.exp(0.08 * g("scale")),
        roll=math.radians(9.0) * t("roll"), yaw=yaw,
        cy=cy, a0=a0, b=b, jaw=0.28 + 0.12 * t("jaw_taper"),
        fx=0.055 * yaw, ey=ey, es=0.145 * (1 + 0.06 * t("eye_spacing")), ew=ew,
        eh_up=eh_up, eh_lo=0.6 * eh_up + 0.004, gaze=0.35 * t("gaze"),
        by=by, bw=0.085 * (1 + 0.08 * t("eye_size")), bt=bt,
        arch=0.018 * (1 + 0.5 * t("brow_arch")),
        n_top=ey - 0.02, n_bot=n_bot, nw=0.11 * (1 + 0.15 * t("nose_width")),
        nose_r=0.03, tip_shift=0.05 * yaw,
        my=n_bot + 0.075 + 0.01 * t("nose_length"), mw=0.095 * (1 + 0.12 * t("mouth_width")),
        lip_u=0.022 * lip_scale, lip_l=0.03 * lip_scale, smile=0.8 * t("smile"), opening=opening,
        ear_v=ey + 0.07, ear_w=0.05 * (1 + 0.12 * t("ear_size")),
        ear_h=0.105 * (1 + 0.12 * t("ear_size")),
        neck_w=0.165 * (1 + 0.1 * t("neck_width")), shoulder_v=cy + b + 0.1,
        neckline_depth=0.1 + 0.06 * (1 + t("neckline")),
        volume=volume, hairline_v=hairline_v, part_u=0.12 * t("hair_part"),
        hair_end=cy + b + 0.25 + 0.25 * u("hair_length"),
        glasses=u("glasses") > GLASSES_THRESHOLD, glasses_p=2.2 + 2.5 * u("glasses_shape"),
        hat=u("hat") > HAT_THRESHOLD, hat_top=cy - b - volume - 0.12 - 0.08 * u("hat_height"),
        hat_brim=hat_brim, earrings=u("earrings") > EARRINGS_THRESHOLD,
        skin=skin, hair=hair, brow=brow, iris=_ramp(IRIS_RAMP, u("iris_hue")), lip=lip,
        cloth=cloth, bg0=bg0, bg1=bg1,
        hat_colour=_hsv(u("hat_hue"), 0.55, 0.35 + 0.4 * u("hat_height")),
        frame_colour=_mix((0.08, 0.06, 0.06), (0.7, 0.62, 0.45), frame_t),
        lens_tint=_mix((0.85, 0.9, 0.95), (0.8, 0.75, 0.7), frame_t),
        metal=_mix((0.8, 0.8, 0.82), (0.9, 0.72, 0.3), u("earring_colour")),
        blush=0.12 * (1 + t("blush")),
        light=light, ambient=0.42 - 0.1 * t("light_contrast"),
        bg_angle=math.pi * t("bg_angle", 0.5), bg_pattern=0.08 * u("bg_pattern"),
        bg_phase=g("bg_pattern_phase"), tex_a=0.035 * t("skin_texture_a"),
        tex_b=0.035 * t("skin_texture_b"), strand_phase=g("hair_strand_phase"),
        noise=np.array([g("noise_a"), g("noise_b"), g("noise_c")], dtype=np.float32) * 0.008,
    )
