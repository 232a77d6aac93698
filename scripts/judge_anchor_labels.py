"""How well does a seg anchor label the generator's own samples? In memory, no dataset written.

For latents drawn as `synthgen sample` draws them (seed, indices 0..n-1), compares the
anchor's seg labels with the reference segmenter's prediction on the same photos (the
judge). Used to choose fit settings on sampled latents (pick a seed other than the one
reported), without reading any held-out split.

    python scripts/judge_anchor_labels.py --anchor domains/seg.safetensors --n 300 --seed 123
    python scripts/judge_anchor_labels.py --anchor old.safetensors --anchor new.safetensors --picture side_by_side.png
    python scripts/judge_anchor_labels.py --anchor domains/seg.safetensors --shifts 2   # is a part drawn off place?
    python scripts/judge_anchor_labels.py --anchor runs/fit-seg --agreement   # the judge-free score of fit --trials
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from synthgen.anchors.anchor import anchor_taps, load_anchor
from synthgen.anchors.codecs import decode
from synthgen.anchors.photo_refinement import large_class_refinement, photo_agreement
from synthgen.evaluation.segmenter import load_segmenter, predict
from synthgen.generators import load_generator
from synthgen.metrics import ConfusionMatrix
from synthgen.pixels import to_uint8_images
from synthgen.runs import RunFolder


def load_run(run_dir: str, like: str, G):
    """The latest checkpoint of a `synthgen fit` run folder, in the shape of anchor `like`."""
    anchor = load_anchor(like, generator=G)
    state = RunFolder(run_dir).read_checkpoint()["anchor"]
    anchor.load_state_dict(state)
    return anchor.eval()


def _refinement(anchor, like: str):
    """The large classes of the anchor's domain, from the file shares its calibration recorded
    (a run folder's checkpoint has none: those of `like`)."""
    record = anchor.metadata.get("class_frequency_calibration") or load_anchor(like).metadata["class_frequency_calibration"]
    shares = record["share_files"]
    return large_class_refinement(torch.tensor([shares[c] for c in anchor.spec.class_names]))


def _picture(path, photos, labels, judged, palette) -> None:
    import numpy as np
    from PIL import Image

    pal = np.asarray(palette, dtype=np.uint8)
    cols = [photos] + [pal[m] for m in labels] + [pal[judged]]
    grid = np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def best_shifts(labels: torch.Tensor, truth: torch.Tensor, names, radius: int) -> dict:
    """Per class present in `truth`: its IoU as labelled, and the whole-pixel shift (rows, columns;
    within +-radius) of the labels that would match the judge best. A part the anchor draws
    consistently off place shows as a large gain at a non-zero shift. The labels are rolled (a row
    leaving one edge enters at the other: background on a centred face)."""
    present = [c for c in range(len(names)) if bool((truth == c).any())]
    iou = {c: {} for c in present}
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = torch.roll(labels, (dy, dx), (1, 2))  # rolled once per shift, read for every class
            per_class = ConfusionMatrix(len(names)).update(shifted, truth).iou()
            for c in present:
                iou[c][(dy, dx)] = float(per_class[c])
    out = {}
    for c in present:
        best = max(iou[c], key=iou[c].get)
        out[names[c]] = {"iou": round(iou[c][(0, 0)], 3), "best_shift": list(best), "iou_at_best": round(iou[c][best], 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", required=True, action="append",
                    help="seg anchor file, or a fit run folder (its latest checkpoint; needs --like) (repeatable)")
    ap.add_argument("--like", default="domains/seg.safetensors", help="an anchor of the run folders' shape")
    ap.add_argument("--generator", default="domains/generator.safetensors")
    ap.add_argument("--judge", default="domains/segmenter.safetensors")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--per-class", action="store_true")
    ap.add_argument("--shifts", type=int, default=0, metavar="R",
                    help="also report, per class, the label shift within +-R px that best matches the judge (default 0: off)")
    ap.add_argument("--agreement", action="store_true",
                    help="also report how closely each anchor's large classes follow G's photo on the same latents "
                         "(photo_refinement.photo_agreement: the judge-free score `synthgen fit --trials` ranks seeds by)")
    ap.add_argument("--picture", default=None, help="PNG: rows of sampled photo | each anchor's label | judge, first 8 samples")
    args = ap.parse_args()
    G = load_generator(args.generator).freeze()
    judge = load_segmenter(args.judge)
    anchors = [load_run(p, args.like, G) if Path(p).is_dir() else load_anchor(p, generator=G) for p in args.anchor]
    confusions = [ConfusionMatrix(len(a.spec.class_names), a.spec.class_names) for a in anchors]
    kept_labels, kept_truth = [[] for _ in anchors], []  # whole masks, for --shifts
    with torch.no_grad():
        for lo in range(0, args.n, args.batch_size):
            idx = list(range(lo, min(lo + args.batch_size, args.n)))
            syn = G.synthesize(G.sample_latents(idx, args.seed), taps=anchor_taps(anchors))
            photos = to_uint8_images(syn.rgb)
            truth = predict(judge, photos)
            labelled = [decode(a.spec, a.regress(syn))["mask"] for a in anchors]  # one regressor pass per anchor
            if args.picture and lo == 0:
                _picture(args.picture, photos[:8], [labels[:8] for labels in labelled], truth[:8], anchors[0].spec.palette)
            if args.shifts:
                kept_truth.append(torch.as_tensor(truth))
            for labels, c, kept in zip(labelled, confusions, kept_labels):
                c.update(labels, truth)
                if args.shifts:
                    kept.append(torch.as_tensor(labels))
    for path, a, c, kept in zip(args.anchor, anchors, confusions, kept_labels):
        r = c.report()
        out = {"anchor": path, "miou": round(r["miou"], 4), "pixel_accuracy": round(r["pixel_accuracy"], 4)}
        if args.per_class:
            out["iou"] = {k: (None if v is None or v != v else round(v, 3)) for k, v in r["iou"].items()}
        if args.agreement:
            classes = photo_agreement(a, G, _refinement(a, args.like), args.n, args.seed, args.batch_size)
            out["agreement"] = {"worst": min(classes.values(), default=0.0), "classes": classes}
        if args.shifts:
            out["shifts"] = best_shifts(torch.cat(kept), torch.cat(kept_truth), a.spec.class_names, args.shifts)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
