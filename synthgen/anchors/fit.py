"""`synthgen fit`: anchor one domain to a frozen generator (paper sec. 3, eq. 3-6).

x -> E_d -> latents -> G (frozen) -> features -> R_d -> x_hat, trained on unpaired files of
the domain alone. Only E_d and R_d learn (for the rgb domain R is G's own image path and
only E learns). The run folder (synthgen.runs) holds the resolved config, a checkpoint,
stats.jsonl and preview grids; running the same command again resumes from the checkpoint
at the same step with the same data order (batches are a pure function of (seed, step)).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from synthgen import __version__
from synthgen.allocator import keep_freed_memory
from synthgen.atomic_files import atomic_write
from synthgen.anchors.alignment import align_target, movable_classes
from synthgen.anchors.anchor import Anchor, anchor_state, build_anchor, load_anchor_state, project_to_shell, save_anchor
from synthgen.anchors.calibration import FileClassStats, calibrate_class_frequencies, file_class_stats
from synthgen.anchors.codecs import compact_to_decoded, decode, heatmap_peaks, to_input, to_rgb_preview, to_target
from synthgen.anchors.data import DomainDataset, StepBatchSampler
from synthgen.anchors.encoder import LATENT_SPACES, EncoderConfig
from synthgen.anchors.losses import (
    LossWeights, class_balance_weights, d_logistic_loss, default_weights, g_nonsaturating_loss, latent_cycle_loss,
    latent_loss, prior_matching_loss, reconstruction_loss,
)
from synthgen.anchors.photo_refinement import METADATA_KEY as REFINEMENT_KEY
from synthgen.anchors.photo_refinement import large_class_refinement, photo_agreement
from synthgen.anchors.photo_snapping import snap_target, trim_target
from synthgen.anchors.recipes import DEFAULT_RECIPE, RECIPE_FIELDS, resolve_recipe
from synthgen.anchors.realism import DomainCritic, critic_loss, realism_loss
from synthgen.anchors.regressor import PAPER_WIDTHS, mean_of_heads
from synthgen.anchors.spec import DomainSpec, load_domain_spec
from synthgen.anchors.weight_average import WeightAverage
from synthgen.devices import resolve_device
from synthgen.errors import UserError
from synthgen.generators.base import DEFAULT_TAP, FrozenGenerator, Synthesis, photo_at
from synthgen.pixels import to_unit
from synthgen.runs import ResumeError, RunFolder, free_on_resume, pinned_fields
from synthgen.schedules import cosine_lr

# Sampled latents of the cycle term come from their own seed stream, apart from any sample run's.
CYCLE_SEED_OFFSET = 7919
# ... and the latents of the class-frequency calibration from another (calibration.py).
CALIBRATION_SEED_OFFSET = 104729
# Sampled latents that measure G's latent variance (the cycle term's scale).
N_SCALE_LATENTS = 1024
# Seed trials: each trial is scored on the same sampled latents, from their own seed stream.
TRIAL_SEED_OFFSET = 15485863
TRIAL_LATENTS = 200
TRIALS_FILE = "trials.json"
TRIAL_FILES = ("checkpoint.pt", "config.json", "stats.jsonl")


class FitError(ValueError, UserError):
    """A fit that cannot start; the message says what to change."""


@dataclass
class FitConfig:
    """The options of a fit. A resumed run must share those not marked free_on_resume with the
    run it continues (RESUME_KEYS); the loss weights are compared as resolved (`weights`)."""

    # None = the recipe's value (recipes.py: RECIPE_FIELDS), resolved for the domain and generator.
    recipe: str = free_on_resume(DEFAULT_RECIPE)  # "sampling" or "paper"; a resumed run compares the resolved values
    steps: int = free_on_resume(3000)  # optimisation steps (paper: anchoring visible by 3k, details to 200k)
    batch_size: int | None = None  # per process (recipe: sampling 16, paper 4)
    lr: float | None = None  # Adam (recipe: sampling 5e-4, paper 1e-4)
    lr_final: float | None = None  # E and R: cosine decay from lr to this at the last of `steps`; None = constant lr
    ema_decay: float = 0.0  # > 0: the anchor written holds an exponential moving average of E and R (weight_average.py)
    lambda_rec: float | None = free_on_resume(None)  # None = the domain kind's preset (losses.PRESETS)
    lambda_latent: float | None = free_on_resume(None)
    lambda_adv: float | None = free_on_resume(None)  # > 0 needs real_rgb
    lambda_prior: float | None = free_on_resume(None)  # z latent space: weight of the batch prior-matching term (losses.prior_matching_loss)
    lambda_cycle: float | None = free_on_resume(None)  # weight of the sampled-latent cycle: E(decode(R(G(z)))) -> z (losses.latent_cycle_loss)
    cycle_trains_regressor: bool = False  # the cycle's gradient reaches R too (straight through the hard decoding)
    lambda_realism: float = free_on_resume(0.0)  # weight of the unpaired realism term on R's decoded output at sampled latents (realism.py)
    feature_noise: float | None = None  # Gaussian noise, in units of each feature channel's std, on what R reads at E's latents
    critic_r1: float = 0.001  # R1 weight of the realism critic (1 keeps a critic of one-hot masks at chance)
    class_balance: float | None = None  # masks: cross-entropy class weights freq^-class_balance from the files (0 = plain CE)
    align_radius: int | None = free_on_resume(None)  # masks: move each small part of the target up to this many px onto R's output (alignment.py; 0 = off)
    align_start: int | None = free_on_resume(None)  # the step from which part alignment is on (R must first know the parts' look)
    photo_snap: int = free_on_resume(0)  # masks: move each enclosed small part of the target up to this many px onto G's photo (photo_snapping.py; 0 = off)
    photo_trim: bool = free_on_resume(False)  # masks: then give a part's edge pixels that look like its surroundings in G's photo to the large class (photo_snapping.trim_target)
    init_from: str | None = None  # anchor file (same domain and generator) whose weights start the fit
    real_rgb: str | None = None  # folder of real photos for the image discriminator (eq. 6)
    size: int | None = None  # working side of E's input and R's output; None = generator resolution
    encoder: str = "resnet18-small"  # encoder trunk (encoder.TRUNKS)
    latent_space: str | None = None  # "w+" (the paper) or "z": E predicts z and G's frozen mapping makes w (StyleGAN only)
    encoder_weights: str | None = None  # local torchvision ResNet weights to start the trunk from
    regressor_widths: tuple[int, ...] = PAPER_WIDTHS  # the paper's weak 1x1 head; () = one linear 1x1 conv
    regressor_batch_norm: bool | None = None  # the paper's BatchNorm in the regressor (False: no amplifier, see regressor.py)
    finest_head: bool = False  # a second regressor head on the tap's finest map; output = the mean of both (regressor.py)
    feature_tap: str | None = None  # generator tap R reads: "default" or "pyramid" (StyleGAN2, frozen.py)
    seed: int = 0  # initial weights and data order
    preview_every: int = free_on_resume(500)  # steps between preview grids (0 = only at the end)
    checkpoint_every: int = free_on_resume(500)  # steps between checkpoints (and always at the end)
    device: str = free_on_resume("auto")  # auto | cpu | cuda
    mixed_precision: str = free_on_resume("no")  # no | bf16 | fp16 (GPU)
    field: str | None = None  # WebDataset field (e.g. seg.png) when data holds .tar shards
    points_frame: int | None = None  # keypoints: side of the image the coordinates refer to
    preload_bytes: int = free_on_resume(1 << 30)  # decoded training files kept in memory
    num_workers: int = free_on_resume(0)  # DataLoader workers when files do not fit in memory
    progress: bool = free_on_resume(True)  # tqdm bar
    # masks: sampled latents on which over-drawn classes are brought down to their share of the files (0 = off)
    calibration_latents: int = free_on_resume(256)
    # masks: record a refinement of the large classes on G's photo in the anchor file (photo_refinement.py)
    photo_refine: bool = free_on_resume(False)
    store_dtype: str = free_on_resume("float32")  # dtype of the anchor file's weights ("float16" halves it)
    # masks: fit seeds seed .. seed + trials - 1 for trial_steps each, then continue the one whose
    # large classes follow G's photo best (seed_trials below); 1 = a single run of `seed`
    trials: int | None = free_on_resume(None)  # recipe: sampling 3 for masks (if steps >= 2 trial_steps), paper 1
    trial_steps: int = free_on_resume(1000)


# What a resumed run must share with the run it continues: the inputs (as resolved) and the
# options not marked free_on_resume.
RESUME_KEYS = ("domain", "data", "generator_fingerprint", "weights") + pinned_fields(FitConfig)


def resolve_weights(spec: DomainSpec, cfg: FitConfig) -> LossWeights:
    preset = default_weights(spec)
    weights = LossWeights(
        rec=preset.rec if cfg.lambda_rec is None else cfg.lambda_rec,
        latent=preset.latent if cfg.lambda_latent is None else cfg.lambda_latent,
        adv=(preset.adv if cfg.real_rgb else 0.0) if cfg.lambda_adv is None else cfg.lambda_adv,
        prior=cfg.lambda_prior,
        cycle=cfg.lambda_cycle,
        realism=cfg.lambda_realism,
    )
    if weights.adv > 0 and not cfg.real_rgb:
        raise FitError("lambda_adv > 0 needs real photos for the discriminator: pass --real-rgb DIR (or --lambda-adv 0)")
    return weights


def with_recipe(cfg: FitConfig, spec: DomainSpec, generator: FrozenGenerator) -> FitConfig:
    """`cfg` with every option left unset (None) taken from its recipe for `spec` and `generator`."""
    try:
        values = resolve_recipe(cfg.recipe, spec, generator, {k: getattr(cfg, k) for k in RECIPE_FIELDS},
                                steps=cfg.steps, trial_steps=cfg.trial_steps)
    except ValueError as exc:
        raise FitError(f"--recipe: {exc}") from None
    return replace(cfg, **values)


def check_config(cfg: FitConfig, spec: DomainSpec, generator: FrozenGenerator, device: str) -> None:
    """FitError naming the first option that cannot fit `spec` to `generator` on `device` (cpu | cuda)."""
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise FitError("steps and batch_size must be >= 1")
    if cfg.latent_space not in LATENT_SPACES:
        raise FitError(f"--latent-space must be one of {', '.join(LATENT_SPACES)}, got {cfg.latent_space!r}")
    if cfg.lambda_prior and cfg.latent_space != "z":
        raise FitError("--lambda-prior matches E's z to the N(0, I) prior; it needs --latent-space z")
    if cfg.lambda_prior and cfg.batch_size < 2:
        raise FitError("--lambda-prior compares batch moments: use --batch-size 2 or more")
    if min(cfg.class_balance, cfg.lambda_cycle, cfg.lambda_realism, cfg.critic_r1, cfg.feature_noise) < 0:
        raise FitError("--class-balance, --lambda-cycle, --lambda-realism, --critic-r1 and --feature-noise must be >= 0")
    if cfg.encoder_weights and cfg.encoder == "resnet18-small":
        raise FitError("--encoder-weights holds torchvision ResNet weights; use --encoder resnet18/34/50 with it")
    if cfg.class_balance and spec.kind != "mask":
        raise FitError(f"--class-balance weights mask classes; domain {spec.name!r} is a {spec.kind} domain")
    if cfg.align_radius and spec.kind != "mask":
        raise FitError(f"--align-radius moves mask parts; domain {spec.name!r} is a {spec.kind} domain (leave it 0)")
    if cfg.photo_snap and spec.kind != "mask":
        raise FitError(f"--photo-snap moves mask parts; domain {spec.name!r} is a {spec.kind} domain (leave it 0)")
    if cfg.photo_trim and spec.kind != "mask":
        raise FitError(f"--photo-trim trims mask parts; domain {spec.name!r} is a {spec.kind} domain (drop the option)")
    if cfg.photo_refine and spec.kind != "mask":
        raise FitError(f"--photo-refine refines mask classes; domain {spec.name!r} is a {spec.kind} domain (leave it off)")
    if device == "cpu" and cfg.mixed_precision == "fp16":
        raise FitError("fp16 mixed precision needs a GPU; use --mixed-precision bf16 or no on CPU")
    if cfg.latent_space == "z" and generator.latent_kind != "w+":
        raise FitError(f"--latent-space z anchors through a StyleGAN mapping network; this generator's latents are "
                       f"{generator.latent_kind!r} (use the default --latent-space w+)")
    if spec.from_generator:  # options that shape or train a regressor, which this domain does not have
        regressor_options = [(cfg.lambda_realism, "--lambda-realism to judge", "leave it 0"),
                             (cfg.finest_head, "--finest-head", "leave it off"),
                             (cfg.feature_tap != DEFAULT_TAP, f"--feature-tap {cfg.feature_tap} to read", "leave the default")]
        for used, option, fix in regressor_options:
            if used:
                raise FitError(f"domain {spec.name!r} is the generator's own photo: it has no regressor for {option}; {fix}")
    try:
        generator.check_taps([cfg.feature_tap])
    except ValueError as exc:
        raise FitError(str(exc)) from None


def default_run_dir(out: str | Path) -> Path:
    return Path("runs") / f"fit-{Path(out).stem}"


def _discriminator(resolution: int) -> nn.Module:
    """A fresh StyleGAN2 discriminator, 32 channels at full resolution doubling to 512."""
    from synthgen.generators.stylegan2.discriminator import DiscriminatorConfig, StyleGAN2Discriminator

    return StyleGAN2Discriminator(DiscriminatorConfig(size=resolution, channel_multiplier=1,
                                                      channel_base=32 * resolution, channel_max=512))


class AnchorStep(nn.Module):
    """One forward pass of eq. 3: x -> E -> G(frozen) -> (latents, photo, R output), and with
    a sampled synthesis G(z) -> R -> hard decoded output (straight through, for the realism
    critic) and the cycle decode -> E -> latents."""

    def __init__(self, anchor: Anchor, cycle_trains_regressor: bool = False, cycle: bool = True,
                 feature_noise: float = 0.0):
        super().__init__()
        self.anchor = anchor
        self.cycle_trains_regressor = cycle_trains_regressor
        self.cycle = cycle
        self.feature_noise = feature_noise

    def forward(self, x: torch.Tensor, generator: FrozenGenerator, sampled: Synthesis | None = None,
                noise_seed: int = 0):
        codes = self.anchor.encoder(x)  # (B, num_ws, D) w+, or (B, 1, z_dim) for z-space anchors
        latents = self.anchor.to_latents(codes, generator)
        synthesis = generator.synthesize(latents, taps=(self.anchor.tap,))  # gradients flow through G into E
        if self.feature_noise > 0 and self.training:
            synthesis = with_feature_noise(synthesis, self.feature_noise, noise_seed, self.anchor.tap)
        cycle = decoded = None
        if sampled is not None:  # in the same forward, so a distributed wrapper syncs its gradients too
            spec, size = self.anchor.spec, self.anchor.size
            raw = self.anchor.regress(sampled)
            decoded = hard_decoded_input(spec, raw, size)
            if self.cycle:
                cycle_input = decoded if self.cycle_trains_regressor else decoded.detach()
                cycle = self.anchor.to_latents(self.anchor.encoder(cycle_input), generator)
        # The finest head learns to read G's features; it does not move E: the encoder is anchored
        # through the main head alone, as in a one-head fit (docs/anchors.md, "Two heads").
        heads = self.anchor.regress_heads(synthesis, detach_finest=True)
        return codes, synthesis.rgb, heads, cycle, decoded


def with_feature_noise(synthesis: Synthesis, sigma: float, seed: int, tap: str) -> Synthesis:
    """The synthesis with Gaussian noise of sigma x each channel's batch std on the maps of `tap`
    (what the regressor reads; the other maps and the photo are untouched), drawn from `seed` so a
    resumed run draws the same.

    The regressor is a weak 1x1 head, but it still reads faint feature directions that do
    not show in the photo: the encoder can then park a mask's layout there instead of
    finding latents whose photo has that layout, and at sampled latents those directions
    hold nothing. Noise of the order of each channel's spread drowns faint codes while the
    strong directions that draw a part survive, so only the latter pay off.
    """
    gen = torch.Generator(device=synthesis.features.device).manual_seed(seed)  # drawn where the features are

    def noisy(t: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(t.shape, generator=gen, dtype=torch.float32, device=t.device)
        return t + (sigma * channel_std(t.detach().float()) * noise).to(t.dtype)

    if tap == DEFAULT_TAP:
        return Synthesis(features=noisy(synthesis.features), rgb=synthesis.rgb, taps=synthesis.taps)
    taps = {**synthesis.taps, tap: [noisy(t) for t in synthesis.taps[tap]]}
    return Synthesis(features=synthesis.features, rgb=synthesis.rgb, taps=taps)


def channel_std(t: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (1, C, 1, 1): each channel's sample std (t.std(dim=(0, 2, 3)), in two passes:
    the same value to float rounding, and 5x faster on the CPU than torch's one-pass std)."""
    n = t.numel() // t.shape[1]
    mean = t.mean(dim=(0, 2, 3), keepdim=True)
    return ((t - mean).square().sum(dim=(0, 2, 3), keepdim=True) / max(n - 1, 1)).sqrt()


