"""Seed trials of a mask fit (`synthgen fit --trials`): each seed is fit briefly, scored by how
closely its large classes follow G's photo (photo_refinement.photo_agreement), and the best
one continues as if it had been a single run."""
import importlib
import json
from types import SimpleNamespace

import pytest
import torch

from _anchor_data import write_images, write_masks
from synthgen.anchors.anchor import load_anchor
from synthgen.anchors.fit import FitError
from synthgen.anchors.photo_refinement import PhotoRefinement, photo_agreement
from synthgen.generators.base import Synthesis
from synthgen.generators.presets import build_generator
from paper_fit import fit
from synthgen.anchors.fit import fit as fit_with_recipe

SKIN, HAIR, BROW = 0, 1, 2
OPTS = dict(batch_size=2, calibration_latents=8, progress=False, preview_every=0, checkpoint_every=2)


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


class _Photos:
    """A generator whose every photo is dark left of column 8 and bright right of it."""

    def sample_latents(self, indices, seed):
        return torch.zeros(len(indices), 1)

    def synthesize(self, latents, taps=()):
        rgb = torch.full((len(latents), 3, 16, 16), 0.6)
        rgb[..., :8] = -0.6
        return Synthesis(features=torch.zeros(len(latents), 1, 16, 16), rgb=rgb)


def _anchor_drawing_hair_up_to(column: int):
    logits = torch.zeros(1, 3, 16, 16)
    logits[:, HAIR, :, :column] = 2.0
    logits[:, SKIN, :, column:] = 2.0
    logits[:, BROW, 4, 12] = 5.0
    spec = SimpleNamespace(class_names=("skin", "hair", "brow"))
    return SimpleNamespace(spec=spec, size=16, tap="default", training=False, eval=lambda: None, train=lambda mode: None,
                           regress_heads=lambda syn: [logits.expand(syn.rgb.shape[0], -1, -1, -1)])


def test_photo_agreement_is_the_iou_of_each_large_class_with_its_photo_refinement():
    refinement = PhotoRefinement(classes=(SKIN, HAIR))
    on_the_edge = photo_agreement(_anchor_drawing_hair_up_to(8), _Photos(), refinement, n=5, seed=0, batch_size=2)
    spilled = photo_agreement(_anchor_drawing_hair_up_to(10), _Photos(), refinement, n=5, seed=0, batch_size=2)
    assert on_the_edge == {"skin": 1.0, "hair": 1.0}  # the refinement changes nothing: full agreement
    assert spilled["hair"] == pytest.approx(8 / 10)  # hair drawn over 10 columns, the photo's over 8
    assert spilled["skin"] < 1.0 and "brow" not in spilled  # parts are not scored


