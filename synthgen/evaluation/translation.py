"""Is a translation faithful to its input? Scoring d1 -> d2 against paired ground truth.

A pairs folder holds one subfolder per domain with matching stems (what
`synthgen toyfaces render` writes: rgb/, seg/, sketch/, landmark/). Each source file is
translated (E_d1 -> G -> R_d2) and compared with the target file of the same stem:

- mask target: mIoU and pixel accuracy over the whole set (one confusion matrix);
- keypoints target: NME normalised by the outer-eye-corner distance (300-W), and the
  fraction of points within 0.08 of it;
- image target: PSNR and SSIM; optionally a Fréchet distance between the translated and
  the true set; for mask -> 3-channel photo with a reference segmenter, faithfulness =
  mIoU between the input mask and the segmenter's parsing of the generated photo.

Per-sample scores rank the set; the worst and best rows are drawn into a grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from synthgen import metrics
from synthgen.evaluation.errors import TranslationEvalError
from synthgen.evaluation.report import format_table

# compact source batch (codecs.read_file arrays, stacked) -> decoded target batch
# (codecs.decode's dict: "image" / "mask" / "points" + "map")
Translator = Callable[[np.ndarray], dict]

KEYPOINT_THRESHOLD = 0.08  # 300-W's AUC@0.08 cut-off, as a fraction of the inter-ocular distance


@dataclass
class PairedFiles:
    stems: list[str]
    sources: list[Path]
    targets: list[Path]


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        # the first listed suffix wins when a stem has several files (landmark .npy + .png)
        if p.suffix.lower() in suffixes and (
            p.stem not in found or suffixes.index(p.suffix.lower()) < suffixes.index(found[p.stem].suffix.lower())
        ):
            found[p.stem] = p
    return found


def find_paired_files(pairs: str | Path, source_spec, target_spec, n: int | None = None) -> PairedFiles:
    """Stems present in both pairs/<source name>/ and pairs/<target name>/, sorted, first n."""
    from synthgen.anchors import codecs

    pairs = Path(pairs)
    folders = {s.name: pairs / s.name for s in (source_spec, target_spec)}
    for name, folder in folders.items():
        if not folder.is_dir():
            raise TranslationEvalError(f"{pairs} has no {name}/ folder: the pairs folder needs one subfolder per domain")
    src = _by_stem(folders[source_spec.name], codecs.extensions(source_spec))
    dst = _by_stem(folders[target_spec.name], codecs.extensions(target_spec))
    stems = sorted(set(src) & set(dst))
    if not stems:
        raise TranslationEvalError(f"{pairs}: no stem is in both {source_spec.name}/ and {target_spec.name}/")
    stems = stems[:n] if n else stems
    return PairedFiles(stems, [src[s] for s in stems], [dst[s] for s in stems])


def read_compact(spec, paths: list[Path], size: int) -> np.ndarray:
    """Domain files -> one stacked compact batch at working size `size`."""
    from synthgen.anchors import codecs

    return np.stack([codecs.read_file(spec, p, size) for p in paths])


def output_size(spec, decoded: dict) -> int:
    key = {"image": "image", "mask": "mask", "keypoints": "map"}[spec.kind]
    return decoded[key].shape[1]


def evaluate_translation(
    translate: Translator,
    files: PairedFiles,
    source_spec,
    target_spec,
    *,
    size: int,
    batch_size: int = 16,
    segmenter=None,
    feature_extractor=None,
    grid_rows: int = 4,
    progress: bool = True,
) -> dict:
    """Translate every source, score it against its target; returns metrics, per-sample
    scores and a (H, W, 3) uint8 grid of the worst and best rows (source | output | truth)."""
    kind = target_spec.kind
    if kind == "keypoints" and target_spec.num_points != 68:
        raise TranslationEvalError(
            f"domain {target_spec.name} has {target_spec.num_points} points: the inter-ocular NME needs 68 dlib points"
        )
    faithful = (
        segmenter is not None and source_spec.kind == "mask" and kind == "image" and target_spec.channels == 3
    )
    confusion = metrics.ConfusionMatrix(target_spec.num_classes, target_spec.class_names) if kind == "mask" else None
    faith_cm = (
        metrics.ConfusionMatrix(source_spec.num_classes, source_spec.class_names) if faithful else None
    )
    scores, extra = [], {"psnr": [], "ssim": [], "nme": [], "within": [], "faithfulness": []}
    outputs, truths, keep = [], [], []
    n = len(files.stems)
    bar = tqdm(range(0, n, batch_size), desc=f"{source_spec.name} -> {target_spec.name}", disable=not progress)
    for start in bar:
        stop = min(start + batch_size, n)
        source = read_compact(source_spec, files.sources[start:stop], size)
        decoded = translate(source)
        out_size = output_size(target_spec, decoded)
        truth = read_compact(target_spec, files.targets[start:stop], out_size)
        if kind == "mask":
            pred = decoded["mask"]
            confusion.update(pred, truth)
            batch_scores = [metrics.mask_miou(p, t, target_spec.num_classes) for p, t in zip(pred, truth)]
        elif kind == "keypoints":
            try:
                errors = metrics.point_errors_inter_ocular(decoded["points"], truth)  # (B, 68)
            except ValueError as exc:  # the truth files' own points, e.g. coincident eye corners
                raise TranslationEvalError(f"{files.targets[start]} .. {files.targets[stop - 1]}: {exc}") from None
            batch_scores = list(errors.mean(1))
            extra["nme"] += batch_scores
            extra["within"] += list((errors < KEYPOINT_THRESHOLD).mean(1))
        else:
            pred = decoded["image"]  # (B, H, W, C) uint8
            true = truth.transpose(0, 2, 3, 1)
            batch_scores = list(metrics.psnr(pred, true))
            extra["psnr"] += batch_scores
            extra["ssim"] += list(metrics.ssim(pred, true))
            if faithful:
                from synthgen.evaluation.segmenter import predict

                parsed = predict(segmenter, pred)
                mask = source if source.shape[1:] == parsed.shape[1:] else read_compact(
                    source_spec, files.sources[start:stop], parsed.shape[1])
                faith_cm.update(parsed, mask)
                extra["faithfulness"] += [metrics.mask_miou(p, m, source_spec.num_classes) for p, m in zip(parsed, mask)]
            if feature_extractor is not None:
                outputs.append(pred)
                truths.append(true)
        scores += [float(s) for s in batch_scores]
        keep.append((source, decoded, truth))
    result = {
        "from": source_spec.name, "to": target_spec.name, "kind": kind, "n": n,
        "scores": dict(zip(files.stems, scores)),
        "score_name": {"mask": "miou", "keypoints": "nme_inter_ocular", "image": "psnr"}[kind],
    }
    if kind == "mask":
        result.update(confusion.report())
    elif kind == "keypoints":
        result.update(nme_inter_ocular=float(np.mean(extra["nme"])),
                      **{f"fraction_within_{KEYPOINT_THRESHOLD}": float(np.mean(extra["within"]))})
    else:
        finite = [p for p in extra["psnr"] if np.isfinite(p)]
        result.update(psnr=float(np.mean(finite)) if finite else float("inf"), ssim=float(np.mean(extra["ssim"])))
        if faithful:
            result["faithfulness_miou"] = faith_cm.miou()
            result["faithfulness_pixel_accuracy"] = faith_cm.pixel_accuracy()
        if feature_extractor is not None:
            from synthgen.evaluation.fid import frechet_distance_of_images

            result["frechet_distance"] = frechet_distance_of_images(
                np.concatenate(outputs), np.concatenate(truths), feature_extractor)
            result["feature_space"] = getattr(feature_extractor, "feature_space", "custom")
    result["grid"] = worst_best_grid(keep, scores, source_spec, target_spec, lower_is_better=kind == "keypoints",
                                     rows=grid_rows)
    result["grid_order"] = "rows: worst first, then best; columns: source | translation | truth"
    return result


def worst_best_grid(batches, scores, source_spec, target_spec, lower_is_better: bool, rows: int = 4) -> np.ndarray:
    """(H, W, 3) uint8: `rows` worst then `rows` best samples, each source | output | truth."""
    from synthgen.anchors import codecs

    order = np.argsort(scores)  # ascending
    if not lower_is_better:
        order = order[::-1]  # best first
    best, worst = list(order[:rows]), list(order[::-1][:rows])
    picked = worst + [i for i in best if i not in worst]
    offsets = np.cumsum([0] + [len(b[0]) for b in batches])
    cells = []
    for i in picked:
        b = int(np.searchsorted(offsets, i, side="right") - 1)
        k = i - offsets[b]
        source, decoded, truth = batches[b]
        side = output_size(target_spec, decoded)
        one = {key: (v[k : k + 1] if isinstance(v, np.ndarray) else v) for key, v in decoded.items()}
        cells.append(np.concatenate([
            codecs.to_rgb_preview(source_spec, codecs.compact_to_decoded(source_spec, source[k : k + 1]), side)[0],
            codecs.to_rgb_preview(target_spec, one, side)[0],
            codecs.to_rgb_preview(target_spec, codecs.compact_to_decoded(target_spec, truth[k : k + 1]), side)[0],
        ], axis=1))
    return np.concatenate(cells, axis=0)


class AnchorTranslator:
    """E_source -> G -> R_target on compact batches: `Anchor.encode`, then the shared pass
    of `synthgen translate` (anchors.pipeline.run_heads) with the target anchor's head."""

    def __init__(self, generator, source_anchor, target_anchor, size: int, device: str = "cpu"):
        self.generator, self.source, self.target = generator, source_anchor, target_anchor
        self.size, self.device = size, device

    @torch.no_grad()
    def __call__(self, compact: np.ndarray) -> dict:
        from synthgen.anchors import codecs
        from synthgen.anchors.pipeline import Head, run_heads

        x = codecs.to_input(self.source.spec, torch.from_numpy(compact), self.size).to(self.device)
        (result,) = run_heads(self.generator, self.source.encode(x, self.generator), [Head.of_anchor(self.target)])
        return result.decoded


