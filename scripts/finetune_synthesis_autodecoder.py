"""Fine-tune a built-in-world generator's synthesis so that single latents draw the parts.

Projection shows that the shipped synthesis draws the parts in place only when every layer gets
its own style (W+); one w per face, which is all a StyleGAN2 mapping gives, levels off far
lower (docs/builtin.md, "How far a better mapping could go"). This fine-tunes the synthesis as an
auto-decoder (GLO, Bojanowski et al. 2018): each of the first `--faces` faces of the ToyFaces
`generator` split gets its own free w (started at G's mapping of its z), trained jointly with
the synthesis on the generator trainer's image loss (L1 pyramid + edge) and, beside it, a fresh
StyleGAN2 discriminator's non-saturating loss (the sharpening phase's terms). Without the
discriminator the image loss erases the small parts, even of faces it memorises. The mapping
is left as it is; the exported generator is the synthesis's moving average with that mapping.
With `--mapping-out`, a second file gets a mapping refit to ask for the faces' latents (a linear
regression of their offsets on z, folded into the mapping MLP). `--code-shrink` keeps pulling the
faces' latents toward that linear prediction while training (measured: G(z) as judged unchanged,
sharper; docs/builtin.md).

Every `--eval-every` steps it logs the reference segmenter's reading of the training faces at
their own latents against render_seg (with `--judge`) and exports `G_<step>.safetensors`, to be
judged on held-out faces with `scripts/eval_generator_fidelity.py --project-steps 200,400
--project-space w`. The run folder resumes like `train-generator`'s: rerun the same command.

    python scripts/finetune_synthesis_autodecoder.py --run-dir runs/autodecoder --faces 256 \\
        --steps 1200 --judge domains/segmenter.safetensors
"""
from __future__ import annotations

import copy
import json
import time
from typing import NamedTuple

import click
import torch
import torch.nn.functional as F
from tqdm import tqdm

from synthgen.builtin.train_generator import (discriminator_like, discriminator_loss, edge_l1, image_pyramid_l1,
                                              render_rgb, update_moving_average)
from synthgen.cli_options import device_option
from synthgen.devices import DeviceError, resolve_device
from synthgen.generators import load_generator
from synthgen.generators.native import save_generator
from synthgen.generators.stylegan2 import FrozenStyleGAN2
from synthgen.runs import ResumeError, RunFolder
from synthgen.toyfaces.splits import SPLITS

JUDGED_FACES = 64  # training faces the judge reads at each evaluation


class Settings(NamedTuple):
    generator: str
    faces: int
    steps: int
    batch_size: int
    lr: float
    code_lr: float
    lambda_adv: float
    lambda_edge: float
    r1_gamma: float
    ema_decay: float
    seed: int
    # Added later: their defaults are also what run folders written before them trained with.
    code_shrink: float = 0.0
    shrink_every: int = 50
    shrink_ridge: float = 10.0


def with_bias(z: torch.Tensor) -> torch.Tensor:
    """[z, 1]: the inputs of the linear map from z to the faces' latent offsets."""
    return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], 1)


def ridge_fit(z: torch.Tensor, offsets: torch.Tensor, ridge: float) -> torch.Tensor:
    """The (z_dim + 1, w_dim) matrix a of the ridge regression offsets ~ [z, 1] @ a (float64 solve)."""
    x = with_bias(z).double()
    eye = torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
    return torch.linalg.solve(x.T @ x + ridge * eye, x.T @ offsets.double()).float()


def _settings_before_shrink(old: dict) -> None:
    """Run folders written before --code-shrink existed trained without it."""
    for name, value in Settings._field_defaults.items():
        old.setdefault(name, value)


