"""What synthetic data is worth: DatasetGAN's test, made fair.

The same segmentation net (the reference U-Net, freshly initialised from the same seed)
is trained twice with the same budget (steps, batch size, seed): once on N synthetic
pairs, once on N real pairs. Both are scored on the same real test pairs; the ratio
mIoU(synthetic) / mIoU(real) says how much of real data's value the synthetic data has.
"""
from __future__ import annotations

from pathlib import Path

from synthgen.celebamask import CLASS_NAMES
from synthgen.evaluation.pairs import read_pairs
from synthgen.evaluation.report import format_table
from synthgen.evaluation.segmenter import SegmenterConfig
from synthgen.evaluation.train_segmenter import TrainConfig, evaluate_segmenter, train_segmenter


def run_downstream(
    *,
    synthetic: str | Path,
    real: str | Path,
    test: str | Path,
    n: int = 1000,
    steps: int = 2000,
    batch_size: int = 16,
    seed: int = 0,
    size: int | None = None,
    num_classes: int = 19,
    lr: float = 2e-3,
    progress: bool = True,
) -> dict:
    """Train on N synthetic and on N real pairs, score both on `test`; returns the result dict.

    Every set is resized to `size` (default: the test photos' size), masks with nearest.
    """
    test_pairs = read_pairs(test, size=size)
    size = size or test_pairs.images.shape[1]
    sources = {"synthetic": synthetic, "real": real}
    model_config = SegmenterConfig(
        num_classes=num_classes,
        class_names=list(CLASS_NAMES) if num_classes == len(CLASS_NAMES) else [],
        train_size=size,
    )
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    result: dict = {
        "n": n, "steps": steps, "batch_size": batch_size, "seed": seed, "size": size,
        "test_pairs": len(test_pairs), **{f"{k}_source": str(v) for k, v in sources.items()},
    }
    for name, source in sources.items():
        pairs = read_pairs(source, n=n, size=size)
        model, facts = train_segmenter(pairs, config, model_config, progress=progress, desc=f"train on {name}")
        result[name] = {**evaluate_segmenter(model, test_pairs).report(), "train_seconds": facts["seconds"]}
    real_miou = result["real"]["miou"]
    result["miou_synthetic"] = result["synthetic"]["miou"]
    result["miou_real"] = real_miou
    result["ratio"] = result["miou_synthetic"] / real_miou if real_miou > 0 else float("nan")
    return result


def format_downstream(result: dict) -> str:
    """Per-class IoU of both nets, then mIoU, pixel accuracy and the ratio."""
    syn, real = result["synthetic"], result["real"]
    rows = [[name, syn["iou"][name], real["iou"][name]] for name in syn["iou"]
            if syn["iou"][name] is not None or real["iou"][name] is not None]
    rows += [["mIoU", syn["miou"], real["miou"]], ["pixel accuracy", syn["pixel_accuracy"], real["pixel_accuracy"]]]
    header = (f"downstream segmentation, N = {result['n']} train pairs each, {result['steps']} steps, "
              f"batch {result['batch_size']}, seed {result['seed']}, {result['test_pairs']} test pairs")
    table = format_table(["class", "synthetic", "real"], rows)
    return f"{header}\n{table}\nratio mIoU synthetic / real: {result['ratio']:.4f}"