def _resume_hint(old: dict, resolved: dict) -> str:
    """What to add to the command line to continue a run folder whose anchoring values the
    defaults no longer give: a run from before recipes ran with the paper's values, a later
    one with the values its config.json recorded (a recipe's values may change between
    versions)."""
    if "recipe" not in old:
        return " (a run started before --recipe existed ran with what is now --recipe paper: add --recipe paper)"
    moved = [k for k in RECIPE_FIELDS if k in RESUME_KEYS and k in old and old[k] != resolved.get(k)]
    if not moved:
        return ""
    flags = []
    for k in moved:
        name = k.replace("_", "-")
        flags.append((f"--{name}" if old[k] else f"--no-{name}") if isinstance(old[k], bool) else f"--{name} {old[k]}")
    return f" (it ran with {' '.join(flags)}: add them to continue it)"


def hard_decoded_input(spec: DomainSpec, raw: torch.Tensor, size: int) -> torch.Tensor:
    """R's raw output -> the encoder input of its decoded form (what `sample` would write).

    Decoded hard (argmax class ids, peak points, clamped pixels), so the encoder reads what a
    domain file holds and R cannot pass the latent on in soft values. Straight through: the
    forward value is hard while the gradient reaches R as if through the soft output (softmax
    for masks, the heatmaps themselves for keypoints); detach it to keep R out.
    """
    raw = raw.float()
    if spec.kind == "mask":  # to_input: the encoder's input of a compact batch (class ids, points)
        hard, soft = to_input(spec, raw.argmax(1), size), raw.softmax(1)
    elif spec.kind == "keypoints":
        hard, soft = to_input(spec, heatmap_peaks(raw.detach()), size), raw
    else:
        return raw.clamp(-1, 1)
    return hard + (soft - soft.detach())


