"""(photo, mask) pairs for the segmenter, read into memory from a folder or tar shards.

Two layouts:
- folder: DIR/rgb/<stem>.png (or .jpg/.webp) and DIR/seg/<stem>.png with the same stems
  (what `synthgen toyfaces render` writes, and what a user's real dataset looks like);
- shards: WebDataset tars as `synthgen sample` writes them, found and read by
  synthgen.dataset.reader (a dataset folder's complete shards, else DIR/shards/*.tar,
  DIR/*.tar, or one .tar), fields `<key>.rgb.png` (or the `.jpg` / `.webp` of
  `--image-format`) and `<key>.seg.png`. A folder with a dataset card (dataset.json) is
  read with the field names its card records for the rgb and seg domains.

Masks are single-channel PNGs whose pixel value is the class id (often palette mode P):
they are decoded as indices, never converted to RGB (docs/evaluation.md, "Pairs").
"""
from __future__ import annotations

import contextlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from synthgen.dataset.card import CardError, read_card
from synthgen.dataset.layout import picture_field
from synthgen.dataset.reader import find_shards, iter_samples
from synthgen.evaluation.errors import PairsError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Photo fields a shard may hold without a card to say which (`synthgen sample --image-format`).
SHARD_PHOTO_FIELDS = tuple(f"rgb{suffix}" for suffix in PHOTO_SUFFIXES)
MASK_FIELD = "seg.png"


@dataclass
class Pairs:
    images: np.ndarray  # (N, H, W, 3) uint8
    masks: np.ndarray  # (N, H, W) uint8 class ids
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)


def open_image(data: bytes | Path, name: str | None = None) -> Image.Image:
    """A decoded PIL image; an unreadable file is a PairsError naming it (name: for bytes)."""
    try:
        img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise PairsError(f"{name or data}: not a readable image ({exc})") from None
    return img


def decode_photo(data: bytes | Path, size: int | None = None, name: str | None = None) -> np.ndarray:
    """PNG/JPEG/WebP -> (H, W, 3) uint8, optionally resized (bicubic) to size x size."""
    img = open_image(data, name or (None if isinstance(data, Path) else "photo")).convert("RGB")
    if size and img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def decode_mask(data: bytes | Path, size: int | None = None, name: str = "mask") -> np.ndarray:
    """Class-id PNG (mode P, L or I) -> (H, W) uint8, resized with nearest so ids never blend."""
    img = open_image(data, name)
    if img.mode not in ("P", "L", "I", "I;16"):
        raise PairsError(
            f"{name} is a {img.mode} image: masks must be single-channel PNGs of class ids "
            "(palette mode P or grayscale L)"
        )
    if size and img.size != (size, size):
        img = img.resize((size, size), Image.NEAREST)
    arr = np.asarray(img)
    if arr.max(initial=0) > 255:
        raise PairsError(f"{name} holds class id {int(arr.max())} > 255")
    return arr.astype(np.uint8)


def _stems(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}


def read_pair_folder(root: str | Path, n: int | None = None, size: int | None = None) -> Pairs:
    """The first `n` stems (sorted) of root/rgb + root/seg."""
    root = Path(root)
    rgb_dir, seg_dir = root / "rgb", root / "seg"
    if not rgb_dir.is_dir() or not seg_dir.is_dir():
        raise PairsError(f"{root} needs rgb/ and seg/ subfolders with the same file stems")
    photos, masks = _stems(rgb_dir, PHOTO_SUFFIXES), _stems(seg_dir, (".png",))
    keys = sorted(set(photos) & set(masks))
    if not keys:
        raise PairsError(f"{root}: no stem has both rgb/<stem>.png and seg/<stem>.png")
    keys = keys[:n] if n else keys
    images = [decode_photo(photos[k], size) for k in keys]
    labels = [decode_mask(masks[k], size, name=str(masks[k])) for k in keys]
    return _stack(images, labels, keys, root)


def card_fields(source: str | Path, photo: str = "rgb", mask: str | None = "seg") -> tuple[tuple[str, ...], str]:
    """(photo fields, mask field) of a shard set: those the dataset card of `source` records
    for the `photo` and `mask` domains (mask None: the photo alone is needed), or any photo
    field and seg.png where there is no card (or one that records no domain specs)."""
    try:
        card = read_card(Path(source))
    except CardError as exc:  # there, but damaged
        raise PairsError(str(exc)) from None
    specs = card["config"].get("domain_specs") if card is not None else None
    if not specs:
        return SHARD_PHOTO_FIELDS, MASK_FIELD
    wanted = [photo] + ([mask] if mask else [])
    missing = [d for d in wanted if d not in specs]
    if missing:
        raise PairsError(
            f"{source} has no {' and no '.join(missing)} domain (it has {', '.join(specs) or 'none'}): "
            f"sample it with --domains {','.join(wanted)}"
        )
    return (picture_field(specs[photo]["fields"]),), (picture_field(specs[mask]["fields"]) if mask else MASK_FIELD)


