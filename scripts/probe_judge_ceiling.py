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

`--targets files` trains a fresh regressor the way an anchor learns, from the seg files
(renders of the `anchor_seg` split, the domain's own files) at the latents the `--like`
anchor's frozen encoder gives them, with fit's `--class-balance`, `--feature-noise` and
class-frequency calibration (`--calibrate N` sampled latents). Only the regressor trains,
so runs that differ in `--tap` or noise say what the regressor reads from the same
(misaligned) pairs, without the encoder moving:

    python scripts/probe_judge_ceiling.py --targets files --class-balance 0.5 --calibrate 256 --steps 1500
    python scripts/probe_judge_ceiling.py --targets files --class-balance 0.5 --calibrate 256 --tap default --steps 1500

`--photo-snap`, `--align-radius` and `--align-start` move the targets' small parts before the
loss as fit moves its files' (onto G's photo, then onto the probe's own output). With
`--targets render` and fit's recipe settings that is what the recipe could teach through an
encoder that inverted every file perfectly; with `--targets files`, what it teaches a fresh
regressor through the --like anchor's encoder:

    python scripts/probe_judge_ceiling.py --targets render --class-balance 0.5 --feature-noise 2 \
        --photo-snap 1 --align-radius 2 --align-start 500 --calibrate 256 --steps 3000 --eval-every 1000
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from synthgen.anchors.alignment import align_target, movable_classes
from synthgen.anchors.anchor import Anchor, load_anchor
from synthgen.anchors.calibration import calibrate_class_frequencies, mask_class_stats
from synthgen.anchors.codecs import to_input
from synthgen.anchors.fit import CALIBRATION_SEED_OFFSET, with_feature_noise
from synthgen.anchors.losses import class_balance_weights
from synthgen.anchors.photo_snapping import snap_target
from synthgen.anchors.regressor import Regressor, RegressorConfig
from synthgen.evaluation.segmenter import load_segmenter, predict
from synthgen.generators import load_generator
from synthgen.generators.base import photo_at
from synthgen.metrics import ConfusionMatrix
from synthgen.pixels import to_uint8_images
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import split_z


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
    ap.add_argument("--targets", choices=("judge", "render", "files"), default="judge",
                    help="train on the judge's masks of G's photos, on render_seg(z) of the same latents, "
                         "or on the seg files at the --like anchor's encoder latents")
    ap.add_argument("--tap", default=None, help="generator tap the probe reads (default: the --like anchor's)")
    ap.add_argument("--class-balance", type=float, default=0.0, help="as fit's: cross-entropy weighted by freq^-P of the targets' classes")
    ap.add_argument("--feature-noise", type=float, default=0.0, help="as fit's: noise in channel stds on the features read in training")
    ap.add_argument("--photo-snap", type=int, default=0, help="as fit's: snap the targets' enclosed small parts up to this many px onto G's photo (render, files)")
    ap.add_argument("--align-radius", type=int, default=0, help="as fit's: move the targets' small parts up to this many px onto the probe's output (render, files)")
    ap.add_argument("--align-start", type=int, default=0, help="as fit's: the first step part alignment runs at")
    ap.add_argument("--calibrate", type=int, default=0, help="fit's class-frequency calibration on this many sampled latents (0: none)")
    ap.add_argument("--n-files", type=int, default=5000, help="--targets files: the first N files of the anchor_seg split, cycled")
    ap.add_argument("--eval-every", type=int, default=500, help="also score at these steps, to see convergence")
    args = ap.parse_args()
    moves_parts = bool(args.photo_snap or args.align_radius)
    if moves_parts and args.targets == "judge":  # the judge's masks are read off G's photo already
        ap.error("--photo-snap and --align-radius process the render or files targets; drop them with --targets judge")
    torch.manual_seed(0)
    G = load_generator(args.generator).freeze()
    judge = load_segmenter(args.judge)
    like = load_anchor(args.like, generator=G)
    cfg = RegressorConfig.from_dict(like.regressor.cfg.to_dict())
    cfg.batch_norm = cfg.batch_norm or args.batch_norm
    tap = args.tap or like.tap
    cfg.in_channels = G.tap_channels(tap)
    probe = Regressor(cfg)
    # The probe as an anchor of the --like encoder: it reads `tap` and fit's calibration applies to it.
    as_anchor = Anchor(like.spec, like.encoder, probe, like.generator_fingerprint, like.size, tap=tap).eval()
    probe.train()
    opt = torch.optim.Adam(probe.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    taps = (tap,)
    k = len(like.spec.class_names)
    # The targets' class statistics, counted up front on the first batches, as fit counts its files'.
    counted = min(args.steps, 50) if args.class_balance > 0 or args.calibrate > 0 or moves_parts else 0
    first = [batch_targets(args, step, like.size, True)[1] for step in range(counted)]
    targets_seen = mask_class_stats((m for masks in first for m in masks), k)
    weight = class_balance_weights(targets_seen.pixels, args.class_balance) if args.class_balance > 0 else None
    movable = movable_classes(targets_seen.pixels) if moves_parts else None

    def read(latents, noise_seed=None):
        with torch.no_grad():
            syn = G.synthesize(latents, taps=taps)
            if noise_seed is not None and args.feature_noise > 0:
                syn = with_feature_noise(syn, args.feature_noise, noise_seed, tap)
            return as_anchor.tap_features(syn), to_uint8_images(syn.rgb), syn.rgb

    def score() -> dict:
        probe.eval()
        confusion = ConfusionMatrix(len(like.spec.class_names), like.spec.class_names)
        vs_render = ConfusionMatrix(len(like.spec.class_names), like.spec.class_names)
        for lo in range(0, args.n_eval, 50):
            z = split_z(args.eval_split, list(range(lo, min(lo + 50, args.n_eval))))
            feats, photos, _ = read(G.map(torch.from_numpy(z)))
            with torch.no_grad():
                labels = probe(feats).argmax(1).numpy()
            confusion.update(labels, predict(judge, photos))
            vs_render.update(labels, render_seg(z, like.size))
        probe.train()
        report = confusion.report()
        report["miou_vs_render"] = vs_render.report()["miou"]
        return report

    t0, history = time.time(), []
    for step in range(args.steps):
        z, target = batch_targets(args, step, like.size, args.targets != "judge")
        if args.targets == "files":  # the files at the frozen encoder's latents
            with torch.no_grad():
                latents = like.encode(to_input(like.spec, torch.from_numpy(target).long(), like.size), G)
        else:
            latents = G.map(torch.from_numpy(z))
        feats, photos, rgb = read(latents, noise_seed=step)
        if args.targets == "judge":
            target = predict(judge, photos)
        target = torch.from_numpy(target).long()
        logits = probe(feats)
        if args.photo_snap:  # fit's target processing: onto G's photo, then onto the probe's output
            target = snap_target(target, photo_at(rgb.float(), like.size), movable, args.photo_snap)
        if args.align_radius and step >= args.align_start:
            target = align_target(target, logits.detach().log_softmax(1), movable, args.align_radius)
        loss = F.cross_entropy(logits, target, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            report = score()
            history.append({"step": step + 1, "miou": round(report["miou"], 4),
                            "miou_vs_render": round(report["miou_vs_render"], 4)})
            print(json.dumps(history[-1]), flush=True)
    if args.calibrate > 0:
        probe.eval()
        calibrate_class_frequencies(as_anchor, G, targets_seen, args.calibrate, seed=CALIBRATION_SEED_OFFSET)  # fit's, at --seed 0
    report = score()
    print(json.dumps({"targets": args.targets, "tap": tap, "class_balance": args.class_balance,
                      "feature_noise": args.feature_noise, "photo_snap": args.photo_snap, "align_radius": args.align_radius, "align_start": args.align_start, "calibrate": args.calibrate, "widths": list(cfg.widths), "batch_norm": cfg.batch_norm, "steps": args.steps,
                      "eval_split": args.eval_split, "n_eval": args.n_eval, "history": history,
                      "miou": round(report["miou"], 4), "pixel_accuracy": round(report["pixel_accuracy"], 4),
                      "miou_vs_render": round(report["miou_vs_render"], 4),
                      "iou": {k: None if v is None else round(v, 3) for k, v in report["iou"].items()},
                      "seconds": round(time.time() - t0)}))


def batch_targets(args, step: int, size: int, masks: bool):
    """(z, seg masks or None) of training step `step`: the `segmenter` split's latents and
    their renders (judge and render targets; judge targets count classes on the renders), or
    the seg files (renders of `anchor_seg`, cycled over n_files)."""
    lo = args.batch_size * step
    if args.targets == "files":
        z = split_z("anchor_seg", [(lo + i) % args.n_files for i in range(args.batch_size)])
    else:
        z = split_z("segmenter", list(range(lo, lo + args.batch_size)))
    return z, (render_seg(z, size) if masks else None)


def render_seg(z, size: int):
    """The renderer's seg masks of latents z at side `size` (the files, or render targets)."""
    return render_batch(z, size, domains=("seg",))["seg"]


if __name__ == "__main__":
    main()
