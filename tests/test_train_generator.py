import json

import pytest
import torch
from click.testing import CliRunner

from synthgen.builtin.train_generator import (
    GeneratorTrainConfig, GeneratorTrainer, edge_l1, image_pyramid_l1, train_generator,
)
from synthgen.cli import main
from synthgen.generators import load_generator
from synthgen.generators.presets import PRESETS
from synthgen.generators.stylegan2 import StyleGAN2Config
from synthgen.schedules import cosine_lr

SMALL = dict(preset="toyfaces32-test", batch_size=4, eval_every=3, eval_samples=4, checkpoint_every=2)


@pytest.fixture(autouse=True)
def small_preset(monkeypatch):
    # 32 px, z_dim = the renderer's latent size, narrow channels: a step costs milliseconds.
    cfg = StyleGAN2Config(size=32, z_dim=64, w_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16, 32: 16})
    monkeypatch.setitem(PRESETS, "toyfaces32-test", cfg)


def test_losses_are_zero_only_for_identical_images():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert image_pyramid_l1(x, x).item() == 0 and edge_l1(x, x).item() == 0
    assert image_pyramid_l1(x, -x).item() > 0 and edge_l1(x, x.flip(-1)).item() > 0


def test_cosine_learning_rate_schedule(tmp_path):
    assert cosine_lr(5, 10, 2e-3, None) == 2e-3  # constant unless a final rate is given
    assert cosine_lr(0, 10, 2e-3, 1e-5) == pytest.approx(2e-3)
    assert cosine_lr(5, 10, 2e-3, 1e-5) == pytest.approx((2e-3 + 1e-5) / 2)
    assert cosine_lr(10, 10, 2e-3, 1e-5) == pytest.approx(1e-5)
    train_generator(tmp_path / "r", steps=4, lr=1e-3, lr_final=1e-4, progress=False, **SMALL)
    rates = [json.loads(line)["lr"] for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert rates == pytest.approx([cosine_lr(s, 4, 1e-3, 1e-4) for s in range(4)])
    assert rates == sorted(rates, reverse=True)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    train_generator(tmp_path / "a", steps=4, progress=False, **SMALL)
    train_generator(tmp_path / "a", steps=6, progress=False)  # resumes from step 4, keeps stored options
    train_generator(tmp_path / "b", steps=6, progress=False, **SMALL)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for name in b["G_ema"]:
        assert torch.equal(a["G_ema"][name], b["G_ema"][name]), name
    steps = [json.loads(line)["step"] for line in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


def test_steps_logged_after_the_last_checkpoint_are_logged_once_after_resume(tmp_path):
    train_generator(tmp_path, steps=3, progress=False, **SMALL)  # checkpoints at 2 and 3
    log = tmp_path / "stats.jsonl"
    log.write_text(log.read_text() + json.dumps({"step": 4, "l1": 0.0}) + "\n")  # logged, then killed
    train_generator(tmp_path, steps=5, progress=False)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


def test_a_run_killed_before_its_first_checkpoint_logs_each_step_once(tmp_path):
    (tmp_path / "stats.jsonl").write_text(json.dumps({"step": 1, "l1": 0.0}) + "\n")  # logged, then killed
    train_generator(tmp_path, steps=2, progress=False, **SMALL)
    steps = [json.loads(line)["step"] for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_regression_lowers_the_imitation_loss(tmp_path):
    trainer = GeneratorTrainer(GeneratorTrainConfig(steps=30, lr=5e-3, **SMALL), tmp_path)
    first = trainer.train_step()["l1"]
    for _ in range(29):
        last = trainer.train_step()["l1"]
    assert last < 0.7 * first


def test_cli_trains_and_exports_a_loadable_generator(tmp_path):
    out = tmp_path / "g.safetensors"
    result = CliRunner().invoke(main, [
        "toyfaces", "train-generator", "--run-dir", str(tmp_path / "run"), "--out", str(out), "--preset",
        "toyfaces32-test", "--steps", "3", "--batch-size", "2", "--adv-start", "2", "--eval-every", "3",
    ])
    assert result.exit_code == 0, result.output
    gen = load_generator(out)
    assert gen.resolution == 32 and gen.z_dim == 64
    assert (tmp_path / "run" / "samples_0000003.png").is_file()
    assert "eval_psnr" in (tmp_path / "run" / "stats.jsonl").read_text()


def test_a_preset_with_the_wrong_latent_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="z_dim"):
        GeneratorTrainer(GeneratorTrainConfig(preset="tiny"), tmp_path)


def test_a_new_run_can_start_from_an_exported_generator(tmp_path):
    train_generator(tmp_path / "a", out=tmp_path / "g.safetensors", steps=2, progress=False, **SMALL)
    trainer = GeneratorTrainer(GeneratorTrainConfig(init_from=str(tmp_path / "g.safetensors"), **SMALL), tmp_path / "b")
    exported = load_generator(tmp_path / "g.safetensors").generator.state_dict()
    for name, value in trainer.G.state_dict().items():
        assert torch.equal(value, exported[name]), name


def test_target_cache_serves_the_same_targets_as_rendering_each_batch(tmp_path):
    from synthgen.builtin.train_generator import TargetCache, rendered_targets
    from synthgen.toyfaces.splits import SPLITS

    split = SPLITS["generator"]
    cache = TargetCache(split, 6, 32, workers=1, device=torch.device("cpu"), progress=False)
    indices = torch.arange(4, 10).numpy()  # wraps past the cache: epochs over its n targets
    z, rgb = cache.batch(indices)
    z_ref, rgb_ref = rendered_targets(split, indices % 6, 32)
    assert torch.equal(z, z_ref) and torch.equal(rgb, rgb_ref)


def test_training_from_a_target_cache_runs_and_resumes(tmp_path):
    train_generator(tmp_path, steps=3, target_cache=8, render_workers=1, device="cpu", progress=False, **SMALL)
    train_generator(tmp_path, steps=5, progress=False)  # resumes; the cache is rebuilt from stored options
    steps = [json.loads(line)["step"] for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    assert json.loads((tmp_path / "config.json").read_text())["target_cache"] == 8


def test_cuda_device_without_cuda_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is visible here")
    result = CliRunner().invoke(main, ["toyfaces", "train-generator", "--run-dir", str(tmp_path), "--device", "cuda"])
    assert result.exit_code == 1 and "no CUDA device is visible" in result.output
    assert not (tmp_path / "checkpoint.pt").exists()


def test_r1_penalty_is_the_squared_input_gradient_of_d():
    from synthgen.builtin.train_generator import r1_penalty

    weight = torch.randn(3, 4, 4)
    D = lambda x, c=None: (x * weight).sum(dim=(1, 2, 3))  # linear: its input gradient is `weight` everywhere
    real = torch.randn(5, 3, 4, 4)
    assert r1_penalty(D, real).item() == pytest.approx(weight.square().sum().item(), rel=1e-5)


def test_adversarial_phase_with_r1_trains_d_and_resumes(tmp_path):
    train_generator(tmp_path, steps=3, adv_start=1, r1_gamma=0.1, progress=False, **SMALL)
    train_generator(tmp_path, steps=4, progress=False)  # the checkpoint carries D and its optimizer
    records = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [("d_loss" in r) for r in records] == [False, True, True, True]


def test_a_latent_conditioned_discriminator_trains_resumes_and_keeps_its_condition(tmp_path):
    train_generator(tmp_path, steps=3, adv_start=1, d_condition="z", r1_gamma=0.1, progress=False, **SMALL)
    trainer = GeneratorTrainer(GeneratorTrainConfig(**json.loads((tmp_path / "config.json").read_text())), tmp_path)
    assert trainer.D.cfg.c_dim == 64  # the checkpoint's D is the conditional one
    image = torch.randn(4, 3, 32, 32)
    z1, z2 = torch.randn(4, 64), torch.randn(4, 64)
    with torch.no_grad():
        assert not torch.allclose(trainer.D(image, z1), trainer.D(image, z2))  # the same photo, judged per latent
    result = CliRunner().invoke(main, ["toyfaces", "train-generator", "--run-dir", str(tmp_path), "--steps", "4",
                                       "--d-condition", "none"])
    assert result.exit_code == 1 and "another --d-condition" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_discriminator_condition_is_refused_before_the_run_folder_exists(tmp_path):
    with pytest.raises(ValueError, match="--d-condition 'mask'"):
        train_generator(tmp_path / "run", steps=1, d_condition="mask", progress=False, **SMALL)
    assert not (tmp_path / "run").exists()