def test_trials_continue_the_best_seed_exactly_as_a_single_run_of_it(tmp_path, gen, monkeypatch):
    fit_module = importlib.import_module("synthgen.anchors.fit")  # the module: synthgen.anchors.fit names the function
    scores = iter([{"skin": 0.9, "hair": 0.5}, {"skin": 0.8, "hair": 0.7}, {"skin": 0.95, "hair": 0.6}])
    monkeypatch.setattr(fit_module, "photo_agreement", lambda *a, **k: next(scores))
    data = write_masks(tmp_path / "d")
    out = fit("seg", data, gen, tmp_path / "t.safetensors", run_dir=tmp_path / "run", steps=6, seed=3, trials=3,
              trial_steps=2, **OPTS)
    record = json.loads((tmp_path / "run" / "trials.json").read_text())
    assert record["seeds"] == [3, 4, 5] and record["chosen"] == 4  # the best worst class: 0.7 (seed 4)
    assert {s: r["worst"] for s, r in record["agreement"].items()} == {"3": 0.5, "4": 0.7, "5": 0.6}
    single = fit("seg", data, gen, tmp_path / "s.safetensors", run_dir=tmp_path / "single", steps=6, seed=4, **OPTS)
    a, b = load_anchor(out), load_anchor(single)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert a.metadata["training"]["seed"] == 4 and a.metadata["seed_trials"]["chosen"] == 4
    stats = [json.loads(line)["step"] for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert stats == list(range(1, 7))  # the trial's steps, then the continuation's


def test_a_rerun_resumes_the_trials_and_refuses_other_ones(tmp_path, gen, monkeypatch):
    fit_module = importlib.import_module("synthgen.anchors.fit")  # the module: synthgen.anchors.fit names the function
    calls = []
    monkeypatch.setattr(fit_module, "photo_agreement", lambda *a, **k: calls.append(1) or {"hair": 0.5 + 0.1 * len(calls)})
    data = write_masks(tmp_path / "d")
    run = dict(run_dir=tmp_path / "run", steps=4, seed=0, trials=2, trial_steps=2, **OPTS)
    first = load_anchor(fit("seg", data, gen, tmp_path / "a.safetensors", **run)).state_dict()
    assert len(calls) == 2 and json.loads((tmp_path / "run" / "trials.json").read_text())["chosen"] == 1
    # Interrupted before the second trial was scored: only that one is scored again.
    record = json.loads((tmp_path / "run" / "trials.json").read_text())
    del record["chosen"], record["agreement"]["1"]
    (tmp_path / "run" / "trials.json").write_text(json.dumps(record))
    again = load_anchor(fit("seg", data, gen, tmp_path / "b.safetensors", **run)).state_dict()
    assert len(calls) == 3 and all(torch.equal(first[k], again[k]) for k in first)
    fit("seg", data, gen, tmp_path / "c.safetensors", **run)  # chosen recorded: no trial runs or is scored
    assert len(calls) == 3
    with pytest.raises(FitError, match="records trials of seeds"):
        fit("seg", data, gen, tmp_path / "d.safetensors", **{**run, "trials": 3})
    fit("seg", data, gen, tmp_path / "e.safetensors", run_dir=tmp_path / "plain", steps=2, **OPTS)
    with pytest.raises(FitError, match="started without --trials"):
        fit("seg", data, gen, tmp_path / "f.safetensors", **{**run, "run_dir": tmp_path / "plain"})


def test_trials_need_a_mask_domain_and_fit_within_the_steps(tmp_path, gen):
    images = write_images(tmp_path / "i", channels=1)
    with pytest.raises(FitError, match="pass --trials 1"):
        fit("sketch", images, gen, tmp_path / "s.safetensors", steps=4, trials=2, trial_steps=2, **OPTS)
    masks = write_masks(tmp_path / "m")
    with pytest.raises(FitError, match="--trial-steps 5 exceeds --steps 4"):
        fit("seg", masks, gen, tmp_path / "m.safetensors", steps=4, trials=2, trial_steps=5, **OPTS)


def test_the_default_recipe_tries_three_seeds_on_a_mask_and_continues_an_older_run_as_it_was(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    opts = dict(OPTS, trial_steps=2)
    fit_with_recipe("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "run", steps=4, **opts)
    record = json.loads((tmp_path / "run" / "trials.json").read_text())
    assert record["seeds"] == [0, 1, 2] and record["chosen"] in (0, 1, 2)
    # A run folder from before trials were the recipe's default (no trials.json) resumes as one run.
    fit_with_recipe("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "old", steps=2, **opts)
    fit_with_recipe("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "old", steps=4, **opts)
    assert not (tmp_path / "old" / "trials").exists()
    assert load_anchor(tmp_path / "b.safetensors").metadata["training"]["seed"] == 0
    # A warm start (--init-from) has its start: no trials either.
    fit_with_recipe("seg", data, gen, tmp_path / "c.safetensors", run_dir=tmp_path / "warm", steps=4,
                    init_from=str(tmp_path / "a.safetensors"), **opts)
    assert not (tmp_path / "warm" / "trials").exists()
