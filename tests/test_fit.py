import hashlib
import importlib
import json

import numpy as np
import pytest
from PIL import Image
import torch
from click.testing import CliRunner

from _anchor_data import DOMAIN_KINDS, domain_of_kind, write_images, write_keypoint_spec, write_keypoints, write_masks
from synthgen.anchors.anchor import build_anchor, load_anchor
from paper_fit import fit
from synthgen.anchors.fit import FitError
from synthgen.anchors.fit import fit as fit_with_recipe
from synthgen.cli import main
from synthgen.generators import save_generator
from synthgen.generators.presets import build_generator
from synthgen.schedules import cosine_lr


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


@pytest.fixture(scope="module")
def gen_file(gen, tmp_path_factory):
    return save_generator(gen, tmp_path_factory.mktemp("g") / "tiny.safetensors")


def _stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def _mean(rows, key):
    return sum(r[key] for r in rows) / len(rows)


@pytest.mark.parametrize("kind", DOMAIN_KINDS)
def test_fit_each_kind_reduces_the_loss(tmp_path, gen, kind):
    domain, data = domain_of_kind(kind, tmp_path)
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    out = fit(domain, data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "run", steps=30, batch_size=4,
              preview_every=15, progress=False)
    rows = _stats(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert _mean(rows[-5:], "rec") < 0.9 * _mean(rows[:5], "rec")
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())  # G stays frozen
    anchor = load_anchor(out, gen)
    assert anchor.metadata["steps"] == 30 and set(anchor.metadata["final_losses"]) >= {"rec", "latent"}
    assert (anchor.regressor is None) == (kind == "rgb")
    assert sorted(p.name for p in (tmp_path / "run" / "previews").iterdir()) == ["step_0000015.png", "step_0000030.png"]


def test_resumed_run_equals_uninterrupted_run(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=3, progress=False, preview_every=0, checkpoint_every=5)
    full = fit("seg", data, gen, tmp_path / "full.safetensors", run_dir=tmp_path / "r1", steps=10, **opts)
    fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=5, **opts)
    assert torch.load(tmp_path / "r2" / "checkpoint.pt", weights_only=True)["step"] == 5
    resumed = fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=10, **opts)
    a, b = load_anchor(full).state_dict(), load_anchor(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _stats(tmp_path / "r1") == _stats(tmp_path / "r2")


def test_a_cosine_schedule_ends_at_lr_final_and_resumes_on_it(tmp_path, gen, monkeypatch):
    fit_module = importlib.import_module("synthgen.anchors.fit")  # the module: synthgen.anchors.fit names the function

    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=3, lr=1e-3, lr_final=1e-5, progress=False, preview_every=0, checkpoint_every=4)
    full = fit("seg", data, gen, tmp_path / "full.safetensors", run_dir=tmp_path / "r1", steps=8, **opts)
    rates = [r["lr"] for r in _stats(tmp_path / "r1")]
    assert rates[0] == pytest.approx(1e-3) and rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(cosine_lr(7, 8, 1e-3, 1e-5)) and rates[-1] < 1e-4

    def interrupted(step, *args):  # the run is stopped after its step-4 checkpoint
        if step == 5:
            raise KeyboardInterrupt
        return cosine_lr(step, *args)

    monkeypatch.setattr(fit_module, "cosine_lr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=8, **opts)
    monkeypatch.undo()
    resumed = fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=8, **opts)
    assert [r["lr"] for r in _stats(tmp_path / "r2")] == rates  # the same schedule, continued
    a, b = load_anchor(full).state_dict(), load_anchor(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_anchor(full).metadata["training"]["lr_final"] == 1e-5
    with pytest.raises(FitError, match="different lr_final"):
        fit("seg", data, gen, tmp_path / "c.safetensors", run_dir=tmp_path / "r2", steps=9, **{**opts, "lr_final": 1e-4})


def test_resume_with_other_settings_is_refused(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2, progress=False)
    with pytest.raises(FitError, match="different lr"):
        fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=4, lr=1e-3, progress=False)