class AutoDecoderRun:
    def __init__(self, s: Settings, run_dir: str, device: str = "cpu"):
        self.s = s
        self.device = resolve_device(device)
        self.folder = RunFolder(run_dir)
        self.folder.check_resume(s._asdict(), [k for k in s._fields if k != "steps"], _settings_before_shrink)
        frozen = load_generator(s.generator)
        if frozen.kind != "stylegan2" or frozen.z_dim != 64:
            raise click.ClickException(f"{s.generator}: needs a StyleGAN2 imitating ToyFaces (z_dim 64)")
        self.folder.path.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to work
        self.folder.write_config(s._asdict())
        torch.manual_seed(s.seed)
        self.G = frozen.generator.to(self.device)
        self.G.requires_grad_(False)
        self.G.synthesis.requires_grad_(True)
        self.z = frozen.sample_z(list(range(s.faces)), SPLITS["generator"].seed)  # on the host: the renderer's input
        self.targets = torch.cat([render_rgb(self.z[i: i + 64], self.G.cfg.size)
                                  for i in range(0, s.faces, 64)]).to(self.device)
        with torch.no_grad():
            start = self.G.mapping(self.z.to(self.device))
        self.mapped = start  # the frozen mapping's latents of the faces, which --code-shrink pulls toward
        self.codes = torch.nn.Embedding(s.faces, start.shape[1], sparse=True, device=self.device)
        self.codes.weight.data.copy_(start)
        self.D = discriminator_like(self.G.cfg).to(self.device)
        self.opt_code = torch.optim.SparseAdam(self.codes.parameters(), lr=s.code_lr)
        self.opt = torch.optim.Adam(self.G.synthesis.parameters(), lr=s.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s.lr, betas=(0.0, 0.99))
        self.ema = copy.deepcopy(self.G.synthesis).eval().requires_grad_(False)
        self.order = torch.Generator().manual_seed(s.seed + 1)  # which faces each batch draws
        self.step = 0
        self._judged_masks = None
        state = self.folder.read_checkpoint(map_location=self.device)
        if state is not None:
            for name, module in self._stateful().items():
                module.load_state_dict(state[name])
            self.order.set_state(state["order"].cpu())
            torch.set_rng_state(state["rng"].cpu())  # the synthesis's noise
            if self.device.type == "cuda" and "cuda_rng" in state:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
            self.step = int(state["step"])
        # Steps logged after the checkpoint are redone; a run killed before its first checkpoint starts afresh.
        self.folder.truncate_stats(self.step if state is not None else -1)

    def _stateful(self) -> dict:
        return {"synthesis": self.G.synthesis, "ema": self.ema, "D": self.D, "codes": self.codes,
                "opt": self.opt, "opt_code": self.opt_code, "opt_d": self.opt_d}

    def save_checkpoint(self) -> None:
        state = {name: module.state_dict() for name, module in self._stateful().items()}
        rng = {"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}
        self.folder.write_checkpoint({**state, "order": self.order.get_state(), "rng": torch.get_rng_state(),
                                      **rng, "step": self.step})

    def _photos(self, codes: torch.Tensor, synthesis=None) -> torch.Tensor:
        ws = codes[:, None].expand(-1, self.G.num_ws, -1)
        if synthesis is None:  # training: the synthesis being trained, random noise
            return self.G.synthesize(ws, noise_mode="random")[0]
        return synthesis(ws, None)[0]  # None: the constant noise buffers, as exported generators use

    def train_step(self) -> dict[str, float]:
        s = self.s
        idx = torch.randint(0, s.faces, (s.batch_size,), generator=self.order).to(self.device)
        real = self.targets[idx]
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self._photos(self.codes.weight[idx])
        loss_d = discriminator_loss(self.D, fake, real, self.step, s.r1_gamma)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        fake = self._photos(self.codes(idx))
        loss_image = image_pyramid_l1(fake, real) + s.lambda_edge * edge_l1(fake, real)
        loss_adv = F.softplus(-self.D(fake)).mean()
        loss = loss_image + s.lambda_adv * loss_adv
        self.opt_code.zero_grad()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_code.step()
        self.opt.step()
        self.step += 1
        update_moving_average(self.ema, self.G.synthesis, s.ema_decay, self.step)
        if s.code_shrink and self.step % s.shrink_every == 0:
            self.shrink_codes()
        return {"image": loss_image.item(), "g_adv": loss_adv.item(), "d_loss": loss_d.item()}

    @torch.no_grad()
    def shrink_codes(self) -> None:
        """Move every face's latent the fraction `code_shrink` of the way to its linear prediction from z.

        A mapping can only ask for what a function of z predicts; the part of a face's free latent no
        linear map of z predicts (most of it: docs/builtin.md) is a per-face freedom that G(z) never
        gets. Shrinking it keeps the synthesis training on latents the refit mapping will ask for.
        """
        z = self.z.to(self.device)
        offsets = self.codes.weight - self.mapped
        prediction = self.mapped + with_bias(z) @ ridge_fit(z, offsets, self.s.shrink_ridge)
        self.codes.weight.sub_(self.s.code_shrink * (self.codes.weight - prediction))

    def exported(self) -> FrozenStyleGAN2:
        G = copy.deepcopy(self.G)
        G.synthesis = copy.deepcopy(self.ema)
        return FrozenStyleGAN2(G.cpu().eval().requires_grad_(False))

    def corrected_mapping(self, ridge: float, steps: int, batch: int = 512) -> FrozenStyleGAN2:
        """The exported generator with a mapping that asks for the faces' latents.

        The faces' latents moved away from the old mapping's; their offsets are regressed on z
        linearly (ridge `ridge`: 256 faces are too few for more), and the mapping MLP is trained
        on fresh standard-normal z to return old mapping + that offset, so the file stays a
        plain StyleGAN2. Returns the generator; the run's own weights are untouched.
        """
        G = self.exported().generator  # on the host: a small MLP on batches of z
        old = copy.deepcopy(G.style).eval().requires_grad_(False)
        with torch.no_grad():
            a = ridge_fit(self.z, self.codes.weight.cpu() - old(self.z), ridge)
        G.style.train().requires_grad_(True)
        opt = torch.optim.Adam(G.style.parameters(), lr=1e-3)
        draws = torch.Generator().manual_seed(self.s.seed + 2)
        for _ in range(steps):
            z = torch.randn(batch, self.z.shape[1], generator=draws)
            with torch.no_grad():
                target = old(z) + with_bias(z) @ a
            loss = (G.style(z) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return FrozenStyleGAN2(G.eval().requires_grad_(False))

    @torch.no_grad()
    def judge_training_faces(self, judge) -> dict[str, float]:
        """The judge's mIoU of the moving average's photos of the first training faces at their latents
        (the judge on the run's device: `predict` runs where the judge is)."""
        from synthgen.celebamask import CLASS_NAMES
        from synthgen.evaluation.segmenter import predict
        from synthgen.metrics import ConfusionMatrix
        from synthgen.pixels import to_uint8_images
        from synthgen.toyfaces import render_batch

        n = min(JUDGED_FACES, self.s.faces)
        if self._judged_masks is None:  # rendered once: every evaluation reads the same faces
            self._judged_masks = render_batch(self.z[:n].numpy(), self.G.cfg.size, domains=("seg",))["seg"]
        photos = to_uint8_images(self._photos(self.codes.weight[:n], self.ema).clamp(-1, 1))
        confusion = ConfusionMatrix(len(CLASS_NAMES), CLASS_NAMES)
        confusion.update(predict(judge, photos), self._judged_masks)
        report = confusion.report()
        return {"judge_training_faces_miou": round(report["miou"], 4),
                **{f"iou_{k}": round(report["iou"][k], 3) for k in ("l_eye", "r_eye", "l_brow", "r_brow", "nose")
                   if report["iou"][k] is not None}}


@click.command()
@click.option("--run-dir", required=True, type=click.Path(file_okay=False), help="Run folder (resumes when it holds a checkpoint).")
@click.option("--generator", type=click.Path(exists=True, dir_okay=False), default="domains/generator.safetensors",
              show_default=True, help="The generator whose synthesis is fine-tuned (a StyleGAN2 imitating ToyFaces).")
@click.option("--faces", type=click.IntRange(1), default=256, show_default=True, help="Faces of the generator split, each with its own w.")
@click.option("--steps", type=click.IntRange(1), default=1200, show_default=True, help="Total steps (raise it and rerun to train longer).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Faces per step.")
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam learning rate of the synthesis and the discriminator.")
@click.option("--code-lr", type=float, default=0.02, show_default=True, help="Adam learning rate of the faces' latents.")
@click.option("--lambda-adv", type=float, default=0.1, show_default=True, help="Weight of the non-saturating GAN loss.")
@click.option("--lambda-edge", type=float, default=3.0, show_default=True, help="Weight of the edge term.")
@click.option("--r1-gamma", type=float, default=0.05, show_default=True, help="R1 penalty at real renders (every 16 steps).")
@click.option("--ema-decay", type=float, default=0.995, show_default=True, help="Moving average of the synthesis that is judged and exported.")
@click.option("--seed", type=int, default=0, show_default=True, help="Discriminator initialisation and the order of faces.")
@click.option("--code-shrink", type=click.FloatRange(0, 1), default=Settings._field_defaults["code_shrink"], show_default=True,
              help="Every --shrink-every steps, move each face's latent this fraction of the way to its linear "
                   "prediction from z (what the refit mapping can ask for). 0 = free latents.")
@click.option("--shrink-every", type=click.IntRange(1), default=Settings._field_defaults["shrink_every"], show_default=True,
              help="Steps between shrinks.")
@click.option("--shrink-ridge", type=float, default=Settings._field_defaults["shrink_ridge"], show_default=True,
              help="Ridge of the linear prediction --code-shrink moves the latents toward.")
@click.option("--judge", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Reference segmenter: log its reading of the training faces at their latents.")
@device_option(help="Where to train: auto (CUDA when visible), cpu, cuda. A run folder resumes on any device.")
@click.option("--eval-every", type=click.IntRange(1), default=400, show_default=True, help="Steps between judgements and exports.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True, help="Steps between checkpoints.")
@click.option("--max-minutes", type=click.FloatRange(0), default=0, show_default=True,
              help="Stop this invocation after this many minutes of training, at the step reached: checkpoint, export "
                   "and --mapping-out as at the end (a device lease's deadline); rerun to continue. 0 = no limit.")
@click.option("--mapping-out", type=click.Path(dir_okay=False), default=None,
              help="When the run has reached --steps (or --max-minutes): also write the generator with a mapping refit "
                   "to ask for the faces' latents here.")
@click.option("--mapping-ridge", type=float, default=10.0, show_default=True,
              help="Ridge of the linear regression of the faces' latent offsets on z.")
@click.option("--mapping-steps", type=click.IntRange(1), default=3000, show_default=True,
              help="Adam steps (512 fresh z each) that fold the offsets into the mapping MLP.")
def main(run_dir, judge, device, eval_every, checkpoint_every, max_minutes, mapping_out, mapping_ridge, mapping_steps,
         **settings) -> None:
    try:
        run = AutoDecoderRun(Settings(**settings), run_dir, device)
    except (ResumeError, DeviceError) as exc:
        raise click.ClickException(str(exc)) from None
    model = None
    if judge:
        from synthgen.evaluation.segmenter import load_segmenter

        model = load_segmenter(judge, device=run.device)
    log = run.folder.open_stats()
    if run.step == 0 and model is not None:
        log.write(json.dumps({"step": 0, **run.judge_training_faces(model)}) + "\n")
    bar = tqdm(total=run.s.steps, initial=run.step, desc="auto-decoder", disable=None)
    t0 = time.time()
    stopped_early = False
    while run.step < run.s.steps:
        stats = run.train_step()
        record = {"step": run.step, "seconds": round(time.time() - t0, 2), **stats}
        bar.update(1)
        stopped_early = bool(max_minutes) and run.step < run.s.steps and time.time() - t0 >= max_minutes * 60
        last = run.step == run.s.steps or stopped_early
        if run.step % eval_every == 0 or last:
            if model is not None:
                record.update(run.judge_training_faces(model))
            save_generator(run.exported(), run.folder.path / f"G_{run.step}.safetensors")
        log.write(json.dumps(record) + "\n")
        if run.step % checkpoint_every == 0 or last:
            run.save_checkpoint()
        if stopped_early:
            break
    bar.close()
    log.close()
    done = {"step": run.step, "export": str(run.folder.path / f"G_{run.step}.safetensors")}
    if stopped_early:
        done["stopped"] = f"--max-minutes {max_minutes:g} reached at step {run.step} of {run.s.steps}: rerun to continue"
    if mapping_out:
        done["mapping_out"] = str(save_generator(run.corrected_mapping(mapping_ridge, mapping_steps), mapping_out))
    click.echo(json.dumps(done))


if __name__ == "__main__":
    main()
