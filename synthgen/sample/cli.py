"""`synthgen sample`, `synthgen verify`, `synthgen preview`: option parsing over plain functions."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from synthgen.cli_options import NameList
from synthgen.dataset.layout import IMAGE_FORMATS
from synthgen.defaults import default_of
from synthgen.sample.plan import SampleConfig


def _command_line(ctx: click.Context) -> str:
    """The command as resolved options (also right when called from Python or a launcher)."""
    words = ["synthgen", ctx.info_name or "sample"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value == param.default or value is None:
            continue
        flag = max(param.opts, key=len)
        if param.is_flag:
            words.append(flag)
        else:
            words += [flag, ",".join(value) if isinstance(value, tuple) else str(value)]
    return shlex.join(words)


# Paths are not checked by click (exists=True): the loaders say in one line which file is
# missing and what to pass instead (exit 1), where click would print a 3-line usage error.
@click.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Dataset folder (shards/, manifests/, stats/, manifest.parquet, dataset.json).")
@click.option("--generator", type=click.Path(), default=None,
              help="Generator checkpoint (.safetensors, rosinality .pt, NVIDIA .pkl, BigGAN folder). "
                   "Default: the built-in default world's generator.")
@click.option("--anchors", "anchors_dir", type=click.Path(), default=None,
              help="Folder of anchor files <domain>.safetensors. Default: the shipped anchors in domains/.")
@click.option("--domains", type=NameList(), default="rgb", show_default=True,
              help="Comma-separated domains to write; rgb is the generator's photo and needs no anchor.")
@click.option("--n", "--num-samples", "n_samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Number of samples. Under torchrun/accelerate launch write --num-samples: their "
                   "parsers take --n for one of their own options.")
@click.option("--start-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="First sample index (a multiple of --shard-size); extends an existing dataset.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed: sample i draws from (seed, i).")
@click.option("--truncation", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: w = w_avg + psi (w - w_avg); 1 disables truncation.")
@click.option("--style-mix", "style_mix_prob", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Probability that a sample takes its w+ entries from a random layer on from a second latent.")
@click.option("--class", "class_index", type=click.IntRange(min=0), default=None,
              help="BigGAN-deep class index (conditional generators only).")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Samples per shard (the unit of work, resume and distribution).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples moved per step, rounded up to a multiple of 8; the generator always runs on "
                   "aligned blocks of 8 samples, so the output does not depend on it.")
@click.option("--image-format", type=click.Choice(IMAGE_FORMATS), default="png", show_default=True,
              help="Format of image domains (rgb, sketch); masks and keypoint maps are always lossless PNG.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="WebP/JPEG quality of image domains.")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="zlib level of every PNG (1: fastest; up to 9: smaller files, more CPU).")
@click.option("--workers", type=click.IntRange(min=0), default=default_of(SampleConfig, "workers"), show_default=True,
              help="Encoding threads per process (0 encodes on the main thread).")
@click.option("--compute-procs", type=click.IntRange(min=1), default=None,
              show_default="auto: one per torch thread (the cores, or OMP_NUM_THREADS), as many as memory holds",
              help="On a CPU: processes computing blocks side by side, each on one thread; the output does not "
                   "depend on it. On a GPU the blocks run in this process.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Compute dtype (autocast) of generator and regressors.")
@click.option("--device", default="auto", show_default=True,
              help="auto (Accelerate's device for this rank), cpu (forces CPU, also under torchrun), or cuda:N.")
@click.option("--overwrite", is_flag=True, help="Delete a dataset with a different config in --out instead of refusing.")
@click.option("--dry-run", is_flag=True, help="Print the resolved plan (shards, ranks, bytes estimate) and exit.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.pass_context
def sample(ctx: click.Context, dry_run: bool, no_progress: bool, **options) -> None:
    """Write an aligned multi-domain dataset as WebDataset shards + Parquet manifests.

    One generator pass per batch feeds every domain's regressor. Rerunning the same
    command resumes (finished shards are skipped). Distributed: `accelerate launch -m
    synthgen.cli sample ...` (or torchrun with --device cpu); ranks take whole shards.
    """
    from synthgen.errors import UserError
    from synthgen.sample.plan import SampleConfig
    from synthgen.sample.sampler import describe_plan, prepare, sample_dataset

    cfg = SampleConfig(show_progress=not no_progress, **options)
    try:
        prep = prepare(cfg, _command_line(ctx))
        if dry_run:
            if prep.state.is_main_process:
                click.echo(describe_plan(cfg, prep))
            return
        result = sample_dataset(cfg, _command_line(ctx), prepared=prep,
                                warn=lambda message: click.echo(f"Warning: {message}", err=True))
    except UserError as exc:  # SampleSetupError, PlanError, DatasetMismatchError, CardError, LockError, ...
        raise click.ClickException(str(exc)) from None
    if prep.state.is_main_process:
        click.echo(f"{result.out_dir}: {result.shards_written} shards written, {result.shards_skipped} already "
                   f"complete, {result.samples_written} samples in {result.seconds:.1f}s (rank 0)")


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
def verify(dataset: Path) -> None:
    """Check every shard of DATASET against its stats (sha256, count) and manifest.

    Exits nonzero when a shard is missing or corrupt; rerun the `synthgen sample`
    command to redo missing shards.
    """
    from synthgen.dataset.reader import NotADatasetError
    from synthgen.dataset.verify import verify_dataset

    try:
        report = verify_dataset(dataset)
    except NotADatasetError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--n", "n_samples", type=click.IntRange(min=1), default=16, show_default=True,
              help="Samples to show (one row each), taken from the first shards.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=Path("grid.png"),
              show_default=True, help="Output PNG.")
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True, help="Tile side in pixels.")
def preview(dataset: Path, n_samples: int, out_path: Path, size: int) -> None:
    """Contact sheet of DATASET: one row per sample, one column per domain, read from the shards."""
    from synthgen.dataset.preview import render_preview
    from synthgen.dataset.reader import NotADatasetError

    if out_path.is_dir() or out_path.suffix.lower() != ".png":
        raise click.ClickException(f"--out {out_path} is not a .png file name: pass e.g. --out grid.png")
    try:
        rows = render_preview(dataset, n_samples=n_samples, out_path=out_path, tile=size)
    except NotADatasetError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out_path}: {rows} samples")
