"""`synthgen eval`: train the reference segmenter, score translations, run the downstream test."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from synthgen.cli_options import InputPath, NameList, device_option
from synthgen.errors import UserError
from synthgen.evaluation.errors import LabelAccuracyError


@contextlib.contextmanager
def user_errors():
    """The errors a user's input can cause, each with a one-line message: every UserError
    (synthgen.errors), e.g. EvaluationError (PairsError, SegmenterFileError, FeatureSpaceError,
    TranslationEvalError, LabelAccuracyError, ConsistencyError), CheckpointError (the generator
    file), AnchorFileError and AnchorMismatchError (the anchor files), DomainFileError (a domain
    file of the pairs), DeviceError (a --device that is not here), ShardReaderError (with
    NotADatasetError: a dataset folder, its card or its shards).

    Nothing broader (no bare ValueError): any other exception is a bug and keeps its traceback.
    """
    try:
        yield
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


def reference_training_options(what: str, seed_help: str):
    """--out, --steps, --batch-size, --seed and --n of the commands that train a reference network."""
    options = (
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                     help=f"Where to write the {what} (.safetensors)."),
        click.option("--steps", type=click.IntRange(1), default=2000, show_default=True, help="Optimizer steps."),
        click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Pairs per step."),
        click.option("--seed", type=int, default=0, show_default=True, help=seed_help),
        click.option("--n", type=click.IntRange(1), default=None, help="Use only the first N pairs (default: all)."),
    )

    def decorate(command):
        for option in reversed(options):  # click lists options in decorator order, top first
            command = option(command)
        return command

    return decorate


@click.group("eval")
def eval_group() -> None:
    """Measure translations and the value of synthetic data against ground truth."""


@eval_group.command("train-segmenter")
@click.option("--data", type=InputPath(path_type=Path), required=True,
              help="Training pairs: a folder with rgb/ and seg/ (same stems) or WebDataset shards.")
@reference_training_options("segmenter", seed_help="Seed of init, batch order and augmentation.")
@click.option("--size", type=click.IntRange(8), default=None,
              help="Resize pairs to SIZE x SIZE (default: keep the files' size).")
@click.option("--num-classes", type=click.IntRange(2, 256), default=19, show_default=True,
              help="Classes of the masks (19 = CelebAMask-HQ labels).")
@click.option("--base-channels", type=click.IntRange(4), default=16, show_default=True,
              help="Width of the U-Net's first level (doubles at each of 3 levels).")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate (cosine decay).")
@click.option("--val", type=InputPath(path_type=Path), default=None,
              help="Held-out pairs to report mIoU on after training.")
def train_segmenter_command(data, out, steps, batch_size, seed, n, size, num_classes, base_channels, lr, val):
    """Train the reference U-Net segmenter on real (photo, mask) pairs."""
    from synthgen.evaluation.train_segmenter import train_segmenter_on_folder

    with user_errors():
        facts = train_segmenter_on_folder(
            data=data, out=out, steps=steps, batch_size=batch_size, seed=seed, n=n, size=size,
            num_classes=num_classes, base_channels=base_channels, lr=lr, val=val,
        )
    click.echo(f"wrote {out}: {facts['parameters']:,} parameters, {facts['train_pairs']} pairs, "
               f"{steps} steps in {facts['seconds']:.1f} s ({facts['steps_per_second']:.2f} steps/s), "
               f"final loss {facts['final_loss']:.4f}")
    if val:
        click.echo(f"validation mIoU {facts['val']['miou']:.4f}, pixel accuracy {facts['val']['pixel_accuracy']:.4f}")


@eval_group.command("downstream")
@click.option("--synthetic", type=InputPath(path_type=Path), required=True,
              help="Synthetic pairs: a `synthgen sample` output folder (shards/*.tar) or rgb/ + seg/ folders.")
@click.option("--real", type=InputPath(path_type=Path), default=None,
              help="Real training pairs (rgb/ + seg/ or shards); default: no real arm (the synthetic net alone, "
                   "e.g. to compare anchors on validation pairs: the real arm is the same for every one).")
@click.option("--test", type=InputPath(path_type=Path), required=True,
              help="Real test pairs both nets are scored on.")
@click.option("--n", type=click.IntRange(1), default=1000, show_default=True,
              help="Training pairs taken from each of --synthetic and --real.")
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True, help="Optimizer steps per net.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Pairs per step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed shared by both nets (same init).")
@click.option("--size", type=click.IntRange(8), default=None, help="Working size (default: the test photos' size).")
@click.option("--num-classes", type=click.IntRange(2, 256), default=19, show_default=True, help="Mask classes.")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate (cosine decay).")
@click.option("--teacher", type=click.Path(path_type=Path), default=None,
              help="Reference segmenter: also train the net on the synthetic photos labelled by it (the ceiling of "
                   "any labeller for this generator) and report synthetic / teacher; default: no teacher arm.")
# downstream.ARMS, spelled out so that `--help` does not import torch
@click.option("--arms", type=NameList(("synthetic", "teacher", "real"), example="teacher"), default=None,
              help="Which nets to train, comma-separated among synthetic, teacher, real (e.g. `teacher` to compare "
                   "generators by their photos alone); default: every arm whose source is given.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the result as JSON here.")
def downstream_command(synthetic, real, test, n, steps, batch_size, seed, size, num_classes, lr, teacher, arms, out):
    """Train the same net on N synthetic (and N real) pairs; compare mIoU on real test pairs."""
    from synthgen.evaluation.downstream import format_downstream, run_downstream
    from synthgen.evaluation.report import write_json

    with user_errors():
        result = run_downstream(synthetic=synthetic, real=real, test=test, n=n, steps=steps,
                                batch_size=batch_size, seed=seed, size=size, num_classes=num_classes, lr=lr,
                                teacher=teacher, arms=arms)
    click.echo(format_downstream(result))
    if out:
        write_json(result, out)
        click.echo(f"wrote {out}")


@eval_group.command("translate")
@click.option("--from", "source", required=True, help="Source domain name (e.g. seg).")
@click.option("--to", "target", required=True, help="Target domain name (e.g. rgb).")
@click.option("--pairs", type=InputPath(file_okay=False, path_type=Path), required=True,
              help="Folder with one subfolder per domain (<domain>/<stem>.png|.npy), stems matching.")
@click.option("--generator", type=InputPath(dir_okay=False, path_type=Path), required=True,
              help="Generator checkpoint the anchors were fitted to.")
@click.option("--anchors", type=InputPath(file_okay=False, path_type=Path), required=True,
              help="Folder holding <domain>.safetensors anchor files.")
@click.option("--n", type=click.IntRange(1), default=256, show_default=True, help="Pairs to score (sorted stems).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Pairs per batch.")
@click.option("--segmenter", type=InputPath(dir_okay=False, path_type=Path), default=None,
              help="Reference segmenter: mask -> photo faithfulness and the default Fréchet feature space.")
@click.option("--features", default=None,
              help="torchvision backbone for the Fréchet distance (e.g. resnet18); needs --weights.")
@click.option("--weights", type=InputPath(dir_okay=False, path_type=Path), default=None,
              help="Local weights file of --features (never downloaded).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for translate_<from>_<to>.json and the worst/best grid .png.")
@click.option("--grid-rows", type=click.IntRange(1), default=4, show_default=True,
              help="Rows of worst and of best cases in the grid.")
@device_option()
def translate_command(source, target, pairs, generator, anchors, n, batch_size, segmenter, features, weights,
                      out, grid_rows, device):
    """Translate paired files from one domain to another and score them against the truth."""
    from synthgen.evaluation.translation import format_translation, run_translation_eval

    if bool(features) != bool(weights):
        raise click.UsageError("--features and --weights go together: a backbone name and its local weights file")
    with user_errors():
        result = run_translation_eval(
            source=source, target=target, pairs=pairs, generator=generator, anchors=anchors, n=n,
            batch_size=batch_size, segmenter=segmenter, features=features, weights=weights, out=out,
            grid_rows=grid_rows, device=device,
        )
    click.echo(format_translation(result))
    if out:
        click.echo(f"wrote {Path(out) / ('translate_' + source + '_' + target)}.json and .png")


@eval_group.command("frechet")
@click.option("--a", "set_a", type=InputPath(path_type=Path), required=True,
              help="First photo set: a folder of images, an rgb/ + seg/ folder, or shards.")
@click.option("--b", "set_b", type=InputPath(path_type=Path), required=True,
              help="Second photo set, same forms.")
@click.option("--n", type=click.IntRange(2), default=None, help="Photos per set (default: all).")
@click.option("--size", type=click.IntRange(8), default=64, show_default=True, help="Working size of both sets.")
@click.option("--segmenter", type=InputPath(dir_okay=False, path_type=Path), default=None,
              help="Reference segmenter whose features are the space (when no --features).")
@click.option("--features", default=None, help="torchvision backbone (e.g. resnet18); needs --weights.")
@click.option("--weights", type=InputPath(dir_okay=False, path_type=Path), default=None,
              help="Local weights file of --features.")
def frechet_command(set_a, set_b, n, size, segmenter, features, weights):
    """Fréchet distance between two photo sets in a local feature space."""
    from synthgen.evaluation import fid
    from synthgen.evaluation.pairs import read_photos

    if bool(features) != bool(weights):
        raise click.UsageError("--features and --weights go together: a backbone name and its local weights file")
    if not features and not segmenter:
        raise click.UsageError("pass --features NAME --weights FILE, or --segmenter FILE for its feature space")
    with user_errors():
        if features:
            extractor = fid.backbone_extractor(features, weights)
        else:
            from synthgen.evaluation.segmenter import load_segmenter

            extractor = fid.segmenter_extractor(load_segmenter(segmenter))
        a, b = read_photos(set_a, n=n, size=size), read_photos(set_b, n=n, size=size)
        distance = fid.frechet_distance_of_images(a, b, extractor)
    click.echo(json.dumps({"frechet_distance": distance, "feature_space": extractor.feature_space,
                           "n_a": len(a), "n_b": len(b), "size": size}))


@eval_group.command("labels")
@click.argument("dataset", type=InputPath(file_okay=False, path_type=Path))
@click.option("--n", type=click.IntRange(1), default=None, help="Check only the first N samples (default: all).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the report as JSON here.")
def labels_command(dataset, n, out):
    """Exact accuracy of a built-in-world dataset's seg labels against the renderer's truth.

    DATASET is a `synthgen sample` folder made with the built-in generator, --truncation 1
    and no style mixing: each sample's true mask is the ToyFaces render of its own z.
    """
    from synthgen.dataset.reader import ShardReaderError
    from synthgen.evaluation.label_accuracy import synthetic_label_accuracy

    with user_errors():
        try:
            report = synthetic_label_accuracy(dataset, n=n)
        except ShardReaderError as exc:
            raise LabelAccuracyError(str(exc)) from None
    text = json.dumps(report, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    click.echo(text)


@eval_group.command("consistency")
@click.argument("dataset", type=InputPath(file_okay=False, path_type=Path))
@click.option("--judge", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reference segmenter that parses the photos (default: the shipped domains/segmenter.safetensors).")
@click.option("--landmark-judge", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reference landmark detector: also score the dataset's landmark.npy by NME (default: none).")
@click.option("--n", type=click.IntRange(1), default=None, help="Check only the first N samples (default: all).")
@click.option("--min-pixels", type=click.IntRange(1), default=4, show_default=True,
              help="A class counts as present in a photo when the judge gives it at least this many pixels "
                   "(a judge scatters stray pixels on generated photos).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here (default: none).")
def consistency_command(dataset, judge, landmark_judge, n, min_pixels, out):
    """Agreement of a dataset's seg labels with an independent judge parsing the same photos.

    DATASET is a `synthgen sample` folder with the rgb and seg domains. The judge's mask of
    each photo is the truth: mIoU, pixel accuracy, per-class IoU, and how often the judge
    sees each class. With --landmark-judge, the landmark domain is scored too; a dataset of
    rgb and landmark only is then scored on its landmarks alone.
    """
    from synthgen.evaluation.consistency import (
        dataset_domains, format_consistency, label_consistency, landmark_consistency,
    )
    from synthgen.evaluation.report import write_json

    with user_errors():
        landmarks_only = landmark_judge is not None and "seg" not in dataset_domains(dataset)
        report = {"dataset": str(dataset)} if landmarks_only else \
            label_consistency(dataset, judge_path=judge, n=n, min_pixels=min_pixels)
        if landmark_judge is not None:
            report["landmark"] = landmark_consistency(dataset, landmark_judge, n=n)
    if not landmarks_only:
        click.echo(format_consistency(report))
    if "landmark" in report:
        lm = report["landmark"]
        click.echo(f"landmarks against {lm['landmark_judge']}: NME {lm['nme_inter_ocular']:.4f}, "
                   f"fraction within 0.08 {lm['fraction_within_0.08']:.4f}")
    if out is not None:
        write_json(report, out)
        click.echo(f"wrote {out}")


@eval_group.command("train-landmark-detector")
@click.option("--data", type=InputPath(file_okay=False, path_type=Path), required=True,
              help="Training pairs: a folder with rgb/ and landmark/<stem>.npy (synthgen toyfaces render --domains rgb,landmark).")
@reference_training_options("detector", seed_help="Seed of init and batch order.")
@click.option("--base-channels", type=click.IntRange(4), default=16, show_default=True,
              help="Width of the U-Net's first level (doubles at each of 3 levels).")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate (cosine decay).")
def train_landmark_detector_command(data, out, steps, batch_size, seed, n, base_channels, lr):
    """Train the reference landmark detector (U-Net, one heatmap per point) on (photo, points) pairs."""
    from synthgen.evaluation.landmark_detector import train_detector_on_folder

    with user_errors():
        facts = train_detector_on_folder(data=data, out=out, steps=steps, batch_size=batch_size, seed=seed, n=n,
                                         base_channels=base_channels, lr=lr)
    click.echo(f"wrote {out}: {facts['parameters']:,} parameters, {facts['train_pairs']} pairs, "
               f"{steps} steps in {facts['seconds']:.1f} s, final loss {facts['final_loss']:.4f}")
