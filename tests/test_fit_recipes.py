"""The fit recipes: what `synthgen fit` does with the options a user leaves unset, for each
domain kind and generator family (docs/anchors.md, "Recipes")."""
import json
from pathlib import Path

import pytest
import torch

from _anchor_data import write_masks
from synthgen.anchors.anchor import load_anchor
from synthgen.anchors.fit import FitError, fit
from synthgen.anchors.recipes import RECIPE_FIELDS, VALUES, resolve_recipe
from synthgen.anchors.spec import load_domain_spec
from synthgen.generators import load_generator
from synthgen.generators.presets import build_generator


@pytest.fixture(scope="module")
def stylegan():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


@pytest.fixture(scope="module")
def biggan(tmp_path_factory):
    from test_biggan import write_biggan_folder

    return load_generator(write_biggan_folder(tmp_path_factory.mktemp("g") / "biggan"))


def test_sampling_recipe_on_a_stylegan2_uses_every_term_its_domain_can(stylegan):
    seg = resolve_recipe("sampling", load_domain_spec("seg"), stylegan, {})
    # a mask domain on a StyleGAN2: z + prior, pyramid, every term but the cycle
    assert seg == {**VALUES["sampling"], "lambda_cycle": 0.0}
    landmark = resolve_recipe("sampling", load_domain_spec("landmark"), stylegan, {})
    assert (landmark["latent_space"], landmark["feature_tap"], landmark["lambda_cycle"], landmark["feature_noise"]) \
        == ("z", "pyramid", 1.0, 2.0)
    assert (landmark["class_balance"], landmark["align_radius"], landmark["align_start"]) == (0.0, 0, 0)  # masks only
    assert landmark["trials"] == 1  # trials score a mask's classes against the photo
    assert resolve_recipe("sampling", load_domain_spec("seg"), stylegan, {}, steps=3000, trial_steps=1000)["trials"] == 3
    assert resolve_recipe("sampling", load_domain_spec("seg"), stylegan, {}, steps=1999, trial_steps=1000)["trials"] == 1
    rgb = resolve_recipe("sampling", load_domain_spec("rgb"), stylegan, {})  # an encoder only
    assert (rgb["latent_space"], rgb["lambda_prior"], rgb["feature_tap"], rgb["lambda_cycle"], rgb["feature_noise"]) \
        == ("w+", 0.0, "default", 0.0, 0.0)


def test_sampling_recipe_on_biggan_leaves_off_what_it_lacks(biggan):
    seg = resolve_recipe("sampling", load_domain_spec("seg"), biggan, {})
    # no mapping network to land through and no multi-resolution tap; the terms stay
    assert (seg["latent_space"], seg["lambda_prior"], seg["feature_tap"]) == ("w+", 0.0, "default")
    assert (seg["lambda_cycle"], seg["feature_noise"], seg["class_balance"], seg["align_radius"]) == (0.0, 2.0, 0.5, 2)


def test_given_options_win_and_the_prior_follows_the_latent_space(stylegan):
    spec = load_domain_spec("seg")
    in_w = resolve_recipe("sampling", spec, stylegan, {"latent_space": "w+", "feature_noise": 0.5, "lr": None})
    assert (in_w["latent_space"], in_w["lambda_prior"], in_w["feature_noise"], in_w["lr"]) == ("w+", 0.0, 0.5, 5e-4)
    assert resolve_recipe("sampling", spec, stylegan, {"lambda_prior": 1.0})["lambda_prior"] == 1.0
    paper = resolve_recipe("paper", spec, stylegan, {"lambda_cycle": 1.0})
    assert paper == {**VALUES["paper"], "lambda_cycle": 1.0}
    assert set(paper) == set(RECIPE_FIELDS)


