"""How much of the ToyFaces mask can a 1x1 head read from the generator's features at all?

A supervised probe: a regressor of the anchoring kind (1x1 convs) is trained WITH paired
labels, G(z) features -> render_seg(z) on the `segmenter` split, and scored on the held-out
`test` split. No anchor can beat this number by much on the same features (an anchor
never sees a pairing), so it separates "the anchoring is weak" from "the generator's
features do not carry the parts". A diagnostic, not a model: nothing is saved.

    python scripts/probe_feature_decodability.py --generator domains/generator.safetensors --layers last
    python scripts/probe_feature_decodability.py --layers pyramid   # what --feature-tap pyramid reads
    python scripts/probe_feature_decodability.py --layers 7,8 --steps 400
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from synthgen.anchors.regressor import Regressor, RegressorConfig
from synthgen.celebamask import CLASS_NAMES
from synthgen.generators import load_generator
from synthgen.generators.stylegan2.frozen import pyramid_layers
from synthgen.metrics import ConfusionMatrix
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import split_z


def features(G, z, layers, size):
    """(B, C, size, size): the chosen styled-conv outputs of G at z, upsampled and stacked."""
    with torch.no_grad():
        latents = G.map(torch.from_numpy(z))
        _, taps = G.generator.synthesis(latents, G.generator.noise_list("const", len(z)), layers)
    return torch.cat([F.interpolate(taps[k], size=size, mode="bilinear", align_corners=False) for k in layers], 1)


def masks(z, size):
    return torch.from_numpy(render_batch(z, size, domains=("seg",))["seg"]).long()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="domains/generator.safetensors")
    ap.add_argument("--layers", default="last", help="'last', 'last2', 'pyramid' or comma-separated styled-conv indices")
    ap.add_argument("--steps", type=int, default=400, help="probe training steps (batch 16)")
    ap.add_argument("--n-test", type=int, default=300, help="held-out test pairs")
    ap.add_argument("--no-batch-norm", action="store_true", help="probe without the regressor's BatchNorm")
    args = ap.parse_args()
    torch.manual_seed(0)
    G = load_generator(args.generator).freeze()
    last = G.cfg.num_layers - 1
    named = {"last": [last], "last2": [last - 1, last], "pyramid": pyramid_layers(G.cfg)}
    layers = named.get(args.layers) or [int(v) for v in args.layers.split(",")]
    size = G.resolution
    probe = None
    for step in range(args.steps):
        z = split_z("segmenter", list(range(16 * step, 16 * step + 16)))
        x = features(G, z, layers, size)
        if probe is None:
            probe = Regressor(RegressorConfig(in_channels=x.shape[1], out_channels=len(CLASS_NAMES),
                                              batch_norm=not args.no_batch_norm))
            opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
        loss = F.cross_entropy(probe(x), masks(z, size))
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe.eval()
    confusion = ConfusionMatrix(len(CLASS_NAMES), CLASS_NAMES)
    for lo in range(0, args.n_test, 50):
        z = split_z("test", list(range(lo, min(lo + 50, args.n_test))))
        with torch.no_grad():
            pred = probe(features(G, z, layers, size)).argmax(1).numpy()
        confusion.update(pred, masks(z, size).numpy())
    report = confusion.report()
    print(json.dumps({"layers": layers, "channels": x.shape[1], "steps": args.steps, "final_train_loss": round(loss.item(), 4),
                      "test_miou": round(report["miou"], 4), "test_pixel_accuracy": round(report["pixel_accuracy"], 4)}))


if __name__ == "__main__":
    main()
