"""Per-sample arrays -> the bytes of its WebDataset fields, in a pool of encoding threads.

Fields of one sample (key = zero-padded index):
  image domain     -> `{name}.png|webp|jpg` (1 channel: grayscale, 3: RGB)
  mask domain      -> `{name}.png`, palette mode: pixel values are class ids, the palette
                      only makes them viewable (lossless whatever --image-format says)
  keypoints domain -> `{name}.png` (the drawn map, lossless) + `{name}.npy` ((N, 2) float32 x, y)
  `json`           -> the sample's provenance (index, seed, truncation, style mixing, ...)

zlib (PNG: synthgen/sample/png.py) and PIL's WebP / JPEG encoders release the GIL, so
threads encode in parallel while the main thread keeps the accelerator busy.
"""
from __future__ import annotations

import io
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from synthgen.dataset.layout import META_FIELD, domain_fields, picture_field, points_field, sample_key
from synthgen.sample.png import png_bytes


@dataclass(frozen=True)
class EncodeOptions:
    image_format: str = "png"  # png | webp | jpeg, for image domains only
    quality: int = 95  # webp / jpeg quality
    png_level: int = 1  # zlib compression level of every PNG


@dataclass
class SampleArrays:
    """One sample as the device loop hands it over: decoded arrays plus facts for its row."""

    index: int
    arrays: dict[str, dict[str, np.ndarray]]  # domain -> codec output for this sample
    scores: dict[str, float] = field(default_factory=dict)  # "<domain>_confidence", ... from raw outputs
    meta: dict[str, Any] = field(default_factory=dict)  # seed, truncation_psi, style mixing, shard


@dataclass
class EncodedSample:
    key: str
    index: int
    fields: dict[str, bytes]  # field name ("rgb.png") -> file bytes
    row: dict[str, Any]  # the sample's manifest row


def sample_fields(specs: Sequence[Any], image_format: str) -> list[str]:
    names = [f for spec in specs for f in domain_fields(spec, image_format)]
    return sorted(names + [META_FIELD])


def encode_image(array: np.ndarray, opts: EncodeOptions) -> bytes:
    """(H, W, C) uint8 with C in {1, 3}."""
    if opts.image_format == "png":
        return png_bytes(array, opts.png_level)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buf = io.BytesIO()
    if opts.image_format == "webp":
        image.save(buf, format="WEBP", quality=opts.quality, method=4)
    else:
        image.save(buf, format="JPEG", quality=opts.quality)
    return buf.getvalue()


def encode_mask(mask: np.ndarray, palette: Sequence[Sequence[int]], level: int) -> bytes:
    """(H, W) uint8 class ids -> palette PNG whose pixel values are the ids themselves."""
    return png_bytes(mask, level, palette=palette)


def encode_npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype="<f4"), allow_pickle=False)
    return buf.getvalue()


def encode_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def encode_sample(sample: SampleArrays, specs: Sequence[Any], opts: EncodeOptions) -> EncodedSample:
    from synthgen.dataset.manifest import manifest_row

    fields: dict[str, bytes] = {}
    for spec in specs:
        arrays = sample.arrays[spec.name]
        names = domain_fields(spec, opts.image_format)
        if spec.kind == "image":
            fields[names[0]] = encode_image(arrays["image"], opts)
        elif spec.kind == "mask":
            fields[names[0]] = encode_mask(arrays["mask"], spec.palette, opts.png_level)
        else:
            # codecs.decode drew the map from these very (rounded) points: .npy and .png agree.
            fields[points_field(names)] = encode_npy(arrays["points"])
            fields[picture_field(names)] = png_bytes(arrays["map"], opts.png_level, filtered=False)
    key = sample_key(sample.index)
    fields[META_FIELD] = encode_json({"key": key, "index": sample.index, **sample.meta})
    row = manifest_row(sample, fields, specs, opts.image_format)
    return EncodedSample(key, sample.index, fields, row)


class EncodePool:
    """Encodes samples on `workers` threads; workers=0 encodes inline (for debugging)."""

    def __init__(self, specs: Sequence[Any], opts: EncodeOptions, workers: int):
        self.specs = list(specs)
        self.opts = opts
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="encode") if workers > 0 else None

    def submit(self, sample: SampleArrays) -> Future:
        if self._executor is not None:
            return self._executor.submit(encode_sample, sample, self.specs, self.opts)
        done: Future = Future()
        try:
            done.set_result(encode_sample(sample, self.specs, self.opts))
        except BaseException as exc:  # surfaced by the writer like a worker's error
            done.set_exception(exc)
        return done

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "EncodePool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
