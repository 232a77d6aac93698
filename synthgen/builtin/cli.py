"""`synthgen toyfaces train-generator`: train the built-in StyleGAN2 on ToyFaces RGB."""
from __future__ import annotations

from pathlib import Path

import click

from synthgen.cli_options import InputPath, device_option


@click.command("train-generator")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/generator"), show_default=True,
              help="Run folder: checkpoint.pt, stats.jsonl, sample grids. The same command resumes from it.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Export the EMA generator here (native safetensors) when training ends.")
@click.option("--preset", default=None, help="StyleGAN2 architecture preset.  [default: toyfaces64]")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Total optimizer steps.  [default: 20000]")
@click.option("--adv-start", type=click.IntRange(min=0), default=None,
              help="Step at which the adversarial phase begins.  [default: never]")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Samples per step.  [default: 16]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Adam learning rate.  [default: 0.002]")
@click.option("--lr-final", type=click.FloatRange(min=0), default=None,
              help="Cosine-decay the learning rate to this value at the last step.  [default: constant lr]")
@click.option("--lambda-edge", type=click.FloatRange(min=0), default=None, help="Weight of the edge L1 term.  [default: 1.0]")
@click.option("--lambda-adv", type=click.FloatRange(min=0), default=None, help="Weight of the GAN loss.  [default: 0.05]")
@click.option("--r1-gamma", type=click.FloatRange(min=0), default=None,
              help="R1 penalty weight on the discriminator in the adversarial phase; 0 = off.  [default: 0.05]")
@click.option("--seed", type=int, default=None, help="Weight init and training-latent order.  [default: 0]")
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Steps between held-out PSNR + grids.  [default: 500]")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, help="Steps between checkpoints.  [default: 250]")
@click.option("--init-from", type=InputPath(dir_okay=False), default=None,
              help="Start a new run from this exported generator (e.g. domains/generator.safetensors) instead of random weights.")
@click.option("--target-cache", type=click.IntRange(min=0), default=None,
              help="Render the first N training targets once (in parallel) and cycle over them, instead of rendering "
                   "each batch: keeps a GPU busy.  [default: 0 = render each batch]")
@click.option("--render-workers", type=click.IntRange(min=1), default=None,
              help="Processes that render the target cache.  [default: 2]")
@device_option("Where to train; auto picks CUDA when it is visible.  [default: auto]", default=None)
def train_generator_command(run_dir: Path, out: Path | None, **overrides) -> None:
    """Train (or resume) the built-in StyleGAN2 to imitate the ToyFaces renderer (RGB only).

    Options left unset keep the run folder's stored value (or the default on a new run),
    so re-running the same command resumes where it stopped.
    """
    from synthgen.builtin.train_generator import train_generator

    try:
        path = train_generator(run_dir=run_dir, out=out, **overrides)
    except ValueError as exc:  # a bad preset, init file or device: one line, not a traceback
        raise click.ClickException(str(exc)) from None
    if path is not None:
        click.echo(f"wrote {path}")
