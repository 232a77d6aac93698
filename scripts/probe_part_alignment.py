"""How far off are a seg anchor's training pairs, and how much of that is a small shift?

A seg anchor learns from pairs (G's features at E(m), m). This script encodes `validation`
masks with the anchor, and scores the reference segmenter's parsing of G's photo (the
judge) against each mask as it is and after part alignment (synthgen/anchors/alignment.py)
within each radius: aligned to the judge itself, with each part's shift free
(`to_judge_free`) or centred on the batch's median shift as fit does (`to_judge`), which
says how much of the disagreement a shift explains (an oracle, for diagnosis only), and
aligned to the anchor's own regressor output (`to_regressor`: the targets `fit
--align-radius` trains on). Masks, renders and judge
are read for evaluation only; nothing is saved.

    python scripts/probe_part_alignment.py --n 64 --radii 0,1,2,3
"""
import argparse
import json

import torch
import torch.nn.functional as F
from synthgen.anchors.alignment import align_target, movable_classes
from synthgen.anchors.anchor import load_anchor
from synthgen.anchors.codecs import to_input
from synthgen.evaluation.segmenter import load_segmenter, predict
from synthgen.generators import load_generator
from synthgen.metrics import ConfusionMatrix
from synthgen.pixels import to_uint8_images
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import split_z

PARTS = ("skin", "hair", "l_eye", "r_eye", "l_brow", "r_brow", "nose", "u_lip", "l_lip", "l_ear")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="domains/generator.safetensors")
    ap.add_argument("--judge", default="domains/segmenter.safetensors")
    ap.add_argument("--anchor", default="domains/seg.safetensors")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--radii", default="0,1,2,3")
    ap.add_argument("--bs", type=int, default=16, help="masks per batch (the alignment centres shifts over a batch)")
    args = ap.parse_args()
    G = load_generator(args.generator).freeze()
    judge = load_segmenter(args.judge)
    A = load_anchor(args.anchor, generator=G).eval()
    names, k = A.spec.class_names, A.spec.num_classes
    radii = [int(r) for r in args.radii.split(",")]
    conf = {(how, r): ConfusionMatrix(k, names) for how in ("to_judge_free", "to_judge", "to_regressor") for r in radii}
    masks = []
    with torch.no_grad():
        for lo in range(0, args.n, args.bs):
            idx = list(range(lo, min(lo + args.bs, args.n)))
            masks.append(torch.from_numpy(render_batch(split_z("validation", idx), A.size, domains=("seg",))["seg"]).long())
        counts = torch.bincount(torch.cat(masks).reshape(-1), minlength=k)
        movable = movable_classes(counts)
        for m in masks:
            syn = G.synthesize(A.to_latents(A.encoder(to_input(A.spec, m, A.size)), G), taps=(A.tap,))
            j = torch.from_numpy(predict(judge, to_uint8_images(syn.rgb))).long()
            judge_lp = torch.log(0.9 * F.one_hot(j, k).permute(0, 3, 1, 2).float() + 0.1 / k)
            own_lp = A.regress(syn).float().log_softmax(1)
            for r in radii:
                conf["to_judge_free", r].update(j.numpy(), align_target(m, judge_lp, movable, r, centered=False).numpy())
                conf["to_judge", r].update(j.numpy(), align_target(m, judge_lp, movable, r).numpy())
                conf["to_regressor", r].update(j.numpy(), align_target(m, own_lp, movable, r).numpy())
    out = {}
    for (how, r), c in conf.items():
        rep = c.report()
        out[f"{how} r={r}"] = {"miou": round(rep["miou"], 3),
                               **{p: round(rep["iou"][p] or 0.0, 2) for p in PARTS if p in rep["iou"]}}
    print(json.dumps({"args": vars(args), "judge_vs_mask": out}, indent=1))


if __name__ == "__main__":
    main()