def _anchor_to(anchor, device: str):
    for part in (anchor.encoder, anchor.regressor):
        if part is not None:
            part.to(device).eval()
    return anchor


def find_anchor_file(anchors: str | Path, name: str) -> Path:
    """The anchor of domain `name` in `anchors` (anchors.pipeline.anchor_file)."""
    from synthgen.anchors.pipeline import anchor_file

    found = anchor_file(anchors, name)
    if found is not None:
        return found
    raise TranslationEvalError(
        f"no anchor for domain {name!r} in {anchors} (looked for {name}.safetensors): fit one with `synthgen fit`"
    )


def run_translation_eval(
    *,
    source: str,
    target: str,
    pairs: str | Path,
    generator: str | Path,
    anchors: str | Path,
    n: int | None = 256,
    batch_size: int = 16,
    segmenter: str | Path | None = None,
    features: str | None = None,
    weights: str | Path | None = None,
    out: str | Path | None = None,
    grid_rows: int = 4,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Load generator + both anchors, translate the pairs, score; write JSON + grid to `out`."""
    from synthgen.anchors.anchor import load_anchor
    from synthgen.devices import resolve_device
    from synthgen.generators import frozen_generator

    device = str(resolve_device(device))

    gen = frozen_generator(generator, device)
    src_anchor = _anchor_to(load_anchor(find_anchor_file(anchors, source), generator=gen), device)
    dst_anchor = _anchor_to(load_anchor(find_anchor_file(anchors, target), generator=gen), device)
    src_spec, dst_spec = src_anchor.spec, dst_anchor.spec
    files = find_paired_files(pairs, src_spec, dst_spec, n)
    seg_model = extractor = None
    if segmenter:
        from synthgen.evaluation.segmenter import load_segmenter

        seg_model = load_segmenter(segmenter, device)
    if dst_spec.kind == "image" and dst_spec.channels == 3:
        from synthgen.evaluation import fid

        if features and weights:
            extractor = fid.backbone_extractor(features, weights)
        elif seg_model is not None:
            extractor = fid.segmenter_extractor(seg_model)
    size = getattr(src_anchor, "size", gen.resolution)  # the encoder's working side
    translator = AnchorTranslator(gen, src_anchor, dst_anchor, size=size, device=device)
    result = evaluate_translation(
        translator, files, src_spec, dst_spec, size=size, batch_size=batch_size,
        segmenter=seg_model, feature_extractor=extractor, grid_rows=grid_rows, progress=progress,
    )
    result.update(pairs=str(pairs), generator=str(generator), anchors=str(anchors))
    if out:
        save_translation_result(result, out)
    return result


def save_translation_result(result: dict, out: str | Path) -> dict[str, Path]:
    """<out>/translate_<from>_<to>.json and .png (the worst/best grid)."""
    from synthgen.evaluation.report import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"translate_{result['from']}_{result['to']}"
    grid_path = out / f"{stem}.png"
    Image.fromarray(result["grid"]).save(grid_path)
    summary = {k: v for k, v in result.items() if k != "grid"}
    summary["grid_file"] = grid_path.name
    return {"json": write_json(summary, out / f"{stem}.json"), "grid": grid_path}


def format_translation(result: dict) -> str:
    """The headline metrics of one domain pair as a table."""
    skip = {"from", "to", "kind", "n", "scores", "score_name", "grid", "grid_order", "iou", "pixels",
            "pairs", "generator", "anchors", "feature_space", "grid_file"}
    rows = [[k, v] for k, v in result.items() if k not in skip]
    if result.get("feature_space"):
        rows.append(["feature space", result["feature_space"]])
    head = f"{result['from']} -> {result['to']} ({result['kind']}), {result['n']} pairs"
    table = format_table(["metric", "value"], rows)
    if "iou" in result:
        per_class = [[name, v] for name, v in result["iou"].items() if v is not None]
        table += "\n\n" + format_table(["class", "IoU"], per_class)
    return f"{head}\n{table}"
