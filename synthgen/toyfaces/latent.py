"""Which component of z drives what: the documented latent layout of ToyFaces.

Every random choice of a face is a function of one standard-normal vector z
(Z_DIM = 64). `Z_LAYOUT` names each component and says what it drives; docs/toyfaces.md
prints the same table. Continuous attributes are smooth functions of their component
(the built-in generator regresses G(z) onto render_rgb(z), so smooth is learnable);
the few discrete parts are thresholds on Phi(z[k]), the standard-normal CDF, so each
has a known frequency.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthgen.seeding import per_index_normal

Z_DIM = 64


@dataclass(frozen=True)
class ZSlot:
    index: int
    name: str
    effect: str  # one line for the docs table


_LAYOUT = [
    ("tx", "horizontal translation of the whole figure"),
    ("ty", "vertical translation"),
    ("scale", "figure scale, exp(0.08 z)"),
    ("roll", "in-plane rotation, 9 deg * tanh(z)"),
    ("yaw", "yaw-like turn: features shift sideways, nose tip more, near ear grows"),
    ("head_width", "head half-width"),
    ("head_length", "head half-height"),
    ("jaw_taper", "how much the lower face narrows toward the chin"),
    ("skin_tone", "skin lightness, dark to light along a skin-tone ramp"),
    ("skin_warmth", "skin red/yellow balance"),
    ("hair_shade", "hair colour along black -> brown -> blonde"),
    ("hair_red", "red tint of the hair"),
    ("hair_grey", "grey hair: mixes toward grey when Phi(z) > 0.8"),
    ("hair_style", "DISCRETE: bald Phi<0.1, short <0.45, bangs <0.7, long otherwise"),
    ("hair_volume", "how far the hair stands off the skull"),
    ("hairline", "height of the hairline (and of the bangs' fringe)"),
    ("hair_part", "side of the parting: direction of the strands, tilt of the fringe"),
    ("hair_length", "where long hair ends (neck to below the shoulders)"),
    ("eye_size", "eye width"),
    ("eye_open", "eye opening (lid height)"),
    ("eye_spacing", "distance between the eyes"),
    ("eye_height", "vertical position of the eye line (and brows, nose top)"),
    ("iris_hue", "iris colour along brown -> hazel -> green -> blue"),
    ("gaze", "horizontal gaze: iris offset inside the eye"),
    ("brow_thickness", "brow thickness"),
    ("brow_arch", "brow arch height"),
    ("brow_raise", "gap between brows and eyes"),
    ("brow_shade", "brow darkness relative to the hair colour"),
    ("nose_length", "nose length"),
    ("nose_width", "width of the nose base"),
    ("mouth_width", "mouth width"),
    ("lip_thickness", "lip thickness"),
    ("smile", "mouth-corner lift (smile or frown)"),
    ("mouth_open", "DISCRETE: mouth open iff Phi(z) > 0.7; opening grows with Phi(z)"),
    ("lip_colour", "lip colour, skin-like to red"),
    ("ear_size", "ear size"),
    ("neck_width", "neck width"),
    ("glasses", "DISCRETE: glasses iff Phi(z) > 0.8"),
    ("glasses_shape", "glasses frame shape, round to rectangular"),
    ("glasses_colour", "frame colour (dark to metallic) and lens tint"),
    ("hat", "DISCRETE: hat iff Phi(z) > 0.85"),
    ("hat_hue", "hat colour hue"),
    ("hat_height", "height of the hat crown"),
    ("earrings", "DISCRETE: earrings iff Phi(z) > 0.75"),
    ("earring_colour", "earring metal, silver to gold"),
    ("cloth_hue", "clothing hue"),
    ("cloth_value", "clothing brightness"),
    ("cloth_saturation", "clothing saturation"),
    ("neckline", "depth of the neckline"),
    ("bg_hue", "background hue"),
    ("bg_value", "background brightness"),
    ("bg_angle", "direction of the background gradient"),
    ("bg_pattern", "strength of the background's soft blotches"),
    ("light_azimuth", "light direction, left to right"),
    ("light_elevation", "light direction, above to below"),
    ("light_contrast", "ambient vs directional light"),
    ("blush", "cheek redness"),
    ("skin_texture_a", "weight of skin texture basis pattern A"),
    ("skin_texture_b", "weight of skin texture basis pattern B"),
    ("hair_strand_phase", "phase of the hair strand pattern"),
    ("bg_pattern_phase", "phase of the background blotches"),
    ("noise_a", "weight of fixed pixel-noise image A"),
    ("noise_b", "weight of fixed pixel-noise image B"),
    ("noise_c", "weight of fixed pixel-noise image C"),
]

Z_LAYOUT: tuple[ZSlot, ...] = tuple(ZSlot(i, name, effect) for i, (name, effect) in enumerate(_LAYOUT))
Z_INDEX = {slot.name: slot.index for slot in Z_LAYOUT}
assert len(Z_LAYOUT) == Z_DIM

HAIR_STYLES = ("bald", "short", "bangs", "long")
# Upper Phi bounds of each hair style (the last runs to 1).
HAIR_STYLE_BOUNDS = (0.10, 0.45, 0.70)
GLASSES_THRESHOLD = 0.80
HAT_THRESHOLD = 0.85
EARRINGS_THRESHOLD = 0.75
MOUTH_OPEN_THRESHOLD = 0.70


def phi(x: float) -> float:
    """Standard-normal CDF: turns a z component into a uniform in (0, 1)."""
    return 0.5 * (1.0 + math.erf(float(x) / math.sqrt(2.0)))


def seed_to_z(seed: int, indices) -> np.ndarray:
    """(len(indices), Z_DIM) float32: sample i under seed K has z = per_index_normal(K, [i])[0].

    Matches FrozenGenerator.sample_z (stream 0), so the built-in generator's sample i
    under seed K has ground truth render(seed_to_z(K, [i])[0]).
    """
    return per_index_normal(seed, list(indices), Z_DIM)


class Latent:
    """Named read access to one z: `lat.get("roll")`, `lat.u("hat")` (= Phi)."""

    def __init__(self, z) -> None:
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if z.shape[0] != Z_DIM:
            raise ValueError(f"ToyFaces needs z of dimension {Z_DIM}, got {z.shape[0]}")
        self.values = [float(v) for v in z]

    def get(self, name: str) -> float:
        return self.values[Z_INDEX[name]]

    def u(self, name: str) -> float:
        return phi(self.get(name))

    def t(self, name: str, gain: float = 0.7) -> float:
        """A soft-bounded version in (-1, 1): tanh(gain * z)."""
        return math.tanh(gain * self.get(name))

    def hair_style(self) -> str:
        p = self.u("hair_style")
        for style, bound in zip(HAIR_STYLES, HAIR_STYLE_BOUNDS):
            if p < bound:
                return style
        return HAIR_STYLES[-1]