def fit(domain: str | DomainSpec, data: str | Path, generator: str | Path | FrozenGenerator, out: str | Path,
        run_dir: str | Path | None = None, **options) -> Path:
    """Anchor `domain` to `generator` on the files under `data`; write the anchor to `out`.

    options: any FitConfig field. Returns the anchor path. Rerunning with the same
    run_dir resumes; a larger `steps` continues training.
    """
    from synthgen.generators import frozen_generator

    run_dir = Path(run_dir) if run_dir else default_run_dir(out)
    spec = domain if isinstance(domain, DomainSpec) else load_domain_spec(domain)
    generator = frozen_generator(generator)  # on the CPU until Accelerate says where
    cfg = with_recipe(FitConfig(**options), spec, generator)
    if options.get("trials") is None and (cfg.init_from or (
            RunFolder(run_dir).has_checkpoint() and not (run_dir / TRIALS_FILE).exists())):
        # The recipe's trials choose how a fit from nothing starts: a warm start has its start,
        # and a run folder from before trials were the recipe's goes on as it was.
        cfg = replace(cfg, trials=1)
    trials = None
    if cfg.trials > 1:
        trials = seed_trials(spec, data, generator, run_dir, cfg)
        cfg = replace(cfg, seed=trials["chosen"])
    return _Fit(spec, data, generator, Path(out), run_dir, cfg, trials).run()


