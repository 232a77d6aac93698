"""Can a better latent make G's photo follow a seg file? Per-file latent refinement, measured.

A seg anchor is trained on (G(E(m)), m) pairs, so how well G's photo at the encoder's
latent shows the mask m bounds what its regressor can learn. This script inverts
`validation` masks with the anchor's encoder, then refines each latent by Adam on the
anchor's own reconstruction loss (R frozen, with the fit's feature noise), and reports at
each checkpoint step the judge's parsing of G's photo against the input mask (the pairs'
alignment), the regressor's output against the mask (reconstruction) and against the judge.
If refined latents aligned far better, a fit could train its regressor on them. A
diagnostic: nothing is saved; masks and judge are used for evaluation only.

    python scripts/probe_latent_refinement.py --n 32 --steps 0,10,30 --space z
    python scripts/probe_latent_refinement.py --n 32 --steps 0,30,100 --space wplus --lr 0.02
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from synthgen.anchors.anchor import load_anchor, project_to_shell
from synthgen.anchors.codecs import decode, to_input
from synthgen.anchors.fit import with_feature_noise
from synthgen.evaluation.segmenter import load_segmenter, predict
from synthgen.generators import load_generator
from synthgen.metrics import ConfusionMatrix
from synthgen.pixels import to_uint8_images
from synthgen.toyfaces import render_batch
from synthgen.toyfaces.splits import split_z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="domains/generator.safetensors")
    ap.add_argument("--judge", default="domains/segmenter.safetensors")
    ap.add_argument("--anchor", default="domains/seg.safetensors")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", default="0,10,30", help="refinement steps at which to score (0: the encoder's latents)")
    ap.add_argument("--lr", type=float, default=0.03, help="Adam on the latent")
    ap.add_argument("--noise", type=float, default=2.0, help="feature noise (channel stds) during refinement, as fit's --feature-noise")
    ap.add_argument("--space", default="z", choices=("z", "w", "wplus"),
                    help="refine the encoder's z (kept on the shell), one w for every layer, or each w+ entry")
    ap.add_argument("--bs", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = load_generator(args.generator).freeze()
    judge = load_segmenter(args.judge)
    A = load_anchor(args.anchor, generator=G).eval()
    for p in A.parameters():
        p.requires_grad_(False)
    if args.space == "z" and not A.through_mapping:
        ap.error(f"{args.anchor} encodes to w+, not z: use --space w or wplus")
    names = A.spec.class_names
    checkpoints = [int(s) for s in args.steps.split(",")]
    conf = {k: {"judge_vs_mask": ConfusionMatrix(len(names), names), "R_vs_mask": ConfusionMatrix(len(names), names),
                "R_vs_judge": ConfusionMatrix(len(names), names)} for k in checkpoints}
    t0 = time.time()
    for lo in range(0, args.n, args.bs):
        idx = list(range(lo, min(lo + args.bs, args.n)))
        m = torch.from_numpy(render_batch(split_z("validation", idx), A.size, domains=("seg",))["seg"]).long()  # the files
        x = to_input(A.spec, m, A.size)
        with torch.no_grad():
            codes = A.encoder(x)
            w0 = A.to_latents(codes, G)
            z0 = project_to_shell(codes[:, 0]) if A.through_mapping else None
        if args.space == "z":
            param = z0.clone().requires_grad_(True)
            lat = lambda: G.map(project_to_shell(param))
        elif args.space == "w":
            param = w0[:, :1].clone().requires_grad_(True)
            lat = lambda: param.expand(-1, w0.shape[1], -1)
        else:
            param = w0.clone().requires_grad_(True)
            lat = lambda: param
        opt = torch.optim.Adam([param], lr=args.lr)
        for s in range(max(checkpoints) + 1):
            if s in checkpoints:
                with torch.no_grad():
                    syn = G.synthesize(lat(), taps=(A.tap,))
                    photos = to_uint8_images(syn.rgb)
                    j = predict(judge, photos)
                    r = decode(A.spec, A.regress(syn))["mask"]
                    c = conf[s]
                    c["judge_vs_mask"].update(j, m.numpy())
                    c["R_vs_mask"].update(r, m.numpy())
                    c["R_vs_judge"].update(r, j)
            if s == max(checkpoints):
                break
            syn = G.synthesize(lat(), taps=(A.tap,))  # gradients reach the latent through the frozen G
            if args.noise > 0:
                syn = with_feature_noise(syn, args.noise, 1000 * lo + s, A.tap)
            loss = F.cross_entropy(A.regress(syn), m)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"masks {lo}-{idx[-1]} done, {time.time() - t0:.0f} s", flush=True)
    out = {}
    for s in checkpoints:
        out[s] = {k: round(v.report()["miou"], 4) for k, v in conf[s].items()}
        rep = conf[s]["judge_vs_mask"].report()["iou"]
        out[s]["judge_vs_mask_parts"] = {k: (None if rep[k] is None else round(rep[k], 2)) for k in ("skin", "hair", "l_eye", "l_brow", "nose", "u_lip", "l_lip") if k in rep}
    print(json.dumps({"args": vars(args), "result": out}, indent=1))


if __name__ == "__main__":
    main()
