"""One generator pass fanned out through every requested domain: latents -> G -> R_d -> decode.

`synthgen sample` (latents by index), `synthgen translate` and `synthgen eval translate`
(latents from a source encoder, E_source) all run their domains here:

- `anchor_file(folder, domain)`: the one rule that finds a domain's anchor in a folder;
- `Head`: one domain's output from the shared pass: its anchor's regressor, or for the
  generator's own photo (`rgb` without an anchor file) `Synthesis.photo` at the head's side;
- `run_heads(generator, latents, heads)`: the one `synthesize` call (with every tap the
  heads read) and each head's raw output and `codecs.decode` of it.

The caller owns the context (`torch.inference_mode`, autocast) and what follows decoding.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from synthgen.anchors.anchor import Anchor, anchor_taps
from synthgen.anchors.codecs import decode
from synthgen.anchors.spec import DomainSpec

# The names a domain's anchor file may have in an anchors folder, first match wins.
ANCHOR_FILE_NAMES = ("{domain}.safetensors", "{domain}.anchor.safetensors", "{domain}")


def anchor_file(folder: str | Path, domain: str) -> Path | None:
    """The anchor of `domain` in `folder`: the first of <domain>.safetensors,
    <domain>.anchor.safetensors and <domain> that is a file; None when there is none."""
    folder = Path(folder)
    for name in ANCHOR_FILE_NAMES:
        candidate = folder / name.format(domain=domain)
        if candidate.is_file():
            return candidate
    return None


@dataclass
class Head:
    """One requested domain: its spec and the anchor whose regressor reads the shared pass."""

    spec: DomainSpec
    anchor: Anchor | None  # None: the generator's own photo (Synthesis.rgb), no anchor file needed
    size: int | None = None  # output side: the anchor's; the photo's is resized to it (None: G's own)

    @classmethod
    def of_anchor(cls, anchor: Anchor) -> "Head":
        return cls(anchor.spec, anchor, anchor.size)

    def raw(self, synthesis) -> torch.Tensor:
        """The shared pass -> this domain's raw output (B, out_channels, S, S)."""
        if self.anchor is not None:
            return self.anchor.regress(synthesis)
        return synthesis.photo(self.size)


@dataclass
class HeadOutput:
    head: Head
    raw: torch.Tensor  # Head.raw
    decoded: dict  # codecs.decode(head.spec, raw)


def run_heads(generator, latents: torch.Tensor, heads: Sequence[Head]) -> list[HeadOutput]:
    """One generator pass over `latents` (B, num_ws, D), read by every head, in their order."""
    synthesis = generator.synthesize(latents, taps=anchor_taps([h.anchor for h in heads]))
    outputs = []
    for head in heads:
        raw = head.raw(synthesis)
        outputs.append(HeadOutput(head, raw, decode(head.spec, raw)))
    return outputs


__all__ = ["ANCHOR_FILE_NAMES", "Head", "HeadOutput", "anchor_file", "run_heads"]
