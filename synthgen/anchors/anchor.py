"""The anchor: one domain's encoder + regressor, bound to one generator, in one file.

File format: a safetensors file whose tensors are `encoder.*` and `regressor.*` (the rgb
domain has no regressor) and whose metadata key `synthgen_anchor` holds a JSON object:
format version, domain spec, encoder and regressor configs, working size, the generator
feature tap the regressor reads (absent in files older than the key: the default tap), generator
fingerprint, training steps, final losses and the synthgen version. Weights are stored
exactly as trained (no dtype change), so a save/load round trip is bit-exact.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from synthgen import __version__
from synthgen.anchors.encoder import Encoder, EncoderConfig
from synthgen.anchors.photo_refinement import METADATA_KEY as REFINEMENT_KEY
from synthgen.anchors.photo_refinement import PhotoRefinement, refine_logits
from synthgen.anchors.regressor import Regressor, RegressorConfig, mean_of_heads
from synthgen.anchors.spec import DomainSpec, DomainSpecError
from synthgen.atomic_files import atomic_write
from synthgen.errors import UserError
from synthgen.generators.base import DEFAULT_TAP, FrozenGenerator, Synthesis

METADATA_KEY = "synthgen_anchor"
FORMAT_VERSION = 1


class AnchorFileError(ValueError, UserError):
    """A file that is not a readable synthgen anchor."""


class AnchorMismatchError(ValueError, UserError):
    """An anchor trained for a different generator than the one it is used with."""

    def __init__(self, path: object, anchor_fingerprint: str, generator_fingerprint: str):
        super().__init__(
            f"{path}: this anchor was fit for generator {anchor_fingerprint[:12]} but the generator "
            f"given is {generator_fingerprint[:12]}; anchors only work with their own generator — "
            "fit the domain again for this generator (synthgen fit) or pass the generator it was fit for"
        )


class Anchor(nn.Module):
    """E_d and R_d of one domain (R_d is None when the domain is the generator's own photo)."""

    def __init__(
        self, spec: DomainSpec, encoder: Encoder, regressor: Regressor | None,
        generator_fingerprint: str, size: int, metadata: dict | None = None, tap: str = DEFAULT_TAP,
    ):
        super().__init__()
        if (regressor is None) != spec.from_generator:
            raise ValueError(f"domain {spec.name!r}: a regressor is needed exactly when the domain is not the generator's photo")
        self.spec = spec
        self.encoder = encoder
        self.regressor = regressor
        self.generator_fingerprint = generator_fingerprint
        self.size = size  # working side: encoder input and regressor output
        self.tap = tap  # the generator feature tap R_d reads (FrozenGenerator.synthesize taps=)
        self.metadata = dict(metadata or {})

    @property
    def through_mapping(self) -> bool:
        """True when E predicts a StyleGAN z that G's frozen mapping turns into w+."""
        return self.encoder.cfg.latent_kind == "z"

    def encode(self, x: torch.Tensor, generator: FrozenGenerator | None = None) -> torch.Tensor:
        """Encoder input (B, in_channels, S, S) -> latents (B, num_ws, latent_dim) for G.synthesize."""
        return self.to_latents(self.encoder(x), generator)

    def to_latents(self, codes: torch.Tensor, generator: FrozenGenerator | None = None) -> torch.Tensor:
        """The encoder's output -> G's latents: identity, or G's mapping for z-space anchors.

        Anchoring through the mapping keeps every encoded latent in the region G was trained
        on (one w from mapping(z)), instead of anywhere in w+.
        """
        if not self.through_mapping:
            return codes
        if generator is None:
            raise ValueError(f"anchor {self.spec.name!r} predicts z: encode(x, generator) needs the generator for its mapping")
        return generator.map(project_to_shell(codes[:, 0]))

    def latent_center(self, generator: FrozenGenerator) -> torch.Tensor:
        """What L_latent pulls the encoder's output toward: 0 for z (its prior mean), else w_avg."""
        if self.through_mapping:
            return self.encoder.w_avg  # the z encoder's own centre: zeros (encoder.Encoder)
        return generator.w_avg

    def regress(self, synthesis: Synthesis) -> torch.Tensor:
        """One generator pass -> raw domain output (B, out_channels, S, S); for a mask anchor
        with a photo refinement (photo_refinement.py), logits refined on G's photo."""
        raw = mean_of_heads(self.regress_heads(synthesis))
        refinement = self.photo_refinement
        if refinement is not None:
            raw = refine_logits(raw, synthesis.photo(self.size), refinement)
        return raw

    @property
    def photo_refinement(self) -> PhotoRefinement | None:
        """The PhotoRefinement recorded in this anchor's metadata, or None."""
        record = self.metadata.get(REFINEMENT_KEY)
        return None if record is None else PhotoRefinement.from_dict(record)

    def regress_heads(self, synthesis: Synthesis, detach_finest: bool = False) -> list[torch.Tensor]:
        """Each regressor head's raw output (fit trains each on its own loss); `regress` is their mean."""
        if self.regressor is None:
            return [synthesis.photo(self.size)]
        return self.regressor.head_outputs(self.tap_features(synthesis), detach_finest)

    def tap_features(self, synthesis: Synthesis) -> torch.Tensor | list[torch.Tensor]:
        """The generator features this anchor's regressor reads from one pass."""
        if self.tap == DEFAULT_TAP:
            return synthesis.features
        if self.tap not in synthesis.taps:
            raise ValueError(f"anchor {self.spec.name!r} reads the generator tap {self.tap!r}: "
                             f"call generator.synthesize(latents, taps=anchor_taps(anchors))")
        return synthesis.taps[self.tap]

    def describe(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "domain": self.spec.to_dict(),
            "encoder": self.encoder.cfg.to_dict(),
            "regressor": None if self.regressor is None else self.regressor.cfg.to_dict(),
            "size": self.size,
            "feature_tap": self.tap,
            "generator_fingerprint": self.generator_fingerprint,
            "synthgen_version": __version__,
            **{k: v for k, v in self.metadata.items() if k not in ("domain", "encoder", "regressor")},
        }


def anchor_taps(anchors) -> tuple[str, ...]:
    """The generator taps a set of anchors reads: pass them to one synthesize(taps=...) call."""
    return tuple(dict.fromkeys(a.tap for a in anchors if isinstance(a, Anchor) and a.regressor is not None))


def project_to_shell(z: torch.Tensor) -> torch.Tensor:
    """(B, d) -> the same directions at norm sqrt(d), where a standard-normal z concentrates.

    An encoder free to shrink z parks every input near the average face; on the shell each
    direction is a typical z, i.e. a distinct face G was trained on (StyleGAN's own PixelNorm
    makes the same projection in front of its mapping).
    """
    return z * (z.shape[-1] ** 0.5) / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def build_anchor(spec: DomainSpec, generator: FrozenGenerator, size: int, encoder_cfg: EncoderConfig,
                 regressor_widths: tuple[int, ...] = RegressorConfig.widths, fingerprint: str | None = None,
                 regressor_batch_norm: bool = True, tap: str = DEFAULT_TAP, finest_head: bool = False) -> Anchor:
    """A fresh (untrained) anchor of `spec` for `generator`, working at side `size`, reading `tap`
    (with `finest_head`, a second regressor head reads the tap's finest map: regressor.py)."""
    encoder = Encoder(encoder_cfg, size, generator.w_avg.detach().cpu())
    regressor = None
    if not spec.from_generator:
        regressor = Regressor(RegressorConfig(
            in_channels=generator.tap_channels(tap), out_channels=spec.out_channels,
            widths=tuple(regressor_widths), out_size=size, batch_norm=regressor_batch_norm,
            finest_channels=generator.finest_tap_channels(tap) if finest_head else 0,
        ))
    return Anchor(spec, encoder, regressor, fingerprint or generator.fingerprint, size,
                  tap=tap if regressor is not None else DEFAULT_TAP)


def anchor_tensors(anchor: Anchor) -> dict[str, torch.Tensor]:
    """The anchor's weights and buffers, named as in its file (`encoder.*`, `regressor.*`), where they live."""
    state = {f"encoder.{k}": v for k, v in anchor.encoder.state_dict().items()}
    if anchor.regressor is not None:
        state.update({f"regressor.{k}": v for k, v in anchor.regressor.state_dict().items()})
    return state


def anchor_state(anchor: Anchor) -> dict[str, torch.Tensor]:
    """anchor_tensors on the CPU, contiguous: what a file or a checkpoint stores."""
    return {k: v.detach().cpu().contiguous() for k, v in anchor_tensors(anchor).items()}


def load_anchor_state(anchor: Anchor, state: dict[str, torch.Tensor]) -> None:
    """Put a state named as anchor_tensors names it into the anchor's encoder and regressor."""
    _load_parts(anchor.encoder, anchor.regressor, state)


def _load_parts(encoder: Encoder, regressor: Regressor | None, state: dict[str, torch.Tensor]) -> None:
    encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    if regressor is not None:
        regressor.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith("regressor.")})


