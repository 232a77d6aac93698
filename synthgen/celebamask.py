"""The CelebAMask-HQ 19-label face parsing set: the label order real datasets use."""
from __future__ import annotations

CLASS_NAMES = [
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow",
    "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l",
    "neck", "cloth",
]
CLASS_ID = {name: i for i, name in enumerate(CLASS_NAMES)}

# The colour table face-parsing viewers commonly use for these 19 labels.
PALETTE = [
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
    (0, 255, 255), (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0),
    (255, 255, 0), (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204),
    (0, 51, 0), (255, 153, 51), (0, 204, 0),
]
assert len(CLASS_NAMES) == len(PALETTE) == 19
