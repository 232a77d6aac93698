"""The ceiling of any seg anchor of this generator, measured against the judge.

A supervised probe of the anchor's own shape (its regressor widths, batch norm and feature
tap) is trained WITH the reference segmenter's masks of G's own photos as targets, on the
latents of the ToyFaces `segmenter` split, and scored against the same judge on held-out
latents (`validation` by default). No anchor ever sees such pairs, so this is what a
perfect anchoring could reach with a head of that shape: report every anchor's
`synthgen eval consistency` mIoU as a fraction of it. A diagnostic: nothing is saved.

    python scripts/probe_judge_ceiling.py --steps 3000             # the shipped seg anchor's shape
    python scripts/probe_judge_ceiling.py --batch-norm --steps 3000
    python scripts/probe_judge_ceiling.py --targets render --steps 3000

`--targets render` trains the same probe on the renderer's own masks of the same latents
(render_seg(z)) instead: a seg anchor whose encoder inverted every file perfectly, to its
true latent, could learn exactly that. Scored against the judge it is what the domain's
files can teach a regressor of this generator at best, so the gap between it and the judge
probe is the generator's fidelity (G(z) drawing parts elsewhere than render(z)), not the
anchoring. Renderer masks are used here as an evaluation tool only.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from synthgen.anchors.anchor import load_anchor
from synthgen.anchors.codecs import decode
from synthgen.anchors.spec import DomainSpec
from synthgen.anchors.regressor import Regressor, RegressorConfig
from synthgen.evaluation.segmenter import load_segmenter, predict
from synthgen.generators import load_generator
from synthgen.metrics import ConfusionMatrix
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import split_z


PHOTO = DomainSpec(name="photo", kind="image", channels=3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="domains/generator.safetensors")
    ap.add_argument("--judge", default="domains/segmenter.safetensors")
    ap.add_argument("--like", default="domains/seg.safetensors", help="anchor whose regressor shape and tap the probe takes")
    ap.add_argument("--batch-norm", action="store_true", help="BatchNorm in the probe even if the anchor has none")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam, cosine-decayed to 1%% over the run")
    ap.add_argument("--eval-split", default="validation")
    ap.add_argument("--n-eval", type=int, default=500)
    ap.add_argument("--targets", choices=("judge", "render"), default="judge",
                    help="train on the judge's masks of G's photos, or on render_seg(z) of the same latents")
    ap.add_argument("--eval-every", type=int, default=500, help="also score at these steps, to see convergence")
    args = ap.parse_args()
    torch.manual_seed(0)
    G = load_generator(args.generator).freeze()
    judge = load_segmenter(args.judge)
    like = load_anchor(args.like, generator=G)
    cfg = RegressorConfig.from_dict(like.regressor.cfg.to_dict())
    cfg.batch_norm = cfg.batch_norm or args.batch_norm
    probe = Regressor(cfg)
    opt = torch.optim.Adam(probe.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    taps = (like.tap,)

    def read(z):
        with torch.no_grad():
            syn = G.synthesize(G.map(torch.from_numpy(z)), taps=taps)
            return (syn.taps[like.tap] if like.tap in syn.taps else syn.features), decode(PHOTO, syn.rgb)["image"]

    def score() -> dict:
        probe.eval()
        confusion = ConfusionMatrix(len(like.spec.class_names), like.spec.class_names)
        vs_render = ConfusionMatrix(len(like.spec.class_names), like.spec.class_names)
        for lo in range(0, args.n_eval, 50):
            z = split_z(args.eval_split, list(range(lo, min(lo + 50, args.n_eval))))
            feats, photos = read(z)
            with torch.no_grad():
                labels = probe(feats).argmax(1).numpy()
            confusion.update(labels, predict(judge, photos))
            vs_render.update(labels, render_seg(z))
        probe.train()
        report = confusion.report()
        report["miou_vs_render"] = vs_render.report()["miou"]
        return report

    def render_seg(z):
        return render_batch(z, G.resolution, domains=("seg",))["seg"]

    def targets(z, photos):
        return render_seg(z) if args.targets == "render" else predict(judge, photos)

    t0, history = time.time(), []
    for step in range(args.steps):
        z = split_z("segmenter", list(range(args.batch_size * step, args.batch_size * (step + 1))))
        feats, photos = read(z)
        target = torch.from_numpy(targets(z, photos)).long()
        loss = F.cross_entropy(probe(feats), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            report = score()
            history.append({"step": step + 1, "miou": round(report["miou"], 4),
                            "miou_vs_render": round(report["miou_vs_render"], 4)})
            print(json.dumps(history[-1]), flush=True)
    report = score()
    print(json.dumps({"targets": args.targets, "tap": like.tap, "widths": list(cfg.widths), "batch_norm": cfg.batch_norm, "steps": args.steps,
                      "eval_split": args.eval_split, "n_eval": args.n_eval, "history": history,
                      "miou": round(report["miou"], 4), "pixel_accuracy": round(report["pixel_accuracy"], 4),
                      "miou_vs_render": round(report["miou_vs_render"], 4),
                      "iou": {k: None if v is None else round(v, 3) for k, v in report["iou"].items()},
                      "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