def test_adversarial_loss_with_real_photos(tmp_path, gen):
    data, real = write_images(tmp_path / "d"), write_images(tmp_path / "real", channels=3)
    fit("sketch", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=3, real_rgb=real, progress=False)
    rows = _stats(tmp_path / "r")
    assert all("adv" in r and "d" in r for r in rows)
    assert rows[0]["loss"] == pytest.approx(10 * rows[0]["rec"] + 0.02 * rows[0]["latent"] + 0.02 * rows[0]["adv"], rel=1e-5)
    with pytest.raises(FitError, match="--real-rgb"):
        fit("sketch", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "r2", steps=1, lambda_adv=0.1, progress=False)


def test_adding_a_domain_leaves_existing_anchors_byte_identical(tmp_path, gen):
    anchors = tmp_path / "anchors"
    for domain, data in (("seg", write_masks(tmp_path / "seg")), ("sketch", write_images(tmp_path / "sketch"))):
        fit(domain, data, gen, anchors / f"{domain}.safetensors", run_dir=tmp_path / f"run-{domain}", steps=2, progress=False)

    def digests():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(anchors.iterdir())}

    before = digests()
    spec = write_keypoint_spec(tmp_path / "dots.json")
    fit(str(spec), write_keypoints(tmp_path / "kp"), gen, anchors / "dots.safetensors", run_dir=tmp_path / "run-dots",
        steps=2, progress=False)
    after = digests()
    assert set(after) == set(before) | {"dots.safetensors"}
    assert all(after[name] == digest for name, digest in before.items())


