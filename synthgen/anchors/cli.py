"""`synthgen fit` and `synthgen translate`: option parsing over anchors.fit / anchors.translate."""
from __future__ import annotations

import click

from synthgen.anchors.alignment import MOVABLE_MAX_SHARE
from synthgen.anchors.encoder import LATENT_SPACES, TRUNKS
from synthgen.anchors.fit import FitConfig
from synthgen.anchors.recipes import RECIPES, option_default_help
from synthgen.generators.base import DEFAULT_TAP
from synthgen.defaults import default_of
from synthgen.generators.stylegan2.frozen import EXTRA_TAP_LAYERS
from synthgen.cli_options import InputPath, NameList, device_option



def _fit_default(name: str):
    """fit's option defaults are FitConfig's: stated once, where the Python API reads them too."""
    return default_of(FitConfig, name)


def _user_errors():
    """Exceptions a user's input can cause; each carries a one-line message (a missing file
    reaches fit and translate as FileNotFoundError from the readers it passes through)."""
    from synthgen.errors import UserError

    return (UserError, FileNotFoundError)


@click.command()
@click.option("--domain", required=True, help="Built-in domain name (rgb, seg, sketch, landmark) or a domain spec .json path.")
@click.option("--data", required=True, type=click.Path(), help="Folder of the domain's files (recursive), or WebDataset .tar shards with --field.")
@click.option("--generator", required=True, type=click.Path(), help="Generator checkpoint (synthgen .safetensors, rosinality .pt, NVIDIA .pkl, BigGAN folder).")
@click.option("--out", required=True, type=click.Path(), help="Anchor file to write, e.g. anchors/seg.safetensors.")
@click.option("--run-dir", type=click.Path(), default=None, help="Run folder (checkpoint, stats.jsonl, previews); default runs/fit-<out stem>. The same command resumes from it.")
@click.option("--recipe", type=click.Choice(RECIPES), default=_fit_default("recipe"), show_default=True,
              help="Where the anchoring options below that say 'recipe' take their value when not given: "
                   "sampling = the anchoring measured on the built-in world's sampled labels; paper = the method's "
                   "released settings. Options a domain or generator cannot use stay off (docs/anchors.md, \"Recipes\").")
@click.option("--steps", type=click.IntRange(1), default=_fit_default("steps"), show_default=True, help="Optimisation steps.")
@click.option("--batch-size", type=click.IntRange(1), default=_fit_default("batch_size"), help="Batch size per process. " + option_default_help("batch_size"))
@click.option("--lr", type=float, default=_fit_default("lr"), help="Adam learning rate of encoder and regressor. " + option_default_help("lr"))
@click.option("--lr-final", type=click.FloatRange(min=0), default=_fit_default("lr_final"),
              help="Cosine-decay the learning rate to this value at the last of --steps, so the weights settle "
                   "before the anchor is written (a run extended with more --steps stretches the schedule from "
                   "there on). [default: constant lr]")
@click.option("--ema-decay", type=click.FloatRange(min=0, max=1, max_open=True), default=_fit_default("ema_decay"), show_default=True,
              help="Write an exponential moving average of the encoder's and regressor's weights (this decay per step, "
                   "e.g. 0.998: about the last 500 steps) instead of the last step's; training never reads it (0 = off).")
@click.option("--lambda-rec", type=float, default=_fit_default("lambda_rec"), help="Reconstruction weight (default: the domain kind's preset).")
@click.option("--lambda-prior", type=click.FloatRange(min=0), default=_fit_default("lambda_prior"),
              help="--latent-space z: weight of matching the batch mean/variance of E's z to N(0, I), so the "
                   "regressor learns all of G's outputs, not one corner (0 = off) " + option_default_help("lambda_prior"))
@click.option("--lambda-latent", type=float, default=_fit_default("lambda_latent"), help="Weight of ||E(x) - w_avg|| (default: preset).")
@click.option("--lambda-cycle", type=click.FloatRange(min=0), default=_fit_default("lambda_cycle"),
              help="Weight of the sampled-latent cycle: E must re-find z's latents from R's decoded output on G(z) " + option_default_help("lambda_cycle"))
@click.option("--cycle-trains-regressor/--cycle-trains-encoder-only", default=_fit_default("cycle_trains_regressor"), show_default=True,
              help="Let the cycle's gradient reach the regressor (straight through its hard decoded output), so R is "
                   "trained on the latents sample reads; default: the cycle trains the encoder only.")
@click.option("--lambda-realism", type=click.FloatRange(min=0), default=_fit_default("lambda_realism"), show_default=True,
              help="Weight of the unpaired realism term: a small patch critic tells R's decoded output on sampled "
                   "latents from the domain's own files, and R learns to pass it (0 = off).")
@click.option("--feature-noise", type=click.FloatRange(min=0), default=_fit_default("feature_noise"),
              help="Training only: Gaussian noise, in units of each feature channel's std, on the features R reads at "
                   "E's latents, so faint codes the photo does not show cannot carry the mask (0 = off) " + option_default_help("feature_noise"))