def test_a_default_fit_records_its_recipe_and_builds_what_it_resolved(tmp_path, stylegan, biggan):
    data = write_masks(tmp_path / "d")
    out = fit("seg", data, stylegan, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2, batch_size=4,
              calibration_latents=8, progress=False)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["recipe"] == "sampling"
    # two steps leave no room for seed trials of 1,000 steps: one run
    assert {k: config[k] for k in RECIPE_FIELDS} == {**VALUES["sampling"], "batch_size": 4, "lambda_cycle": 0.0,
                                                     "trials": 1}
    anchor = load_anchor(out, stylegan)
    assert anchor.encoder.cfg.latent_kind == "z" and anchor.tap == "pyramid"
    assert not anchor.regressor.cfg.batch_norm
    training = anchor.metadata["training"]
    assert training["recipe"] == "sampling" and training["feature_noise"] == 2.0 and training["lambda_cycle"] == 0.0
    rows = [json.loads(line) for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert "prior" in rows[-1] and "cycle" not in rows[-1]  # the prior ran; the cycle is left off
    # BigGAN-deep takes the same path with what it has
    fit("seg", data, biggan, tmp_path / "b.safetensors", run_dir=tmp_path / "rb", steps=1, batch_size=2,
        calibration_latents=0, progress=False)
    config = json.loads((tmp_path / "rb" / "config.json").read_text())
    assert (config["latent_space"], config["feature_tap"], config["lambda_cycle"]) == ("w+", "default", 0.0)
    # the cycle, left off by the recipe, still runs there when asked for
    fit("seg", data, biggan, tmp_path / "c.safetensors", run_dir=tmp_path / "rc", steps=1, batch_size=2,
        lambda_cycle=1.0, calibration_latents=0, progress=False)
    assert "cycle" in json.loads((tmp_path / "rc" / "stats.jsonl").read_text().splitlines()[-1])


def test_an_unknown_recipe_is_refused_in_one_line(tmp_path, stylegan):
    with pytest.raises(FitError, match="--recipe: unknown recipe 'fast'; use one of sampling, paper"):
        fit("seg", write_masks(tmp_path / "d"), stylegan, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=1, recipe="fast", progress=False)


def test_a_default_fit_on_real_stylegan2_checkpoints_takes_the_tiny_generators_path(tmp_path, stylegan, monkeypatch):
    # `synthgen fit` with its defaults on a rosinality .pt and an NVIDIA .pkl (small, random weights):
    # the same resolved recipe as on the project's own StyleGAN2, and `sample` labels with the anchor.
    from click.testing import CliRunner

    from synthgen.cli import main
    from test_checkpoint_readers import nvidia_state, save_nvidia_pkl, save_rosinality

    data = write_masks(tmp_path / "d")
    nv = nvidia_state(0)
    checkpoints = {"rosinality": save_rosinality(tmp_path / "g.pt", nv),
                   "nvidia": save_nvidia_pkl(tmp_path / "g.pkl", nv, monkeypatch)}
    fit("seg", data, stylegan, tmp_path / "own.safetensors", run_dir=tmp_path / "own", steps=2, batch_size=4,
        calibration_latents=8, progress=False)
    own = json.loads((tmp_path / "own" / "config.json").read_text())
    runner = CliRunner()
    for name, ckpt in checkpoints.items():
        anchors = tmp_path / f"anchors-{name}"
        result = runner.invoke(main, ["fit", "--domain", "seg", "--data", str(data), "--generator", str(ckpt),
                                      "--out", str(anchors / "seg.safetensors"), "--run-dir", str(tmp_path / f"run-{name}"),
                                      "--steps", "2", "--batch-size", "4", "--calibration-latents", "8", "--no-progress",
                                      "--preview-every", "0"])
        assert result.exit_code == 0, result.output
        config = json.loads((tmp_path / f"run-{name}" / "config.json").read_text())
        assert {k: config[k] for k in RECIPE_FIELDS} == {k: own[k] for k in RECIPE_FIELDS}, name
        result = runner.invoke(main, ["sample", "--generator", str(ckpt), "--anchors", str(anchors), "--domains", "rgb,seg",
                                      "--n", "2", "--batch-size", "2", "--out", str(tmp_path / f"sampled-{name}"),
                                      "--no-progress"])
        assert result.exit_code == 0, result.output
        card = json.loads((tmp_path / f"sampled-{name}" / "dataset.json").read_text())
        assert card["config"]["domains"] == ["rgb", "seg"] and card["config"]["anchors"]["seg"] != "generator"
    assert not Path("SHOULD_NOT_EXIST").exists()  # the pickle's module code never ran (it would touch this in the cwd)
