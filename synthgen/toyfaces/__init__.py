"""ToyFaces: procedural faces with exact paired ground truth in four domains.

`render(z)` turns one standard-normal vector z (Z_DIM,) into an aligned photo, 19-class
CelebAMask-HQ mask, sketch and 68 dlib-order landmarks. Sample i under seed K has
z = seed_to_z(K, [i])[0]. The z layout is documented in latent.Z_LAYOUT and
docs/toyfaces.md; dataset splits are seed ranges (splits.py).
"""
from synthgen.toyfaces.latent import Z_DIM, Z_LAYOUT, seed_to_z
from synthgen.toyfaces.render import (
    DOMAINS, MAX_SIZE, MIN_SIZE, ToyFacesError, render, render_background, render_batch,
    render_pool,
)

__all__ = [
    "DOMAINS", "MAX_SIZE", "MIN_SIZE", "ToyFacesError", "Z_DIM", "Z_LAYOUT", "render",
    "render_background", "render_batch", "render_pool", "seed_to_z",
]