@contextlib.contextmanager
def _reading(tar_path: Path):
    """Reading a shard: a damaged one (cut short, not a tar) is a PairsError naming it, also mid-read."""
    try:
        yield
    except (tarfile.TarError, OSError) as exc:
        raise PairsError(f"{tar_path}: unreadable shard ({type(exc).__name__}: {exc}): copy it again, or rerun "
                         "the `synthgen sample` command that wrote it") from None


def iter_shard_members(tars: list[Path], photo_fields: tuple[str, ...], other_field: str):
    """(tar path, key, photo bytes, other field's bytes) of every sample holding a photo field
    and `other_field`, in shard and key order."""
    for tar_path in tars:
        with _reading(tar_path):
            for key, fields in iter_samples(tar_path, (*photo_fields, other_field)):
                photo = next((fields[f] for f in photo_fields if f in fields), None)
                if photo is not None and other_field in fields:
                    yield tar_path, key, photo, fields[other_field]


def iter_shard_pairs(tars: list[Path], size: int | None = None, photo_fields: tuple[str, ...] = SHARD_PHOTO_FIELDS,
                     mask_field: str = MASK_FIELD):
    """(key, photo (H, W, 3) uint8, mask (H, W) uint8) of every sample holding a photo field
    and the mask field, in shard and key order."""
    for tar_path, key, photo, mask in iter_shard_members(tars, photo_fields, mask_field):
        yield (Path(key).name, decode_photo(photo, size, name=f"{tar_path}:{key} photo"),
               decode_mask(mask, size, name=f"{tar_path}:{key}.{mask_field}"))


def read_pair_shards(tars: list[Path], n: int | None = None, size: int | None = None,
                     photo_fields: tuple[str, ...] = SHARD_PHOTO_FIELDS, mask_field: str = MASK_FIELD) -> Pairs:
    """The first `n` samples holding both a photo field and the mask field, in shard and key order."""
    images, labels, keys = [], [], []
    for key, image, mask in iter_shard_pairs(tars, size, photo_fields, mask_field):
        images.append(image)
        labels.append(mask)
        keys.append(key)
        if n and len(keys) >= n:
            break
    if not keys:
        raise PairsError(
            f"{tars[0].parent if tars else '?'}: no sample has both {' or '.join(photo_fields)} and {mask_field}"
        )
    return _stack(images, labels, keys, tars[-1])


def read_pairs(source: str | Path, n: int | None = None, size: int | None = None) -> Pairs:
    """Pairs from a folder layout (rgb/ + seg/) or from WebDataset shards."""
    source = Path(source)
    if not source.exists():
        raise PairsError(f"{source} does not exist")
    if (source / "rgb").is_dir() and (source / "seg").is_dir():
        pairs = read_pair_folder(source, n, size)
    else:
        tars = find_shards(source)
        if not tars:
            raise PairsError(
                f"{source} holds neither rgb/ + seg/ folders nor WebDataset shards (shards/*.tar)"
            )
        photo_fields, mask_field = card_fields(source)
        pairs = read_pair_shards(tars, n, size, photo_fields, mask_field)
    if n and len(pairs) < n:
        raise PairsError(f"{source} holds {len(pairs)} pairs, {n} were asked for: lower --n")
    return pairs


def _stack(images, labels, keys, where) -> Pairs:
    shapes = {im.shape[:2] for im in images} | {m.shape for m in labels}
    if len(shapes) != 1:
        raise PairsError(
            f"{where}: photos and masks come in several sizes {sorted(shapes)}: pass a size to resize them"
        )
    return Pairs(np.stack(images), np.stack(labels), list(keys))


def read_photos(source: str | Path, n: int | None = None, size: int = 64) -> np.ndarray:
    """(N, size, size, 3) uint8 photos from a folder of images, a folder with rgb/, or shards."""
    source = Path(source)
    folder = source / "rgb" if (source / "rgb").is_dir() else source
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if folder.is_dir() else []
    if files:
        return np.stack([decode_photo(p, size) for p in files[:n]])
    tars = find_shards(source)
    if not tars:
        raise PairsError(f"{source} holds no photos (*.png, *.jpg, *.webp), rgb/ folder or shards")
    photo_fields = card_fields(source, mask=None)[0] if source.is_dir() else SHARD_PHOTO_FIELDS
    photos = []
    for tar_path in tars:
        with _reading(tar_path):
            for key, fields in iter_samples(tar_path, photo_fields):
                photos += [decode_photo(fields[f], size, name=f"{tar_path}:{key}.{f}") for f in photo_fields if f in fields]
                if n and len(photos) >= n:
                    return np.stack(photos[:n])
    if not photos:
        raise PairsError(f"{source}: no {' or '.join(photo_fields)} field in its shards")
    return np.stack(photos)