def seed_trials(spec: DomainSpec, data, generator: FrozenGenerator, run_dir: Path, cfg: FitConfig) -> dict:
    """Fit seeds cfg.seed .. cfg.seed + cfg.trials - 1 for cfg.trial_steps each (run folders
    run_dir/trials/seed-S), score each by `photo_agreement` and continue the best in run_dir.

    Whether a mask fit draws a large class such as hair where G's photo shows it, or a
    template outline of the files, is decided early and by chance (docs/anchors.md, "Which
    runs find the hair"); its reconstruction loss does not tell, the agreement of its large
    classes with the photo does. A trial's score is its worst large class. The winner's run
    folder becomes run_dir's, so the run goes on exactly as a single run of that seed.
    The record (run_dir/trials.json) makes a rerun of the same command resume: finished
    trials are not refit, and once the choice is recorded the trials are skipped.
    Returns the record, with "chosen" the seed continued.
    """
    if spec.kind != "mask":
        raise FitError(f"--trials compares a mask's large classes with G's photo; domain {spec.name!r} is "
                       f"{spec.kind!r}: pass --trials 1")
    if cfg.trial_steps > cfg.steps:
        raise FitError(f"--trial-steps {cfg.trial_steps} exceeds --steps {cfg.steps}: lower it or raise --steps")
    seeds = list(range(cfg.seed, cfg.seed + cfg.trials))
    path = run_dir / TRIALS_FILE
    record = json.loads(path.read_text()) if path.exists() else None
    if record is None and RunFolder(run_dir).has_checkpoint():
        raise FitError(f"{run_dir} holds a run started without --trials: continue it with --trials 1, "
                       "or pass a new --run-dir")
    if record is not None and (record["seeds"] != seeds or record["trial_steps"] != cfg.trial_steps):
        raise FitError(f"{path} records trials of seeds {record['seeds']} for {record['trial_steps']} steps; rerun "
                       "with that --seed, --trials and --trial-steps, or pass a new --run-dir")
    if record is not None and "chosen" in record:
        return record
    record = record or {"seeds": seeds, "trial_steps": cfg.trial_steps, "latents": TRIAL_LATENTS,
                        "latent_seed": cfg.seed + TRIAL_SEED_OFFSET, "agreement": {}}
    acc = _accelerator(cfg)
    for seed in seeds:
        if str(seed) in record["agreement"]:
            continue
        folder = run_dir / "trials" / f"seed-{seed}"
        trial = _Fit(spec, data, generator, folder / "anchor.safetensors", folder,
                     replace(cfg, seed=seed, steps=cfg.trial_steps, trials=1))
        trial.run()  # calibrated as the final anchor will be: the score reads what `sample` would write
        if acc.is_main_process:
            classes = photo_agreement(trial.anchor, trial.generator, large_class_refinement(trial._class_counts()),
                                      TRIAL_LATENTS, record["latent_seed"])
            worst = min(classes.values(), default=0.0)  # a regressor drawing no large class scores 0
            record["agreement"][str(seed)] = {"worst": worst, "classes": classes}
            _write_record(path, record)
            acc.print(f"trial seed {seed}: its worst large class follows G's photo at IoU {worst:.4f}")
        acc.wait_for_everyone()
        record = json.loads(path.read_text())
    chosen = max(seeds, key=lambda s: (record["agreement"][str(s)]["worst"], -s))
    if acc.is_main_process:
        for name in TRIAL_FILES:  # the checkpoint last: a folder with one holds a complete run
            with atomic_write(run_dir / name) as tmp:
                shutil.copyfile(run_dir / "trials" / f"seed-{chosen}" / name, tmp)
        record["chosen"] = chosen
        _write_record(path, record)
        acc.print(f"continuing seed {chosen} (trials: {', '.join(str(s) for s in seeds)})")
    acc.wait_for_everyone()
    return json.loads(path.read_text())


