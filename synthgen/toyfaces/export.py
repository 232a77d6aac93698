"""Write rendered ToyFaces to a folder: one subfolder per domain, one file per sample.

    out/rgb/00000.png        RGB
    out/seg/00000.png        class ids, palette-indexed ("P") with the CelebAMask palette
    out/sketch/00000.png     grey ("L")
    out/landmark/00000.npy   (68, 2) float32 x,y pixels
    out/landmark/00000.png   the landmark map ("L")

File names are the zero-padded sample index (at least 5 digits).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from synthgen.celebamask import PALETTE
from synthgen.toyfaces.latent import seed_to_z
from synthgen.toyfaces.preview import contact_sheet
from synthgen.toyfaces.render import DOMAINS, check_request, pool_context, render_batch

_FLAT_PALETTE = [c for rgb in PALETTE for c in rgb]
PREVIEW_SAMPLES = 8  # rows of the contact sheet


def name_width(start_index: int, n: int) -> int:
    return max(5, len(str(start_index + n - 1)))


def seg_image(seg: np.ndarray) -> Image.Image:
    """A class-id mask as a palette PNG: viewers show colours, pixel values stay the ids."""
    image = Image.frombytes("P", seg.shape[::-1], seg.tobytes())
    image.putpalette(_FLAT_PALETTE)
    return image


def write_sample(out: Path, name: str, sample: dict) -> None:
    if "rgb" in sample:
        Image.fromarray(sample["rgb"]).save(out / "rgb" / f"{name}.png")
    if "seg" in sample:
        seg_image(sample["seg"]).save(out / "seg" / f"{name}.png")
    if "sketch" in sample:
        Image.fromarray(sample["sketch"]).save(out / "sketch" / f"{name}.png")
    if "landmark" in sample:
        np.save(out / "landmark" / f"{name}.npy", sample["landmark"])
        Image.fromarray(sample["landmark_map"]).save(out / "landmark" / f"{name}.png")


def _write_chunk(args) -> int:
    out, seed, indices, size, domains, width = args
    batch = render_batch(seed_to_z(seed, indices), size, domains)
    for k, index in enumerate(indices):
        write_sample(out, f"{index:0{width}d}", {key: value[k] for key, value in batch.items()})
    return len(indices)


def render_to_folder(
    out,
    n: int,
    size: int = 64,
    seed: int = 0,
    domains: Sequence[str] = DOMAINS,
    start_index: int = 0,
    workers: int = 1,
    preview=None,
    progress: bool = True,
    chunk_size: int = 64,
) -> Path:
    """Render samples start_index .. start_index + n - 1 of `seed` into `out`.

    Same arguments -> same files, whatever `workers` is: each sample depends only on
    (seed, index). Writes a contact sheet of the first samples to `preview` if given.
    """
    from tqdm import tqdm

    domains = check_request(size, domains)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out)
    for domain in domains:
        (out / domain).mkdir(parents=True, exist_ok=True)
    width = name_width(start_index, n)
    indices = list(range(start_index, start_index + n))
    jobs = [(out, seed, indices[i : i + chunk_size], size, domains, width)
            for i in range(0, n, chunk_size)]
    workers = min(workers, len(jobs))  # a pool costs a process start each; never more than there are chunks
    with tqdm(total=n, unit="face", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                bar.update(_write_chunk(job))
        else:
            with pool_context().Pool(workers) as pool:
                for count in pool.imap_unordered(_write_chunk, jobs):
                    bar.update(count)
    if preview is not None:
        first = indices[:PREVIEW_SAMPLES]
        sheet = contact_sheet(render_batch(seed_to_z(seed, first), size, domains))
        Path(preview).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(preview)
    return out