@click.option("--calibration-latents", type=click.IntRange(min=0), default=_fit_default("calibration_latents"), show_default=True,
              help="Masks: after the fit, lower each class the regressor over-draws on this many sampled latents to "
                   "its pixel share in the domain's files, then each occasional class (a hat, glasses) it draws in "
                   "more pictures than the files show to that share of pictures (logit offsets in the anchor file; "
                   "0 = off).")
@click.option("--photo-refine/--no-photo-refine", default=_fit_default("photo_refine"), show_default=True,
              help="Masks: record in the anchor file a refinement of the large classes (those part alignment leaves "
                   "alone: skin, hair, background, ...) on G's photo, applied wherever the anchor labels a generator "
                   "pass (sample, translate, eval): a few mean-field steps of a CRF whose kernel compares the photo's "
                   "colours in a 7x7 window; the small parts stay as the regressor draws them.")
@click.option("--critic-r1", type=click.FloatRange(min=0), default=_fit_default("critic_r1"), show_default=True,
              help="R1 penalty weight of the realism critic on the domain's files.")
@click.option("--class-balance", type=click.FloatRange(min=0), default=_fit_default("class_balance"),
              help="Masks: weight each class's cross-entropy by freq^-VALUE from the files (0: plain CE, 0.5: inverse sqrt) " + option_default_help("class_balance"))
@click.option("--align-radius", type=click.IntRange(min=0), default=_fit_default("align_radius"), show_default=True,
              help=f"Masks: before the loss, move each small part of a file's mask (under {MOVABLE_MAX_SHARE:.0%} of the "
                   "files' pixels) by up to this many pixels onto where the regressor reads it, so a part G draws a little off its file's "
                   "place is still learnt as that part (0 = off) " + option_default_help("align_radius"))
@click.option("--align-start", type=click.IntRange(min=0), default=_fit_default("align_start"),
              help="Masks: the step from which --align-radius applies (a fresh regressor must first learn the parts) " + option_default_help("align_start"))
@click.option("--photo-snap", type=click.IntRange(min=0), default=_fit_default("photo_snap"), show_default=True,
              help="Masks: before the loss (and before --align-radius), move each small part of a file's mask that one class "
                   "encloses (an eye in the skin) by up to this many pixels onto where G's photo at the encoder's latent sets it "
                   "off most from its surroundings, so the regressor learns the part where the photo shows it (0 = off).")
@click.option("--photo-trim/--no-photo-trim", default=_fit_default("photo_trim"), show_default=True,
              help="Masks: before the loss (after --photo-snap, before --align-radius), give each small part's edge pixels "
                   "whose colour in G's photo at the encoder's latent is nearer the part's surroundings than the part to the "
                   "surrounding large class, so a part drawn thicker or higher than the photo shows it is learnt as shown.")
@click.option("--init-from", type=InputPath(dir_okay=False), default=None,
              help="Start from this anchor's weights (same domain; its generator or one of the same shapes, e.g. before fine-tuning); default: fresh weights.")
@click.option("--lambda-adv", type=float, default=_fit_default("lambda_adv"), help="Adversarial weight (default: preset with --real-rgb, else 0).")
@click.option("--real-rgb", type=click.Path(), default=_fit_default("real_rgb"), help="Folder of real photos for the image discriminator (enables the adversarial loss).")
@click.option("--size", type=click.IntRange(16), default=_fit_default("size"), help="Working side of encoder input and regressor output (default: generator resolution).")
@click.option("--encoder", type=click.Choice(TRUNKS), default=_fit_default("encoder"), show_default=True, help="Encoder trunk.")
@click.option("--latent-space", type=click.Choice(LATENT_SPACES), default=_fit_default("latent_space"),
              help="Where the encoder lands: w+ (the paper: offsets from w_avg per layer) or z (one z through the "
                   "generator's frozen mapping, which keeps encoded latents where G was trained; StyleGAN only) " + option_default_help("latent_space"))
@click.option("--regressor-widths", default=",".join(map(str, _fit_default("regressor_widths"))), show_default=True, callback=lambda c, p, v: _widths(v),
              help="Hidden 1x1 conv widths of the regressor, comma-separated; 'none' = a single linear 1x1 conv.")
@click.option("--regressor-batch-norm/--no-regressor-batch-norm", default=_fit_default("regressor_batch_norm"),
              help="BatchNorm after each hidden regressor layer (the paper); off removes its amplification of tiny feature "
                   "differences " + option_default_help("regressor_batch_norm"))
@click.option("--finest-head/--no-finest-head", default=_fit_default("finest_head"), show_default=True,
              help="A second regressor head of the same widths reads only the tap's finest map (with --feature-tap pyramid: "
                   "the last conv), each head trained on its own loss (the finest head's does not reach the encoder); "
                   "the anchor outputs their mean.")
