"""`synthgen toyfaces train-generator`: train the built-in StyleGAN2 on ToyFaces RGB."""
from __future__ import annotations

from pathlib import Path

import click

from synthgen.builtin.train_config import D_CONDITIONS, GeneratorTrainConfig
from synthgen.cli_options import InputPath, device_option
from synthgen.defaults import default_of
from synthgen.errors import UserError


def _help(text: str, name: str, meaning: str | None = None) -> str:
    """Help text ending in the config's default: options stay unset (a resumed run keeps its
    stored value), so click cannot show it; it is read from GeneratorTrainConfig, not retyped."""
    value = default_of(GeneratorTrainConfig, name)
    return f"{text}  [default: {value}{' = ' + meaning if meaning else ''}]"


@click.command("train-generator")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/generator"), show_default=True,
              help="Run folder: checkpoint.pt, stats.jsonl, sample grids. The same command resumes from it.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Export the EMA generator here (native safetensors) when training ends.")
@click.option("--preset", default=None, help=_help("StyleGAN2 architecture preset.", "preset"))
@click.option("--steps", type=click.IntRange(min=1), default=None, help=_help("Total optimizer steps.", "steps"))
@click.option("--adv-start", type=click.IntRange(min=0), default=None,
              help=_help("Step at which the adversarial phase begins.", "adv_start", "never"))
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help=_help("Samples per step.", "batch_size"))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help=_help("Adam learning rate.", "lr"))
@click.option("--lr-final", type=click.FloatRange(min=0), default=None,
              help=_help("Cosine-decay the learning rate to this value at the last step.", "lr_final", "constant lr"))
@click.option("--lambda-edge", type=click.FloatRange(min=0), default=None, help=_help("Weight of the edge L1 term.", "lambda_edge"))
@click.option("--lambda-adv", type=click.FloatRange(min=0), default=None, help=_help("Weight of the GAN loss.", "lambda_adv"))
@click.option("--d-condition", type=click.Choice(D_CONDITIONS), default=None,
              help=_help("What the discriminator sees besides the image: none, or z (projected onto its features, "
                         "so a photo must fit its own latent).", "d_condition"))
@click.option("--r1-gamma", type=click.FloatRange(min=0), default=None,
              help=_help("R1 penalty weight on the discriminator in the adversarial phase; 0 = off.", "r1_gamma"))
@click.option("--seed", type=int, default=None, help=_help("Weight init and training-latent order.", "seed"))
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help=_help("Steps between held-out PSNR + grids.", "eval_every"))
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, help=_help("Steps between checkpoints.", "checkpoint_every"))
@click.option("--init-from", type=InputPath(dir_okay=False), default=None,
              help="Start a new run from this exported generator (e.g. domains/generator.safetensors) instead of random weights.")
@click.option("--target-cache", type=click.IntRange(min=0), default=None,
              help=_help("Render the first N training targets once (in parallel) and cycle over them, instead of rendering "
                   "each batch: keeps a GPU busy.", "target_cache", "render each batch"))
@click.option("--render-workers", type=click.IntRange(min=1), default=None,
              help=_help("Processes that render the target cache.", "render_workers"))
@device_option(_help("Where to train; auto picks CUDA when it is visible.", "device"), default=None)
def train_generator_command(run_dir: Path, out: Path | None, **overrides) -> None:
    """Train (or resume) the built-in StyleGAN2 to imitate the ToyFaces renderer (RGB only).

    Options left unset keep the run folder's stored value (or the default on a new run),
    so re-running the same command resumes where it stopped.
    """
    from synthgen.builtin.train_generator import train_generator

    try:
        path = train_generator(run_dir=run_dir, out=out, **overrides)
    except UserError as exc:  # a bad preset, init file, device or run folder: one line, not a traceback
        raise click.ClickException(str(exc)) from None
    if path is not None:
        click.echo(f"wrote {path}")