STORE_DTYPES = {"float32": None, "float16": torch.float16}


def save_anchor(anchor: Anchor, path: str | Path, store_dtype: str = "float32") -> Path:
    """Write the anchor file atomically (a crash never leaves a half-written anchor).

    store_dtype "float16" halves the file (shipped anchors must stay under 20 MB); weights
    are cast back to float32 on load. Batch-norm statistics stay float32: their variances
    can be smaller than float16 resolves.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(anchor.describe(), sort_keys=True)
    state = anchor_state(anchor)
    cast = STORE_DTYPES[store_dtype]
    if cast is not None:
        state = {k: v.to(cast) if v.is_floating_point() and "running_" not in k else v for k, v in state.items()}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: meta})
    return path


def _looks_like_safetensors(path: Path) -> bool:
    """The first bytes of a safetensors file: a header length, then the header's opening brace."""
    with open(path, "rb") as f:
        return f.read(9)[8:9] == b"{"


def read_anchor_metadata(path: str | Path) -> dict:
    """The anchor's JSON metadata without loading its weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise AnchorFileError(f"anchor file {path} does not exist: check the path, or fit it with `synthgen fit`")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        from synthgen import safetensors_files

        problem = safetensors_files.damage(path) if _looks_like_safetensors(path) else None
        if problem is not None:  # an anchor cut short by a copy or download
            raise AnchorFileError(f"{path}: {safetensors_files.damaged(problem)}") from None
        raise AnchorFileError(f"{path}: not a safetensors file ({str(exc).splitlines()[0]}); pass an anchor written by synthgen fit") from None
    if raw is None:
        raise AnchorFileError(f"{path}: a safetensors file but not a synthgen anchor (no '{METADATA_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise AnchorFileError(f"{path}: anchor metadata is not valid JSON; fit the anchor again") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise AnchorFileError(f"{path}: anchor format {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    return meta


def load_anchor(path: str | Path, generator: FrozenGenerator | None = None, fingerprint: str | None = None) -> Anchor:
    """Read an anchor file; with `generator`, refuse it unless it was fit for that generator.

    fingerprint: the generator's fingerprint when already known (it hashes every weight).
    """
    path = Path(path)
    meta = read_anchor_metadata(path)
    try:
        spec = DomainSpec.from_dict(meta["domain"], source=f"{path} (domain)")
        enc_cfg = EncoderConfig.from_dict(meta["encoder"])
        reg_cfg = None if meta["regressor"] is None else RegressorConfig.from_dict(meta["regressor"])
        size = int(meta["size"])
        tap = str(meta.get("feature_tap", DEFAULT_TAP))
        gen_fp = str(meta["generator_fingerprint"])
    except (KeyError, TypeError, DomainSpecError) as exc:
        raise AnchorFileError(f"{path}: incomplete anchor metadata ({exc}); fit the anchor again") from None
    if generator is not None:
        fp = fingerprint or generator.fingerprint
        if fp != gen_fp:
            raise AnchorMismatchError(path, gen_fp, fp)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise AnchorFileError(f"{path}: unreadable anchor weights ({str(exc).splitlines()[0]})") from None
    enc_cfg.trunk_weights = None  # the trunk's initial weights are already inside the anchor
    encoder = Encoder(enc_cfg, size)
    regressor = None if reg_cfg is None else Regressor(reg_cfg)
    try:
        _load_parts(encoder, regressor, state)
    except RuntimeError as exc:
        raise AnchorFileError(f"{path}: weights do not match the anchor's configs ({str(exc).splitlines()[0]})") from None
    extra = {k: v for k, v in meta.items() if k not in ("format_version", "domain", "encoder", "regressor", "size",
                                                       "feature_tap", "generator_fingerprint", "synthgen_version")}
    if generator is not None and regressor is not None:
        try:  # an anchor for a tap this generator lacks: say so now, not mid-run
            generator.check_taps([tap])
        except ValueError as exc:
            raise AnchorFileError(f"{path}: {exc}") from None
    anchor = Anchor(spec, encoder, regressor, gen_fp, size, metadata=extra, tap=tap)
    anchor.metadata["synthgen_version"] = meta.get("synthgen_version")
    _check_photo_refinement(path, anchor)
    return anchor.eval()


def _check_photo_refinement(path: Path, anchor: Anchor) -> None:
    """A photo refinement record that cannot be applied is refused at load, not mid-run."""
    try:
        refinement = anchor.photo_refinement
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorFileError(f"{path}: unreadable {REFINEMENT_KEY} record ({exc}); fit the anchor again") from None
    if refinement is None:
        return
    k = anchor.spec.num_classes if anchor.spec.kind == "mask" else 0
    if not refinement.classes or not all(0 <= c < k for c in refinement.classes) or refinement.radius < 1:
        raise AnchorFileError(f"{path}: its {REFINEMENT_KEY} record names classes {list(refinement.classes)} or radius "
                              f"{refinement.radius}, but the {anchor.spec.kind} domain has {k} classes; fit the anchor again")