@click.option("--feature-tap", type=click.Choice([DEFAULT_TAP, *EXTRA_TAP_LAYERS]), default=_fit_default("feature_tap"),
              help="Generator features the regressor reads: 'default' = the generator's tap (StyleGAN2: last conv); "
                   "'pyramid' = StyleGAN2's last conv of its three highest resolutions, resized and stacked " + option_default_help("feature_tap"))
@click.option("--encoder-weights", type=InputPath(dir_okay=False), default=_fit_default("encoder_weights"), help="Local torchvision ResNet weights (.pth or .safetensors) to start the trunk from; never downloaded.")
@click.option("--field", default=_fit_default("field"), help="WebDataset field holding the domain files (e.g. seg.png) when --data is shards.")
@click.option("--points-frame", type=click.IntRange(1), default=_fit_default("points_frame"), help="Keypoints: side of the image the coordinates refer to (default: --size).")
@click.option("--seed", type=int, default=_fit_default("seed"), show_default=True, help="Seed of initial weights and data order.")
@click.option("--trials", type=click.IntRange(1), default=_fit_default("trials"),
              help="Masks: fit seeds --seed .. --seed + TRIALS - 1 for --trial-steps each (run folders RUN_DIR/trials/seed-S), "
                   "keep the one whose large classes (hair, skin, ...) follow G's photo best and continue it to --steps; "
                   "costs (TRIALS - 1) x --trial-steps more steps. 1 = a single run of --seed. " + option_default_help("trials"))
@click.option("--trial-steps", type=click.IntRange(1), default=_fit_default("trial_steps"), show_default=True,
              help="Steps of each seed trial (--trials > 1); at most --steps.")
@click.option("--preview-every", type=click.IntRange(0), default=_fit_default("preview_every"), show_default=True, help="Steps between preview grids (0: only at the end).")
@click.option("--checkpoint-every", type=click.IntRange(0), default=_fit_default("checkpoint_every"), show_default=True, help="Steps between checkpoints (always at the end).")
@click.option("--num-workers", type=click.IntRange(0), default=_fit_default("num_workers"), show_default=True, help="DataLoader workers for data that does not fit in memory.")
@device_option("Where to train.", default=_fit_default("device"))
@click.option("--mixed-precision", type=click.Choice(["no", "bf16", "fp16"]), default=_fit_default("mixed_precision"), show_default=True, help="Autocast precision (fp16 needs a GPU).")
@click.option("--progress/--no-progress", default=_fit_default("progress"), show_default=True, help="Show a progress bar.")
@click.option("--store-dtype", type=click.Choice(["float32", "float16"]), default=_fit_default("store_dtype"), show_default=True,
              help="Dtype of the anchor file's weights; float16 halves the file (loaded back as float32).")
def fit(domain, data, generator, out, run_dir, **options) -> None:
    """Anchor one domain to a frozen generator; write one anchor file."""
    from synthgen.anchors.fit import fit as run_fit

    try:
        path = run_fit(domain, data, generator, out, run_dir=run_dir, **options)
    except _user_errors() as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}")


def _widths(value: str) -> tuple[int, ...]:
    if value.strip().lower() in ("", "none"):
        return ()
    try:
        widths = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers or 'none', got {value!r}") from None
    if any(w < 1 for w in widths):
        raise click.BadParameter(f"widths must be >= 1, got {value!r}")
    return widths


def _parse_anchor_paths(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for v in values:
        if "=" not in v:
            raise click.UsageError(f"--anchor expects DOMAIN=PATH, got {v!r}")
        name, path = v.split("=", 1)
        pairs[name] = path
    return pairs


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--from", "source", required=True, help="Source domain (an anchor name).")
@click.option("--to", "targets", type=NameList(example="rgb,sketch,landmark"), required=True,
              help="Comma-separated target domains, e.g. rgb,sketch,landmark.")
@click.option("--generator", required=True, type=click.Path(), help="The generator the anchors were fit for.")
@click.option("--anchors", type=click.Path(), default=None, help="Folder of <domain>.safetensors anchors.")
@click.option("--anchor", "anchor_paths", multiple=True, help="DOMAIN=PATH of an anchor file (repeatable; overrides --anchors).")
@click.option("--out", required=True, type=click.Path(), help="Output folder: <out>/<target>/<input stem>.png.")
@click.option("--multimodal", type=click.IntRange(0), default=0, show_default=True, help="K style-mixed renderings per input (fine w+ entries from K random latents).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the multimodal styles.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Inputs per generator pass.")
@click.option("--points-frame", type=click.IntRange(1), default=None, help="Keypoint inputs: side of the image the coordinates refer to.")
@device_option("Where to run.")
def translate(inputs, source, targets, anchor_paths, **options) -> None:
    """Translate INPUTS (files or folders) from one domain into others."""
    from synthgen.anchors.translate import translate as run_translate

    try:
        written = run_translate(source, targets, inputs=inputs, anchor_paths=_parse_anchor_paths(anchor_paths), **options)
    except _user_errors() as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(written)} files under {options['out']}")
