"""`synthgen translate`: E_source -> G (frozen) -> R_target for user files (paper sec. 3.3).

Any encoder pairs with any regressor because every anchor is tied to the same generator.
With `multimodal=K`, the fine w+ entries (the ones the encoder reads from its finest
pyramid level: colour and texture) are replaced by those of K random latents from the
generator's mapping, giving K renderings of the same layout (paper Fig. 16).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from synthgen.anchors.anchor import load_anchor
from synthgen.anchors.codecs import extensions, read_file, to_input, write_decoded
from synthgen.anchors.encoder import style_split
from synthgen.anchors.pipeline import Head, anchor_file, run_heads
from synthgen.anchors.spec import DomainSpec, DomainSpecError, load_domain_spec
from synthgen.devices import resolve_device
from synthgen.errors import UserError
from synthgen.generators.base import FrozenGenerator


class TranslateError(ValueError, UserError):
    """Translation inputs that cannot be used; the message names the problem and the fix."""


def find_anchor(domain: str, anchors_dir: str | Path | None, explicit: Mapping[str, str | Path]) -> Path:
    if domain in explicit:
        return Path(explicit[domain])
    if anchors_dir is None:
        raise TranslateError(f"no anchor for domain {domain!r}: pass --anchors DIR or --anchor {domain}=PATH")
    found = anchor_file(anchors_dir, domain)
    if found is None:
        path = Path(anchors_dir) / f"{domain}.safetensors"
        have = sorted(p.stem for p in Path(anchors_dir).glob("*.safetensors")) if Path(anchors_dir).is_dir() else []
        raise TranslateError(f"no anchor {path} (anchors there: {', '.join(have) or 'none'}); "
                             f"fit one with `synthgen fit --domain {domain} --out {path}`")
    return found


def expand_inputs(spec: DomainSpec, inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders contribute their domain files (recursively, sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in extensions(spec))
        elif item.is_file():
            files.append(item)
        else:
            raise TranslateError(f"input {item} does not exist: check the path")
    if not files:
        raise TranslateError(f"no {spec.name} files among the inputs")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise TranslateError(f"inputs {stems[f.stem]} and {f} would both be written as {f.stem}.png; rename one")
        stems[f.stem] = f
    return files


def mix_fine_styles(latents: torch.Tensor, styles: torch.Tensor, fine_start: int) -> torch.Tensor:
    """(B, W, D) x (K, W, D) -> (B*K, W, D): row b*K + k has b's coarse/middle and k's fine entries."""
    b, k = latents.shape[0], styles.shape[0]
    mixed = latents.unsqueeze(1).repeat(1, k, 1, 1)  # (B, K, W, D)
    mixed[:, :, fine_start:] = styles[None, :, fine_start:]
    return mixed.reshape(b * k, *latents.shape[1:])


def _target_head(domain: str, anchors_dir, explicit, generator, fingerprint, dev) -> Head:
    """The target's head: its anchor's; a generator-photo domain (rgb) needs none: G draws it,
    at G's own resolution (translate never resizes a photo drawn without an anchor file)."""
    try:
        path = find_anchor(domain, anchors_dir, explicit)
    except TranslateError:
        try:
            spec = load_domain_spec(domain)
        except DomainSpecError:
            spec = None
        if spec is not None and spec.from_generator:
            return Head(spec, None)
        raise
    return Head.of_anchor(load_anchor(path, generator, fingerprint).to(dev).eval())


@torch.no_grad()
def translate(
    source: str, targets: Sequence[str], generator: str | Path | FrozenGenerator, inputs: Sequence[str | Path],
    out: str | Path, anchors: str | Path | None = None, anchor_paths: Mapping[str, str | Path] | None = None,
    multimodal: int = 0, seed: int = 0, batch_size: int = 8, device: str = "auto",
    points_frame: int | None = None,
) -> list[Path]:
    """Translate `inputs` of domain `source` into each target domain; returns the files written.

    Outputs: out/<target>/<input stem>.png (keypoints also .npy); with multimodal=K,
    out/<target>/<stem>_style<k>.png for k < K.
    """
    targets = list(dict.fromkeys(targets))  # a target named twice is written once
    if not targets:
        raise TranslateError("name at least one target domain to translate into, e.g. targets=['rgb']")
    explicit = dict(anchor_paths or {})
    dev = resolve_device(device)
    from synthgen.generators import frozen_generator

    generator = frozen_generator(generator, dev)
    fingerprint = generator.fingerprint
    src = load_anchor(find_anchor(source, anchors, explicit), generator, fingerprint).to(dev).eval()
    heads = [_target_head(t, anchors, explicit, generator, fingerprint, dev) for t in targets]
    if multimodal < 0:
        raise TranslateError("multimodal must be >= 0")
    styles = None
    if multimodal:
        if generator.latent_kind != "w+":
            raise TranslateError("multimodal translation mixes w+ styles; this generator takes z (no style layers)")
        styles = generator.sample_latents(list(range(multimodal)), seed)  # (K, W, D), same K styles for every input
    files = expand_inputs(src.spec, inputs)
    out = Path(out)
    written: list[Path] = []
    for lo in range(0, len(files), batch_size):
        chunk = files[lo: lo + batch_size]
        arrays = []
        for f in chunk:
            try:
                arrays.append(read_file(src.spec, f, src.size, points_frame))
            except ValueError as exc:
                raise TranslateError(str(exc)) from None
        x = to_input(src.spec, torch.from_numpy(np.stack(arrays)).to(dev), src.size)
        latents = src.encode(x, generator)  # (B, W, D)
        names = [f.stem for f in chunk]
        if styles is not None:
            latents = mix_fine_styles(latents, styles, style_split(generator.num_ws)[1])
            names = [f"{s}_style{k:02d}" for s in names for k in range(multimodal)]
        for target, result in zip(targets, run_heads(generator, latents, heads)):
            for k, name in enumerate(names):
                written += write_decoded(result.head.spec, result.decoded, k, out / target, name)
    return written


