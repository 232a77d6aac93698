"""What synthetic data is worth: DatasetGAN's test, made fair.

The same segmentation net (the reference U-Net, freshly initialised from the same seed)
is trained twice with the same budget (steps, batch size, seed): once on N synthetic
pairs, once on N real pairs. Both are scored on the same real test pairs; the ratio
mIoU(synthetic) / mIoU(real) says how much of real data's value the synthetic data has.

With a teacher (a reference segmenter, the judge of `eval consistency`), a third net is
trained on the same synthetic photos labelled by the teacher instead of by the anchor. That
is the ceiling of any labeller for this generator: mIoU(synthetic) / mIoU(teacher) says how
much the anchor's labels cost, apart from what the generator's photos cost.
"""
from __future__ import annotations

from pathlib import Path

from synthgen.celebamask import CLASS_NAMES
from synthgen.evaluation.errors import EvaluationError
from synthgen.evaluation.pairs import Pairs, read_pairs
from synthgen.evaluation.report import format_table
from synthgen.evaluation.segmenter import SegmenterConfig, predict
from synthgen.evaluation.train_segmenter import TrainConfig, evaluate_segmenter, train_segmenter


# Every net the test can train, in the order they are trained and printed.
ARMS = ("synthetic", "teacher", "real")
# (result key, numerator arm, denominator arm) of every ratio, in the order they are printed.
RATIOS = (("ratio", "synthetic", "real"), ("ratio_to_teacher", "synthetic", "teacher"),
          ("ratio_teacher_to_real", "teacher", "real"))


def run_downstream(
    *,
    synthetic: str | Path,
    real: str | Path | None,
    test: str | Path,
    n: int = 1000,
    steps: int = 2000,
    batch_size: int = 16,
    seed: int = 0,
    size: int | None = None,
    num_classes: int = 19,
    lr: float = 2e-3,
    teacher: str | Path | None = None,
    arms: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict:
    """Train on N synthetic and on N real pairs, score both on `test`; returns the result dict.

    real: None trains the synthetic arm alone (no ratios to real): the real arm is the same
    run for every synthetic set, so comparing two anchors needs it only once.

    teacher: a segmenter file; adds the net trained on the synthetic photos with the
    teacher's masks ("teacher") and the ratio synthetic / teacher.

    arms: which of those nets to train (default: every one whose source is given), e.g.
    ("teacher",) to compare generators by what their photos teach, without the anchor's net.
    Each net is the same run whichever others are trained with it.

    Every set is resized to `size` (default: the test photos' size), masks with nearest.
    """
    test_pairs = read_pairs(test, size=size)
    size = size or test_pairs.images.shape[1]
    arms = _arms_to_train(arms, real=real, teacher=teacher)
    # the synthetic pairs are read for their own net and for the teacher's, which labels their photos
    sources = {**({"synthetic": synthetic} if {"synthetic", "teacher"} & set(arms) else {}),
               **({"real": real} if "real" in arms else {})}
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
    judge = _load_teacher(teacher, num_classes) if "teacher" in arms else None
    read = {name: read_pairs(source, n=n, size=size) for name, source in sources.items()}
    if judge is not None:
        photos = read["synthetic"]
        read["teacher"] = Pairs(images=photos.images, masks=predict(judge, photos.images), keys=photos.keys)
        result["teacher_source"] = str(teacher)
    train_sets = {name: read[name] for name in ARMS if name in arms}
    for name, pairs in train_sets.items():
        model, facts = train_segmenter(pairs, config, model_config, progress=progress, desc=f"train on {name}")
        result[name] = {**evaluate_segmenter(model, test_pairs).report(), "train_seconds": facts["seconds"]}
    for name in train_sets:
        result[f"miou_{name}"] = result[name]["miou"]
    for key, num, den in RATIOS:  # each ratio whose two nets were trained
        if num in train_sets and den in train_sets:
            result[key] = _ratio(result[f"miou_{num}"], result[f"miou_{den}"])
    return result


def _arms_to_train(arms: tuple[str, ...] | None, *, real, teacher) -> tuple[str, ...]:
    """The nets to train: `arms`, checked against the sources given; None: every arm that has one."""
    given = {"synthetic": True, "teacher": teacher is not None, "real": real is not None}
    if arms is None:
        return tuple(a for a in ARMS if given[a])
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise EvaluationError(f"unknown arm(s) {', '.join(unknown) or '(none)'}: choose from {','.join(ARMS)}")
    missing = [a for a in arms if not given[a]]
    if missing:
        raise EvaluationError(f"the {' and '.join(missing)} arm needs its source: pass "
                              + " and ".join(f"--{a}" for a in missing) + " or leave it out of --arms")
    return tuple(arms)


def _ratio(miou: float, reference: float) -> float:
    """miou / reference; NaN when the reference net learned nothing."""
    return miou / reference if reference > 0 else float("nan")


def _load_teacher(path: str | Path, num_classes: int):
    from synthgen.evaluation.errors import SegmenterFileError
    from synthgen.evaluation.segmenter import load_segmenter

    judge = load_segmenter(path)  # a missing or foreign file is a one-line SegmenterFileError
    if judge.config.num_classes != num_classes:
        raise SegmenterFileError(f"--teacher {path} predicts {judge.config.num_classes} classes, the masks have "
                                 f"{num_classes}: pass a segmenter of the same classes")
    return judge


def format_downstream(result: dict) -> str:
    """Per-class IoU of every net (synthetic, teacher when trained, real), then mIoU, pixel
    accuracy and the ratios."""
    arms = [a for a in ARMS if a in result]
    rows = [[name] + [result[a]["iou"][name] for a in arms] for name in result[arms[0]]["iou"]
            if any(result[a]["iou"][name] is not None for a in arms)]
    rows += [["mIoU"] + [result[a]["miou"] for a in arms],
             ["pixel accuracy"] + [result[a]["pixel_accuracy"] for a in arms]]
    header = (f"downstream segmentation, N = {result['n']} train pairs each, {result['steps']} steps, "
              f"batch {result['batch_size']}, seed {result['seed']}, {result['test_pairs']} test pairs")
    table = format_table(["class", *arms], rows)
    ratios = [f"ratio mIoU {num} / {den}: {result[key]:.4f}" for key, num, den in RATIOS if key in result]
    lines = [header, table, *ratios]
    return "\n".join(lines)
