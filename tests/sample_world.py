"""A tiny generator with untrained anchors for seg, sketch and landmark, saved to a folder.

Untrained regressors give meaningless labels but exercise every code path of the factory
(mask logits, heatmaps, BatchNorm in eval mode) in milliseconds.
"""
from __future__ import annotations

from pathlib import Path

ANCHORED = ("seg", "sketch", "landmark")
# The landmark anchor reads the multi-resolution tap, so every user of this world runs
# anchors of different taps through one generator pass.
TAPS = {"landmark": "pyramid"}


def make_world(folder: Path, size: int = 32) -> tuple[Path, Path]:
    """-> (generator checkpoint, anchors folder)."""
    from synthgen.anchors.anchor import build_anchor, save_anchor
    from synthgen.anchors.encoder import EncoderConfig
    from synthgen.anchors.spec import load_domain_spec
    from synthgen.generators import save_generator
    from synthgen.generators.presets import build_generator, seeded_torch

    folder.mkdir(parents=True, exist_ok=True)
    gen = build_generator("tiny", seed=0)
    gen_path = save_generator(gen, folder / "generator.safetensors")
    anchors = folder / "anchors"
    fingerprint = gen.fingerprint
    for i, name in enumerate(ANCHORED):
        spec = load_domain_spec(name)
        enc = EncoderConfig(in_channels=spec.in_channels, num_ws=gen.num_ws, latent_dim=gen.latent_dim,
                            small_widths=(8, 8, 8))
        with seeded_torch(100 + i):
            anchor = build_anchor(spec, gen, size, enc, regressor_widths=(16, 8), fingerprint=fingerprint,
                                  tap=TAPS.get(name, "default"))
            for m in anchor.regressor.modules():  # non-trivial running stats, so eval mode matters
                if hasattr(m, "running_mean") and m.running_mean is not None:
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        save_anchor(anchor, anchors / f"{name}.safetensors")
    return Path(gen_path), anchors


def sample_args(generator: Path, anchors: Path, out: Path, *extra: str,
                domains: str = "rgb,seg,sketch,landmark", n: int = 30) -> list[str]:
    """`synthgen sample` arguments for the tiny world: shards of 10, CPU, no progress bar."""
    return [
        "sample", "--generator", str(generator), "--anchors", str(anchors), "--out", str(out),
        "--domains", domains, "--num-samples", str(n), "--shard-size", "10", "--batch-size", "4",
        "--workers", "2", "--device", "cpu", "--no-progress", *extra,
    ]


def shard_hashes(out: Path) -> dict[str, str]:
    import json

    return {p.stem: json.loads(p.read_text())["sha256"] for p in sorted((out / "stats").glob("*.json"))}
