"""Train the built-in StyleGAN2 to imitate the ToyFaces renderer.

The renderer is a pure function of a standard-normal z, so the generator can be taught
with known latents: G(z) is regressed onto render_rgb(z) (an L1 pyramid plus an edge term
for sharp part boundaries), which a CPU can do in hours where pure adversarial training
would take days. An optional adversarial phase afterwards adds a non-saturating GAN loss
for sharpness. The generator only ever sees RGB: never masks, sketches or landmarks.

The run folder (synthgen.runs) holds `config.json`, `checkpoint.pt`, `stats.jsonl` and
sample grids; running the same command again resumes from it.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from synthgen.builtin.train_config import D_CONDITIONS, GeneratorTrainConfig
from synthgen.devices import resolve_device
from synthgen.errors import UserError
from synthgen.generators.presets import build_stylegan2
from synthgen.generators.stylegan2 import FrozenStyleGAN2
from synthgen.generators.native import save_generator
from synthgen.metrics import psnr as per_image_psnr
from synthgen.pixels import from_uint8_images, to_uint8, to_unit
from synthgen.runs import RunFolder
from synthgen.schedules import cosine_lr
from synthgen.toyfaces import Z_DIM, render_batch
from synthgen.toyfaces.splits import SPLITS, Split, split_z


class TrainGeneratorError(ValueError, UserError):
    """Options that cannot train the built-in generator; the message names the fix."""


def image_pyramid_l1(fake: torch.Tensor, real: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """Sum of L1 at full, 1/2 and 1/4 resolution: coarse levels carry the layout early on."""
    loss = fake.new_zeros(())
    for level in range(levels):
        if level:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        loss = loss + F.l1_loss(fake, real)
    return loss


def edge_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences: rewards sharp part boundaries."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]
    return F.l1_loss(dx(fake), dx(real)) + F.l1_loss(dy(fake), dy(real))


R1_EVERY = 16  # lazy regularization (StyleGAN2): the penalty every 16 D steps, scaled up to match


def r1_penalty(D: torch.nn.Module, real: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared norm of D's gradient at real images: keeps D from sharpening without bound."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real, condition).sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def discriminator_like(G_cfg, c_dim: int = 0) -> torch.nn.Module:
    """A StyleGAN2 discriminator as wide as the generator at each resolution (keeps a CPU step cheap)."""
    from synthgen.generators.stylegan2.discriminator import DiscriminatorConfig, StyleGAN2Discriminator

    channels = {r: G_cfg.channels_at(r) for r in G_cfg.resolutions}
    return StyleGAN2Discriminator(DiscriminatorConfig(size=G_cfg.size, channels=channels, c_dim=c_dim))


def discriminator_loss(D: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, step: int, r1_gamma: float,
                       condition: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating D loss, plus the lazy R1 penalty on the steps it falls on."""
    loss = F.softplus(D(fake, condition)).mean() + F.softplus(-D(real, condition)).mean()
    if r1_gamma > 0 and step % R1_EVERY == 0:
        loss = loss + r1_gamma / 2 * R1_EVERY * r1_penalty(D, real, condition)
    return loss


@torch.no_grad()
def update_moving_average(average: torch.nn.Module, model: torch.nn.Module, max_decay: float, step: int) -> None:
    """average <- decay * average + (1 - decay) * model, the decay warming up over the first steps."""
    decay = min(max_decay, (1 + step) / (10 + step))
    for p_avg, p in zip(average.parameters(), model.parameters()):
        p_avg.lerp_(p, 1 - decay)
    for b_avg, b in zip(average.buffers(), model.buffers()):
        b_avg.copy_(b)


def rendered_targets(split: Split, indices: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z (B, Z), rgb (B, 3, S, S) in [-1, 1]) for sample indices of a ToyFaces split (wrapping: epochs)."""
    z = split_z(split.name, (indices % split.size).tolist())
    return torch.from_numpy(z), render_rgb(z, size)


def render_rgb(z: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """render_rgb(z) as G's photos are: float (B, 3, S, S) in [-1, 1]."""
    rgb = render_batch(np.asarray(z), size, domains=("rgb",))["rgb"]  # (B, S, S, 3) uint8
    return from_uint8_images(rgb)


