"""Label consistency: a dataset's seg labels against an independent judge of its own photos.

`synthgen sample` writes, for each z, a photo G(z) and a mask R_seg(features(z)) from the
seg anchor. A reference segmenter (the judge, trained on real pairs and never on the
generator) parses the same photo; the agreement of the two masks measures the anchor's
labels on the generator's own photos. Unlike `eval labels` (the dataset's masks against
the renderer's truth of z), it does not count the generator's infidelity to its renderer
against the anchor: a photo whose hair G drew short is judged with short hair.

The judge's mask is the truth of the confusion matrix; "presence" is the fraction of
sampled photos in which the judge sees a class (at least `min_pixels` pixels, default 1).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from synthgen.dataset.card import CARD_NAME
from synthgen.dataset.layout import picture_field, points_field
from synthgen.dataset.reader import NotADatasetError, find_shards, open_dataset
from synthgen.evaluation.errors import ConsistencyError, PairsError
from synthgen.evaluation.pairs import card_fields, iter_shard_pairs
from synthgen.metrics import ConfusionMatrix

PRESENCE_THRESHOLD = 0.01  # classes the judge sees in at least 1 % of photos


def default_judge() -> Path:
    """The shipped reference segmenter, domains/segmenter.safetensors."""
    from synthgen.anchors.spec import builtin_domains_dir

    return builtin_domains_dir() / "segmenter.safetensors"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_judge(loader, path: Path, device: str, what: str, fix: str):
    """A judge model read by `loader`; a missing or foreign file is one ConsistencyError line."""
    from synthgen.evaluation.errors import SegmenterFileError

    if not path.is_file():
        raise ConsistencyError(f"{what} file {path} not found: {fix}")
    try:
        return loader(path, device=device)
    except SegmenterFileError as exc:
        raise ConsistencyError(str(exc)) from None


def _dataset_specs(dataset_dir: Path, needed: tuple[str, ...] = ("rgb", "seg")) -> dict:
    try:
        specs = open_dataset(dataset_dir).specs
    except NotADatasetError as exc:
        raise ConsistencyError(str(exc)) from None
    except (ValueError, KeyError, TypeError):
        raise ConsistencyError(f"{dataset_dir / CARD_NAME} records no domain specs: "
                               "pass a folder written by `synthgen sample`") from None
    missing = [d for d in needed if d not in specs]
    if missing:
        raise ConsistencyError(
            f"{dataset_dir} has no {' and no '.join(missing)} domain (it has {', '.join(specs)}): "
            f"label consistency needs a dataset sampled with --domains {','.join(needed)}"
        )
    return specs


def dataset_domains(dataset_dir: str | Path) -> list[str]:
    """The domains a `synthgen sample` folder holds (ConsistencyError when it is none)."""
    return list(_dataset_specs(Path(dataset_dir), ()))


def label_consistency(
    dataset_dir: str | Path,
    judge_path: str | Path | None = None,
    n: int | None = None,
    chunk: int = 256,
    device: str = "cpu",
    presence_threshold: float = PRESENCE_THRESHOLD,
    min_pixels: int = 1,
) -> dict:
    """mIoU, pixel accuracy and per-class IoU of the first `n` samples' seg labels against
    the judge's parsing of their photos; per-class presence (a class is seen in a photo
    where the judge gives it at least `min_pixels` pixels); the classes present in at
    least `presence_threshold` of the photos with their IoU (and the mean of those IoUs)."""
    from synthgen.evaluation.segmenter import load_segmenter, predict

    dataset_dir = Path(dataset_dir)
    judge_path = Path(judge_path) if judge_path is not None else default_judge()
    specs = _dataset_specs(dataset_dir)
    judge = _load_judge(load_segmenter, judge_path, device, "judge",
                        "pass --judge a segmenter written by `synthgen eval train-segmenter`")
    names = list(specs["seg"].get("class_names", []))
    judge_names = list(judge.config.class_names)
    if judge_names != names:
        differ = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in
                  enumerate(zip(names + ["-"] * len(judge_names), judge_names + ["-"] * len(names))) if a != b]
        raise ConsistencyError(
            f"judge {judge_path} has {len(judge_names)} classes, the dataset's seg domain {len(names)}, "
            f"and they differ (dataset vs judge, first: {differ[0] if differ else '?'}): "
            "pass a judge trained on the dataset's label set"
        )

    tars = find_shards(dataset_dir)
    if not tars:
        raise ConsistencyError(f"{dataset_dir} has no complete shard yet: run or resume `synthgen sample`")
    try:
        photo_fields, mask_field = card_fields(dataset_dir)
    except PairsError as exc:
        raise ConsistencyError(str(exc)) from None

    k = len(names)
    confusion = ConfusionMatrix(k, names)
    seen = np.zeros(k, np.int64)
    count = 0

    def score(photos, labels):
        nonlocal count
        images, masks = np.stack(photos), np.stack(labels)
        if images.shape[1:3] != masks.shape[1:]:
            raise ConsistencyError(
                f"{dataset_dir}: photos are {images.shape[1:3]} but seg masks {masks.shape[1:]}: "
                "they must be pixel-aligned"
            )
        verdict = predict(judge, images)
        confusion.update(masks, verdict)  # the dataset's labels predict, the judge is the truth
        flat = verdict.reshape(len(verdict), -1)
        for c in range(k):
            seen[c] += int(((flat == c).sum(axis=1) >= min_pixels).sum())
        count += len(images)

    photos, labels = [], []
    try:
        for _, image, mask in iter_shard_pairs(tars, None, photo_fields, mask_field):
            photos.append(image)
            labels.append(mask)
            if len(photos) == chunk or (n and count + len(photos) >= n):
                score(photos, labels)
                photos, labels = [], []
            if n and count >= n:
                break
        if photos:
            score(photos, labels)
    except (PairsError, ValueError) as exc:
        raise ConsistencyError(str(exc)) from None
    if count == 0:
        raise ConsistencyError(f"{dataset_dir}: no sample holds both {' or '.join(photo_fields)} and {mask_field}")
    if n and count < n:
        raise ConsistencyError(f"{dataset_dir} holds {count} samples, {n} were asked for: lower --n")

    report = confusion.report()
    presence = {name: float(seen[c] / count) for c, name in enumerate(names)}
    present = [{"class": name, "presence": presence[name], "iou": report["iou"][name]}
               for name in names if presence[name] >= presence_threshold]
    present_ious = [p["iou"] for p in present if p["iou"] is not None]
    return {
        "dataset": str(dataset_dir),
        "samples": count,
        "judge": str(judge_path),
        "judge_sha256": _sha256(judge_path),
        "photo_field": photo_fields[0] if len(photo_fields) == 1 else None,
        "truth": "judge",
        **report,
        "presence": presence,
        "presence_threshold": presence_threshold,
        "presence_min_pixels": min_pixels,
        "present_classes": present,
        "miou_present": float(np.mean(present_ious)) if present_ious else float("nan"),
    }


def format_consistency(report: dict) -> str:
    """The classes the judge sees in >= 1 % of photos: presence and IoU; then the totals."""
    from synthgen.evaluation.report import format_table

    header = (f"label consistency of {report['dataset']}: {report['samples']} samples, seg labels against "
              f"the judge {report['judge']} (the judge's mask is the truth)")
    rows = [[p["class"], p["presence"], p["iou"]] for p in report["present_classes"]]
    rows += [["mIoU (present classes)", None, report["miou_present"]], ["mIoU", None, report["miou"]],
             ["pixel accuracy", None, report["pixel_accuracy"]]]
    threshold = f"presence >= {report['presence_threshold']:.0%}"
    return f"{header}\n{format_table(['class (' + threshold + ')', 'presence', 'IoU'], rows)}"


def _iter_photo_points(tars, photo_fields, points_name):
    """(photo (H, W, 3) uint8, points (K, 2) float32) of every sample holding both fields."""
    import io

    from synthgen.evaluation.pairs import decode_photo, iter_shard_members

    for _, _, photo, raw_points in iter_shard_members(tars, photo_fields, points_name):
        points = np.load(io.BytesIO(raw_points), allow_pickle=False).astype(np.float32)
        yield decode_photo(photo), points


def landmark_consistency(dataset_dir: str | Path, detector_path: str | Path, n: int | None = None,
                         chunk: int = 256, device: str = "cpu") -> dict:
    """NME (300-W inter-ocular) of the first `n` samples' landmark.npy against the reference
    landmark detector's points on their photos (the detector's points are the truth)."""
    from synthgen.evaluation.landmark_detector import load_detector, predict_landmarks
    from synthgen.metrics import point_errors_inter_ocular

    dataset_dir, detector_path = Path(dataset_dir), Path(detector_path)
    specs = _dataset_specs(dataset_dir, ("rgb", "landmark"))
    detector = _load_judge(load_detector, detector_path, device, "landmark judge",
                           "pass a detector written by `synthgen eval train-landmark-detector`")
    k = detector.config.num_classes
    if int(specs["landmark"].get("num_points", -1)) != k:
        raise ConsistencyError(f"landmark judge {detector_path} predicts {k} points, the dataset's landmark domain "
                               f"has {specs['landmark'].get('num_points')}: pass a detector of the same points")
    photo_fields = (picture_field(specs["rgb"]["fields"]),)
    points_name = points_field(specs["landmark"]["fields"])
    errors, photos, labels = [], [], []

    def score():
        truth = predict_landmarks(detector, np.stack(photos))
        try:
            errors.append(point_errors_inter_ocular(np.stack(labels), truth))
        except ValueError as exc:
            raise ConsistencyError(f"{dataset_dir}: {exc}") from None

    count = 0
    for photo, points in _iter_photo_points(find_shards(dataset_dir), photo_fields, points_name):
        photos.append(photo)
        labels.append(points)
        count += 1
        if len(photos) == chunk or (n and count >= n):
            score()
            photos, labels = [], []
        if n and count >= n:
            break
    if photos:
        score()
    if count == 0 or (n and count < n):
        raise ConsistencyError(f"{dataset_dir} holds {count} samples with {photo_fields[0]} and {points_name}"
                               + (f", {n} were asked for: lower --n" if n else ""))
    per_point = np.concatenate(errors)
    return {"samples": count, "landmark_judge": str(detector_path), "landmark_judge_sha256": _sha256(detector_path),
            "nme_inter_ocular": float(per_point.mean(1).mean()),
            "fraction_within_0.08": float((per_point < 0.08).mean()), "truth": "landmark judge"}