def test_cli_fit_and_its_one_line_errors(tmp_path, gen_file):
    runner = CliRunner()
    data = write_masks(tmp_path / "seg")
    args = ["fit", "--domain", "seg", "--data", str(data), "--generator", str(gen_file), "--steps", "3",
            "--no-progress", "--run-dir", str(tmp_path / "run")]
    res = runner.invoke(main, args + ["--out", str(tmp_path / "a" / "seg.safetensors")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "seg.safetensors").is_file() and "wrote" in res.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["n_files"] == 8

    def error_of(extra):
        r = runner.invoke(main, extra)
        assert r.exit_code != 0 and not isinstance(r.exception, (TypeError, RuntimeError)), r.output
        lines = [ln for ln in r.output.splitlines() if ln.startswith("Error")]
        assert len(lines) == 1 and "Traceback" not in r.output, r.output
        return lines[0]

    base = ["fit", "--generator", str(gen_file), "--out", str(tmp_path / "x.safetensors"), "--no-progress", "--steps", "1",
            "--run-dir", str(tmp_path / "r2")]
    assert "does not exist" in error_of(base + ["--domain", "seg", "--data", str(tmp_path / "missing")])
    write_masks(tmp_path / "bad", n=2)
    Image.fromarray(np.full((8, 8), 23, np.uint8), mode="L").save(tmp_path / "bad" / "zz.png")
    assert "out of range" in error_of(base + ["--domain", "seg", "--data", str(tmp_path / "bad")])
    assert "unknown domain 'hair'" in error_of(base + ["--domain", "hair", "--data", str(data)])
    assert "fp16" in error_of(base + ["--domain", "seg", "--data", str(data), "--device", "cpu", "--mixed-precision", "fp16"])
    if not torch.cuda.is_available():
        assert "no CUDA device" in error_of(base + ["--domain", "seg", "--data", str(data), "--device", "cuda"])


def test_working_side_larger_than_the_tap_upsamples_features(tmp_path, gen):
    out = fit("seg", write_masks(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
              steps=1, size=64, progress=False)
    anchor = load_anchor(out, gen)
    assert anchor.size == 64 and anchor.regressor.cfg.out_size == 64 and gen.feature_resolution == 32
    with torch.no_grad():
        raw = anchor.regress(gen.synthesize(anchor.encode(torch.zeros(1, 19, 64, 64))))
    assert raw.shape == (1, 19, 64, 64)


def test_z_latent_space_anchors_through_the_frozen_mapping(tmp_path, gen):
    out = fit("seg", write_masks(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
              steps=4, batch_size=2, latent_space="z", progress=False)
    anchor = load_anchor(out, gen)
    assert anchor.through_mapping and anchor.encoder.cfg.latent_dim == gen.z_dim and anchor.encoder.cfg.num_ws == 1
    x = torch.zeros(2, 19, 32, 32)
    with torch.no_grad():
        z = anchor.encoder(x)[:, 0]
        latents = anchor.encode(x, gen)
    # Every encoded latent is G's own mapping of one z: the region G was trained on.
    assert torch.allclose(latents, gen.map(z)) and torch.equal(latents[:, 0], latents[:, -1])
    assert torch.count_nonzero(anchor.latent_center(gen)) == 0
    with pytest.raises(ValueError, match="needs the generator"):
        anchor.encode(x)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["latent_space"] == "z"
    with pytest.raises(FitError, match="different latent_space"):
        fit("seg", write_masks(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=6, batch_size=2, progress=False)


def test_z_latent_space_needs_a_mapping_network(tmp_path):
    from test_biggan import write_biggan_folder
    from synthgen.generators import load_generator

    biggan = load_generator(write_biggan_folder(tmp_path / "biggan"))  # z-space: no mapping network to anchor through
    with pytest.raises(FitError, match="mapping network"):
        fit("seg", write_masks(tmp_path / "d"), biggan, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=1, latent_space="z", progress=False)


def test_prior_matching_is_logged_and_weighted(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2, batch_size=3, latent_space="z",
        lambda_prior=0.5, regressor_batch_norm=False, regressor_widths=(8,), progress=False)
    rows = _stats(tmp_path / "r")
    assert rows[0]["loss"] == pytest.approx(rows[0]["rec"] + 0.005 * rows[0]["latent"] + 0.5 * rows[0]["prior"], rel=1e-5)
    anchor = load_anchor(tmp_path / "a.safetensors", gen)
    assert anchor.regressor.cfg.widths == (8,) and not anchor.regressor.cfg.batch_norm
    with pytest.raises(FitError, match="latent-space z"):
        fit("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "r2", steps=1, lambda_prior=1.0, progress=False)
    with pytest.raises(FitError, match="batch-size 2"):
        fit("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "r3", steps=1, batch_size=1,
            latent_space="z", lambda_prior=1.0, progress=False)


def test_a_run_from_before_a_loss_term_existed_resumes(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2, progress=False)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    del config["weights"]["prior"]  # a term added in a later version, absent from older run folders
    del config["feature_tap"]  # as is the tap choice (such runs read the default tap)
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=3, progress=False)
    assert [r["step"] for r in _stats(tmp_path / "r")] == [1, 2, 3]
    # A run from before recipes ran with the paper's values; the default recipe differs, and the
    # refusal says which recipe continues it.
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    del config["recipe"]
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FitError, match="add --recipe paper"):
        fit_with_recipe("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=4, progress=False)
    # A run whose anchoring values the defaults no longer give (a recipe's values may change
    # between versions) is refused with the flags that continue it, and continues with them.
    fit_with_recipe("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "s", steps=1, feature_noise=0.5,
                    regressor_batch_norm=True, calibration_latents=0, progress=False)
    with pytest.raises(FitError, match=r"it ran with --regressor-batch-norm --feature-noise 0\.5: add them"):
        fit_with_recipe("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "s", steps=2,
                        calibration_latents=0, progress=False)
    fit_with_recipe("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "s", steps=2, feature_noise=0.5,
                    regressor_batch_norm=True, calibration_latents=0, progress=False)
    assert [r["step"] for r in _stats(tmp_path / "s")] == [1, 2]


def test_fit_with_a_finest_head_trains_both_heads_and_takes_a_one_head_anchors_head(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=4, feature_tap="pyramid", preview_every=0, progress=False)
    one = fit("seg", data, gen, tmp_path / "one.safetensors", run_dir=tmp_path / "r1", steps=3, lr=5e-4, **opts)
    # lr 0: the main head is the one-head anchor's, the finest head is new
    again = load_anchor(fit("seg", data, gen, tmp_path / "two0.safetensors", run_dir=tmp_path / "r0", steps=1, lr=0.0,
                            init_from=str(one), finest_head=True, calibration_latents=0, **opts))
    a, b = load_anchor(one).state_dict(), again.state_dict()
    main = [k for k in a if k.startswith("regressor.") and "running" not in k and "num_batches" not in k]
    assert main and all(torch.equal(a[k], b[k]) for k in main)
    assert again.regressor.cfg.finest_channels == gen.finest_tap_channels("pyramid")
    out = fit("seg", data, gen, tmp_path / "two.safetensors", run_dir=tmp_path / "r2", steps=30, lr=5e-4,
              finest_head=True, **opts)
    rows = _stats(tmp_path / "r2")
    assert _mean(rows[-5:], "rec") < 0.9 * _mean(rows[:5], "rec")  # the mean of both heads' losses falls
    trained = load_anchor(out, gen)
    fresh = build_anchor(trained.spec, gen, trained.size, trained.encoder.cfg, tap="pyramid", finest_head=True)
    for head in ("net", "finest"):  # each head learned (the calibration only moves the last biases)
        w = f"regressor.{head}.0.weight"
        assert not torch.allclose(trained.state_dict()[w], fresh.state_dict()[w])
    with pytest.raises(FitError, match="different finest_head"):
        fit("seg", data, gen, tmp_path / "two.safetensors", run_dir=tmp_path / "r2", steps=31, lr=5e-4, **opts)
    with pytest.raises(FitError, match="own photo.*--finest-head"):
        fit("rgb", write_images(tmp_path / "i", channels=3), gen, tmp_path / "r.safetensors", run_dir=tmp_path / "rr",
            steps=1, finest_head=True, progress=False)


def test_the_finest_heads_loss_trains_that_head_and_not_the_encoder(gen):
    from synthgen.anchors.encoder import EncoderConfig
    from synthgen.anchors.fit import AnchorStep
    from synthgen.anchors.spec import load_domain_spec

    spec = load_domain_spec("seg")
    enc = EncoderConfig(in_channels=spec.in_channels, num_ws=gen.num_ws, latent_dim=gen.latent_dim)
    anchor = build_anchor(spec, gen, 32, enc, tap="pyramid", finest_head=True)
    step = AnchorStep(anchor, cycle=False).train()
    masks = torch.randint(0, spec.num_classes, (2, 32, 32))
    x = torch.nn.functional.one_hot(masks, spec.num_classes).permute(0, 3, 1, 2).float()
    main, finest = step(x, gen)[2]
    finest.square().mean().backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in anchor.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in anchor.regressor.finest.parameters())
    main.square().mean().backward()  # the main head's loss still anchors the encoder
    assert any(p.grad is not None and p.grad.any() for p in anchor.encoder.parameters())


def test_fit_on_the_pyramid_tap_records_it_and_refuses_it_where_meaningless(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    out = fit("seg", data, gen, tmp_path / "p.safetensors", run_dir=tmp_path / "rp", steps=30, batch_size=4, lr=5e-4,
              feature_tap="pyramid", preview_every=0, progress=False)
    rows = _stats(tmp_path / "rp")
    assert _mean(rows[-5:], "rec") < 0.9 * _mean(rows[:5], "rec")
    anchor = load_anchor(out, gen)
    assert anchor.tap == "pyramid" and anchor.regressor.cfg.in_channels == gen.tap_channels("pyramid")
    with pytest.raises(FitError, match="different feature_tap"):  # resuming it on another tap
        fit("seg", data, gen, tmp_path / "p.safetensors", run_dir=tmp_path / "rp", steps=31, lr=5e-4, progress=False, batch_size=4)
    with pytest.raises(FitError, match="own photo.*no regressor"):
        fit("rgb", write_images(tmp_path / "i", channels=3), gen, tmp_path / "r.safetensors", run_dir=tmp_path / "rr",
            steps=1, feature_tap="pyramid", progress=False)
    with pytest.raises(FitError, match="no feature tap 'middle'"):
        fit("seg", data, gen, tmp_path / "m.safetensors", run_dir=tmp_path / "rm", steps=1, feature_tap="middle", progress=False)