class TargetCache:
    """The first n targets of a split, rendered once in parallel and held (uint8) on the device.

    An accelerator trains the small generator faster than one CPU core renders its batches;
    rendering the epoch up front in `workers` processes keeps it busy.
    """

    def __init__(self, split: Split, n: int, size: int, workers: int, device: torch.device, progress: bool = True):
        from synthgen.toyfaces.render import render_pool

        n = min(int(n), split.size)
        z = split_z(split.name, range(n))
        chunks = render_pool(z, size, domains=("rgb",), workers=workers, chunk_size=256)
        rgb = [c["rgb"] for c in tqdm(chunks, total=-(-n // 256), disable=not progress, desc="render targets")]
        self.z = torch.from_numpy(z).to(device)
        self.rgb = torch.from_numpy(np.concatenate(rgb)).permute(0, 3, 1, 2).contiguous().to(device)
        self.n = n

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(indices % self.n).to(self.z.device)
        return self.z[idx], to_unit(self.rgb[idx])


class GeneratorTrainer:
    def __init__(self, cfg: GeneratorTrainConfig, run_dir: str | Path):
        self.cfg = cfg
        self.folder = RunFolder(run_dir)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # the mapping MLP; convolutions use TF32 already
        try:
            self.G = build_stylegan2(cfg.preset, seed=cfg.seed)
        except KeyError as exc:  # an unknown preset: the message lists the known ones
            raise TrainGeneratorError(str(exc.args[0])) from None
        if self.G.cfg.z_dim != Z_DIM:
            raise TrainGeneratorError(f"preset {cfg.preset!r} has z_dim {self.G.cfg.z_dim}; imitating ToyFaces needs z_dim {Z_DIM} (its latent size)")
        if cfg.d_condition not in D_CONDITIONS:
            raise TrainGeneratorError(f"--d-condition {cfg.d_condition!r}: choose one of {', '.join(D_CONDITIONS)}")
        if cfg.init_from is not None:
            self._load_initial_weights(cfg.init_from)
        self.folder.path.mkdir(parents=True, exist_ok=True)  # only once the options are known to work
        self.G.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.0 if cfg.adv_start == 0 else 0.9, 0.99))
        self.D = None
        self.opt_d = None
        self.step = 0
        self.split = SPLITS["generator"]
        self.eval_split = SPLITS["test"]  # measured on, never trained on
        self.cache: TargetCache | None = None
        self._resume()

    # -- state ---------------------------------------------------------------------
    def _ensure_discriminator(self) -> None:
        if self.D is None:
            torch.manual_seed(self.cfg.seed + 1)
            self.D = discriminator_like(self.G.cfg, Z_DIM if self.cfg.d_condition == "z" else 0)
            self.D.to(self.device)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr, betas=(0.0, 0.99))

    def _load_initial_weights(self, path: str) -> None:
        """Start from an exported generator: training continues across machines from shipped weights."""
        from synthgen.generators import load_generator

        frozen = load_generator(path)
        if getattr(frozen, "cfg", None) is None or frozen.cfg.to_dict() != self.G.cfg.to_dict():
            raise TrainGeneratorError(f"{path}: its architecture is not the {self.cfg.preset!r} preset; pass a matching --preset")
        self.G.load_state_dict(frozen.generator.state_dict())

    def _resume(self) -> None:
        self.folder.write_config(asdict(self.cfg))
        state = self.folder.read_checkpoint(map_location=self.device)
        # Steps logged after the checkpoint are redone (all of them when a run was killed before its first).
        self.folder.truncate_stats(int(state["step"]) if state is not None else 0)
        if state is None:
            return
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        if "D" in state:
            self._ensure_discriminator()
            try:
                self.D.load_state_dict(state["D"])
            except RuntimeError:
                raise TrainGeneratorError(f"{self.folder.path}: its discriminator was trained with another --d-condition; "
                                          "resume with the run's own value or start a new --run-dir") from None
            self.opt_d.load_state_dict(state["opt_d"])

    def save_checkpoint(self) -> None:
        state = {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "opt": self.opt.state_dict(), "step": self.step}
        if self.D is not None:
            state.update(D=self.D.state_dict(), opt_d=self.opt_d.state_dict())
        self.folder.write_checkpoint(state)  # a kill mid-write never leaves a torn checkpoint

    # -- one step ------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        indices = np.arange(self.step * cfg.batch_size, (self.step + 1) * cfg.batch_size)
        z, real = self.training_batch(indices)
        adversarial = cfg.adv_start is not None and self.step >= cfg.adv_start
        stats = {}
        if adversarial:
            self._ensure_discriminator()
            stats["d_loss"] = self._discriminator_step(z, real)
        fake = self.G(z, noise_mode="const")
        loss_l1 = image_pyramid_l1(fake, real)
        loss_edge = edge_l1(fake, real)
        loss = loss_l1 + cfg.lambda_edge * loss_edge
        if adversarial:
            self.D.requires_grad_(False)
            loss_adv = F.softplus(-self.D(fake, self._condition(z))).mean()  # non-saturating G loss
            loss = loss + cfg.lambda_adv * loss_adv
            stats["g_adv"] = loss_adv.item()
        for group in self.opt.param_groups:
            group["lr"] = cosine_lr(self.step, cfg.steps, cfg.lr, cfg.lr_final)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        update_moving_average(self.G_ema, self.G, self.cfg.ema_decay, self.step)
        self.step += 1
        stats.update(l1=loss_l1.item(), edge=loss_edge.item(), loss=loss.item(), lr=self.opt.param_groups[0]["lr"])
        return stats

    def training_batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg.target_cache:
            return self.cache.batch(indices)
        z, real = rendered_targets(self.split, indices, self.G.cfg.size)
        return z.to(self.device), real.to(self.device)

    def _condition(self, z: torch.Tensor) -> torch.Tensor | None:
        """What D sees besides the image: with `z`, a photo must fit its own latent (a part
        drawn where the renderer puts none loses), not only look sharp."""
        return z if self.cfg.d_condition == "z" else None

    def _discriminator_step(self, z: torch.Tensor, real: torch.Tensor) -> float:
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self.G(z, noise_mode="const")
        loss = discriminator_loss(self.D, fake, real, self.step, self.cfg.r1_gamma, self._condition(z))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.item()


    # -- evaluation ----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """PSNR of G_ema(z) against render_rgb(z) on held-out z, and a sample grid."""
        indices = np.arange(self.cfg.eval_samples)
        z, real = rendered_targets(self.eval_split, indices, self.G.cfg.size)
        fake = self.G_ema(z.to(self.device), noise_mode="const").cpu()
        self._save_grid(fake[:8], real[:8], self.folder.path / f"samples_{self.step:07d}.png")
        # Mean per-image PSNR, the measure EVAL.md reports (scripts/eval_generator_fidelity.py).
        return {"eval_psnr": float(per_image_psnr(fake.clamp(-1, 1), real, data_range=2.0).mean())}

    @staticmethod
    def _save_grid(fake: torch.Tensor, real: torch.Tensor, path: Path) -> None:
        from PIL import Image

        rows = [torch.cat(list(t), dim=2) for t in (real, fake)]  # (3, S, n*S) each
        grid = to_uint8(torch.cat(rows, dim=1))
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)

    # -- loop ----------------------------------------------------------------------
    def run(self, progress: bool = True) -> None:
        cfg = self.cfg
        log = self.folder.open_stats()
        if cfg.target_cache and self.cache is None and self.step < cfg.steps:
            self.cache = TargetCache(self.split, cfg.target_cache, self.G.cfg.size, cfg.render_workers, self.device, progress)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not progress, desc="train-generator")
        t0 = time.time()
        while self.step < cfg.steps:
            stats = self.train_step()
            bar.update(1)
            bar.set_postfix(l1=f"{stats['l1']:.4f}")
            record = {"step": self.step, "seconds": round(time.time() - t0, 2), **stats}
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                record.update(self.evaluate())
                bar.write(f"step {self.step}: held-out PSNR {record['eval_psnr']:.2f} dB")
            log.write(json.dumps(record) + "\n")
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save_checkpoint()
        bar.close()
        log.close()

    def export(self, out: str | Path) -> Path:
        """Freeze G_ema (w_avg = mean of 10k mapped z) and write it in the native format."""
        return save_generator(FrozenStyleGAN2(copy.deepcopy(self.G_ema).cpu()), out)


def train_generator(run_dir: str | Path, out: str | Path | None = None, progress: bool = True, **overrides) -> Path | None:
    """Train (or resume) the built-in generator in `run_dir`; export to `out` when given."""
    stored = RunFolder(run_dir).read_config()
    base = GeneratorTrainConfig(**stored) if stored is not None else GeneratorTrainConfig()
    cfg = GeneratorTrainConfig(**{**asdict(base), **{k: v for k, v in overrides.items() if v is not None}})
    trainer = GeneratorTrainer(cfg, run_dir)
    trainer.run(progress=progress)
    return trainer.export(out) if out is not None else None