def _write_record(path: Path, record: dict) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")


def _accelerator(cfg: FitConfig):
    from accelerate import Accelerator

    return Accelerator(cpu=resolve_device(cfg.device).type == "cpu", mixed_precision=cfg.mixed_precision)


class _Fit:
    def __init__(self, domain, data, generator, out: Path, run_dir: Path, cfg: FitConfig, trials: dict | None = None):
        from synthgen.generators import frozen_generator

        self.out, self.folder = out, RunFolder(run_dir)
        self.spec = domain if isinstance(domain, DomainSpec) else load_domain_spec(domain)
        generator = frozen_generator(generator)  # on the CPU until Accelerate says where
        self.cfg = cfg = with_recipe(cfg, self.spec, generator)
        self.weights = resolve_weights(self.spec, cfg)
        device = resolve_device(cfg.device).type
        check_config(cfg, self.spec, generator, device)
        self.acc = _accelerator(cfg)
        self.trials = trials  # the seed trials this run continues (seed_trials), recorded in the anchor
        self.generator = generator.to(self.acc.device)
        self.fingerprint = self.generator.fingerprint
        self.size = cfg.size or self.generator.resolution
        self.data = DomainDataset(self.spec, data, self.size, field=cfg.field, points_frame=cfg.points_frame,
                                  preload_bytes=cfg.preload_bytes)
        self._file_stats: FileClassStats | None = None  # the mask files' class counts, once needed
        self.class_weights = None
        if cfg.class_balance:
            self.class_weights = class_balance_weights(self._class_counts(), cfg.class_balance).to(self.acc.device)
        self.real = None
        if self.weights.adv > 0:
            rgb = DomainSpec(name="real_rgb", kind="image", channels=3)
            self.real = DomainDataset(rgb, cfg.real_rgb, self.generator.resolution, preload_bytes=cfg.preload_bytes)
        # config.json: the inputs, the options and the facts derived from them.
        self.resolved = {
            "domain": self.spec.to_dict(), "data": _absolute(data), "generator_fingerprint": self.fingerprint,
            **asdict(cfg),
            "size": self.size, "real_rgb": _absolute(cfg.real_rgb), "init_from": _absolute(cfg.init_from),
            "weights": self.weights.to_dict(), "n_files": len(self.data), "world_size": self.acc.num_processes,
            "synthgen_version": __version__,
        }

    # -- setup -------------------------------------------------------------------
    def _build(self) -> None:
        cfg, gen = self.cfg, self.generator
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            if cfg.latent_space == "z":
                shape = dict(num_ws=1, latent_dim=gen.z_dim, latent_kind="z")
            else:
                shape = dict(num_ws=gen.num_ws, latent_dim=gen.latent_dim, latent_kind=gen.latent_kind)
            enc_cfg = EncoderConfig(trunk=cfg.encoder, in_channels=self.spec.in_channels,
                                    trunk_weights=cfg.encoder_weights, **shape)
            self.anchor = build_anchor(self.spec, gen, self.size, enc_cfg, tuple(cfg.regressor_widths), self.fingerprint,
                                       regressor_batch_norm=cfg.regressor_batch_norm, tap=cfg.feature_tap,
                                       finest_head=cfg.finest_head)
            self.disc = _discriminator(gen.resolution) if self.real is not None else None
            self.critic = DomainCritic(self.spec.in_channels) if self.weights.realism > 0 else None
        if cfg.init_from:
            self._init_from(cfg.init_from)
        self.average = WeightAverage(self.anchor, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.opt = torch.optim.Adam(self.anchor.parameters(), lr=cfg.lr)  # E and R only: G is frozen
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.0, 0.99)) if self.disc else None
        self.opt_c = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, betas=(0.0, 0.99)) if self.critic else None

    def _init_from(self, path: str) -> None:
        """Start from an earlier anchor of this domain (a resumed run overrides it).

        The anchor may belong to another generator of the same shapes (the generator before
        it was fine-tuned): its weights are only a warm start, and the new file belongs to
        this generator. The encoder must have the same shape; the regressor is taken when
        its config matches and trained afresh otherwise (e.g. a new tap or widths).
        """
        from synthgen.anchors.anchor import AnchorFileError, AnchorMismatchError, load_anchor

        try:
            try:
                old = load_anchor(path, generator=self.generator, fingerprint=self.fingerprint)
            except AnchorMismatchError:
                old = load_anchor(path)  # another generator: usable when its shapes fit (checked below)
        except AnchorFileError as exc:
            raise FitError(f"--init-from: {exc}") from None
        if old.spec.to_dict() != self.spec.to_dict():
            raise FitError(f"--init-from {path} anchors domain {old.spec.name!r}, not this {self.spec.name!r} spec; "
                           "pass an anchor of the same domain")
        if old.encoder.cfg.to_dict() != self.anchor.encoder.cfg.to_dict() or old.size != self.anchor.size:
            raise FitError(f"--init-from {path}: its encoder ({old.encoder.cfg.trunk}, {old.encoder.cfg.latent_kind}, "
                           f"side {old.size}) differs from this fit's; use the same --encoder, --latent-space and --size")
        # The regressor is taken when it reads the same tap with the same config; a one-head
        # anchor also gives its head to a fit that adds the finest head (trained afresh).
        new_reg, take_regressor, adds_finest = self.anchor.regressor, False, False
        if new_reg is not None and old.tap == self.anchor.tap:
            old_cfg, new_cfg = old.regressor.cfg, new_reg.cfg
            adds_finest = old_cfg.finest_channels == 0 < new_cfg.finest_channels
            take_regressor = old_cfg == new_cfg or (
                adds_finest and replace(old_cfg, finest_channels=new_cfg.finest_channels) == new_cfg)
        own_w_avg = self.anchor.encoder.w_avg.clone()
        try:
            self.anchor.encoder.load_state_dict(old.encoder.state_dict())
            self.anchor.encoder.w_avg.copy_(own_w_avg)  # codes are offsets from *this* generator's mean w
            if take_regressor:
                new_reg.load_state_dict(old.regressor.state_dict(), strict=not adds_finest)
        except RuntimeError:
            raise FitError(f"--init-from {path}: it was fit for generator {old.generator_fingerprint[:12]}, whose latent "
                           "or feature shapes differ from this generator's; fit from scratch instead") from None

    def _resume(self) -> int:
        if not self.folder.has_checkpoint():
            return 0
        try:
            self.folder.check_resume(self.resolved, RESUME_KEYS, upgrade=self._upgrade_old_config)
        except ResumeError as exc:
            raise FitError(f"{exc}{_resume_hint(self.folder.read_config() or {}, self.resolved)}") from None
        ckpt = self.folder.read_checkpoint()
        load_anchor_state(self.anchor, ckpt["anchor"])
        self.opt.load_state_dict(ckpt["opt"])
        if self.average is not None:
            self.average.load_state_dict(ckpt["weight_average"])
        if self.disc is not None:
            self.disc.load_state_dict(ckpt["disc"])
            self.opt_d.load_state_dict(ckpt["opt_d"])
        if self.critic is not None:
            self.critic.load_state_dict(ckpt["critic"])
            self.opt_c.load_state_dict(ckpt["opt_c"])
        return int(ckpt["step"])

    def _upgrade_old_config(self, old: dict) -> None:
        """What the config.json of a run from before an option existed lacks: the value it ran with."""
        if isinstance(old.get("weights"), dict):  # a run from before a loss term existed: it had weight 0
            old["weights"] = LossWeights(**old["weights"]).to_dict()
        old.setdefault("feature_tap", DEFAULT_TAP)  # a run from before taps were chosen read the default
        old.setdefault("class_balance", 0.0)  # runs from before these options had them off
        old.setdefault("init_from", None)
        old.setdefault("cycle_trains_regressor", False)
        old.setdefault("critic_r1", self.resolved["critic_r1"])  # no critic before the option existed
        old.setdefault("feature_noise", 0.0)
        old.setdefault("finest_head", False)  # one head was the only kind
        old.setdefault("lr_final", None)  # runs from before the schedule had a constant lr
        old.setdefault("ema_decay", 0.0)  # runs from before the weight average wrote their last step's weights

    def _save_checkpoint(self, step: int) -> None:
        if not self.acc.is_main_process:
            return
        ckpt = {"step": step, "anchor": anchor_state(self.anchor), "opt": self.opt.state_dict()}
        if self.average is not None:
            ckpt["weight_average"] = self.average.state_dict()
        if self.disc is not None:
            ckpt["disc"] = self.acc.unwrap_model(self.disc).state_dict()
            ckpt["opt_d"] = self.opt_d.state_dict()
        if self.critic is not None:
            ckpt["critic"] = self.acc.unwrap_model(self.critic).state_dict()
            ckpt["opt_c"] = self.opt_c.state_dict()
        self.folder.write_checkpoint(ckpt)

    # -- loop --------------------------------------------------------------------
    def run(self) -> Path:
        from tqdm.auto import tqdm

        keep_freed_memory()  # no page faults on every step's large maps (synthgen/allocator.py)

        cfg, acc = self.cfg, self.acc
        self.folder.path.mkdir(parents=True, exist_ok=True)
        self._build()
        start = self._resume()
        if acc.is_main_process:
            self.folder.write_config(self.resolved)
            self.folder.truncate_stats(start)
            if self.data.skipped:
                acc.print(self.data.skipped_report())
        model = AnchorStep(self.anchor, cfg.cycle_trains_regressor, cycle=self.weights.cycle > 0,
                           feature_noise=cfg.feature_noise)
        model, self.opt = acc.prepare(model, self.opt)
        if self.disc is not None:
            self.disc, self.opt_d = acc.prepare(self.disc, self.opt_d)
        if self.critic is not None:
            self.critic, self.opt_c = acc.prepare(self.critic, self.opt_c)
        batches = self._loader(self.data, start)
        reals = self._loader(self.real, start) if self.real is not None else None
        bar = tqdm(total=cfg.steps, initial=start, disable=not (cfg.progress and acc.is_main_process),
                   desc=f"fit {self.spec.name}", dynamic_ncols=True)
        model.train()
        center = self.anchor.latent_center(self.generator)
        cycle_scale = self._latent_variance() if self.weights.cycle > 0 else None
        sampled_terms = self.weights.cycle > 0 or self.weights.realism > 0
        # The mask parts photo snapping, trimming and part alignment move: the files' small classes, counted once.
        snaps = self.spec.kind == "mask" and cfg.photo_snap > 0
        trims = self.spec.kind == "mask" and cfg.photo_trim
        aligns = self.spec.kind == "mask" and cfg.align_radius > 0
        movable = movable_classes(self._class_counts()) if snaps or trims or aligns else None
        stats_file = self.folder.open_stats() if acc.is_main_process else None
        try:
            for step in range(start, cfg.steps):
                for group in self.opt.param_groups:  # a resumed run continues the same schedule
                    group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.lr_final)
                batch = next(batches).to(acc.device)
                with acc.autocast():
                    x = to_input(self.spec, batch, self.size)
                    sampled, sampled_latents = self._sampled_pair(step) if sampled_terms else (None, None)
                    noise_seed = (cfg.seed * 1_000_003 + step) * self.acc.num_processes + self.acc.process_index
                    codes, rgb, heads, cycle_latents, decoded = model(x, self.generator, sampled, noise_seed)
                    raw = mean_of_heads(heads)  # what `sample` writes
                    target = to_target(self.spec, batch, self.size)
                    if snaps or trims:  # onto G's photo first, then onto R's output
                        photo = photo_at(rgb.detach().float(), self.size)
                        if snaps:
                            target = snap_target(target, photo, movable, cfg.photo_snap)
                        if trims:
                            target = trim_target(target, photo, movable)
                    if aligns and step >= cfg.align_start:
                        target = align_target(target, raw.detach().float().log_softmax(1), movable, cfg.align_radius)
                    # Each head on its own loss: the finest head must not lean on the coarse levels.
                    rec = sum(reconstruction_loss(self.spec, h, target, self.class_weights) for h in heads) / len(heads)
                    losses = {"rec": rec,
                              "latent": latent_loss(codes, center)}
                    if cycle_latents is not None:
                        losses["cycle"] = latent_cycle_loss(cycle_latents, sampled_latents, cycle_scale)
                    if self.critic is not None:
                        losses["realism"] = realism_loss(self.critic, decoded)
                    if self.weights.prior > 0:
                        losses["prior"] = prior_matching_loss(project_to_shell(codes[:, 0]))
                    if self.disc is not None:
                        losses["adv"] = g_nonsaturating_loss(self.disc(rgb))
                    loss = sum(getattr(self.weights, k) * v for k, v in losses.items())
                self.opt.zero_grad(set_to_none=True)
                acc.backward(loss)
                self.opt.step()
                if self.average is not None:
                    self.average.update(self.anchor)
                if self.disc is not None:
                    losses["d"] = self._disc_step(next(reals).to(acc.device), rgb.detach())
                if self.critic is not None:
                    losses["critic"] = self._critic_step(x, decoded.detach())
                record = {"step": step + 1, "loss": float(loss.detach()), "lr": self.opt.param_groups[0]["lr"]}
                record.update({k: float(v.detach()) for k, v in losses.items()})
                if stats_file:
                    stats_file.write(json.dumps(record) + "\n")
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"})
                done = step + 1
                if cfg.preview_every and done % cfg.preview_every == 0:
                    self._preview(done, batch, raw, rgb)
                if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != cfg.steps:
                    if stats_file:
                        stats_file.flush()
                    self._save_checkpoint(done)
            if start < cfg.steps and not (cfg.preview_every and cfg.steps % cfg.preview_every == 0):
                self._preview(cfg.steps, batch, raw, rgb)
        finally:
            bar.close()
            if stats_file:
                stats_file.close()
        self._save_checkpoint(max(start, cfg.steps))
        acc.wait_for_everyone()
        if acc.is_main_process:
            if self.average is not None:  # the checkpoint above keeps the last step's weights to resume from
                self.average.copy_to(self.anchor)
            self.anchor.metadata.update(self._summary(max(start, cfg.steps)))
            if self.trials is not None:
                self.anchor.metadata["seed_trials"] = self.trials
            if self.spec.kind == "mask" and cfg.calibration_latents > 0:
                self._calibrate()
            if cfg.photo_refine:  # after the calibration, which reads the regressor itself
                self.anchor.metadata[REFINEMENT_KEY] = large_class_refinement(self._class_counts()).to_dict()
            save_anchor(self.anchor, self.out, store_dtype=self.cfg.store_dtype)
        acc.wait_for_everyone()
        return self.out

    def _class_stats(self) -> FileClassStats:
        """Per-class counts over the mask files, counted once (class balance, alignment and calibration read them)."""
        if self._file_stats is None:
            self._file_stats = file_class_stats(self.data)
        return self._file_stats

    def _class_counts(self) -> torch.Tensor:
        """Pixel count per class over the mask files."""
        return self._class_stats().pixels

    def _calibrate(self) -> None:
        """Fold the class-frequency offsets into the anchor written (the checkpoint keeps R as trained)."""
        record = calibrate_class_frequencies(self.anchor, self.generator, self._class_stats(),
                                             self.cfg.calibration_latents, self.cfg.seed + CALIBRATION_SEED_OFFSET)
        self.anchor.metadata["class_frequency_calibration"] = record

    @torch.no_grad()
    def _latent_variance(self) -> torch.Tensor:
        """G's per-entry latent variance over sampled z: the cycle term's scale."""
        gen = self.generator
        w = torch.cat([gen.map(gen.sample_z(list(range(lo, lo + 256)), seed=self.cfg.seed + CYCLE_SEED_OFFSET + 1))
                       for lo in range(0, N_SCALE_LATENTS, 256)])
        return w.float().var(0)

    @torch.no_grad()
    def _sampled_pair(self, step: int) -> tuple[Synthesis, torch.Tensor]:
        """G's pass at latents drawn as `synthgen sample` draws them, and those latents.

        The sampled-latent terms read it. The cycle: E must re-find z's latents from R's
        decoded output on G(z), as if it were a domain file (AnchorStep, hard_decoded_input);
        it trains E to invert exactly what `sample` writes, on latents spread like the prior,
        and (with cycle_trains_regressor) R where `sample` reads it. The realism critic judges
        that decoded output against the domain's files (realism.py). Row k of a step is a
        pure function of (seed, step, rank, k), so a resumed run sees the same latents.
        """
        gen, b = self.generator, self.cfg.batch_size
        lo = (step * self.acc.num_processes + self.acc.process_index) * b
        target = gen.map(gen.sample_z(list(range(lo, lo + b)), seed=self.cfg.seed + CYCLE_SEED_OFFSET))
        return gen.synthesize(target, taps=(self.anchor.tap,)), target

    def _critic_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with self.acc.autocast():
            c_loss = critic_loss(self.critic, real, fake, self.cfg.critic_r1)
        self.opt_c.zero_grad(set_to_none=True)  # drops what the regressor's realism loss left on the critic
        self.acc.backward(c_loss)
        self.opt_c.step()
        return c_loss.detach()

    def _disc_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with self.acc.autocast():
            d_loss = d_logistic_loss(self.disc(to_unit(real)), self.disc(fake))
        self.opt_d.zero_grad(set_to_none=True)
        self.acc.backward(d_loss)
        self.opt_d.step()
        return d_loss.detach()

    def _loader(self, dataset: DomainDataset, start: int):
        sampler = StepBatchSampler(len(dataset), self.cfg.batch_size, self.cfg.seed, start, self.cfg.steps,
                                   self.acc.process_index, self.acc.num_processes)
        workers = 0 if dataset.fully_preloaded else self.cfg.num_workers
        return iter(DataLoader(dataset, batch_sampler=sampler, num_workers=workers))

    def _preview(self, step: int, batch: torch.Tensor, raw: torch.Tensor, rgb: torch.Tensor) -> None:
        """A grid PNG: one row per sample, columns input | reconstruction | generated photo."""
        if not self.acc.is_main_process:
            return
        from PIL import Image

        n, s = min(4, batch.shape[0]), self.size
        photo_spec = DomainSpec(name="photo", kind="image", channels=3)
        cols = [
            to_rgb_preview(self.spec, compact_to_decoded(self.spec, batch[:n].cpu().numpy()), s),
            to_rgb_preview(self.spec, decode(self.spec, raw[:n]), s),
            to_rgb_preview(photo_spec, decode(photo_spec, rgb[:n]), s),
        ]
        grid = np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)  # (n*S, 3*S, 3)
        (self.folder.path / "previews").mkdir(exist_ok=True)
        Image.fromarray(grid).save(self.folder.path / "previews" / f"step_{step:07d}.png")

    def _summary(self, steps: int) -> dict:
        tail = self.folder.read_stats()[-10:]
        keys = [k for k in (tail[0] if tail else {}) if k not in ("step", "lr")]
        final = {k: float(np.mean([r[k] for r in tail])) for k in keys}
        return {"steps": steps, "final_losses": final, "weights": self.weights.to_dict(),
                "training": {k: self.resolved[k] for k in ("data", "field", "n_files", "recipe", *RECIPE_FIELDS,
                                                           "lr_final", "ema_decay", "seed", "real_rgb", "world_size")}}


def _absolute(path: str | Path | None) -> str | None:
    return str(Path(path).resolve()) if path else None
