"""scripts/eval_generator_fidelity.py on the shipped world: what EVAL.md's generator rows read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from script_module import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    return load_script("eval_generator_fidelity")


def test_judge_scores_renders_far_above_blurred_renders_and_reports_the_frechet_distance(script, tmp_path):
    result = CliRunner().invoke(script.main, [
        "--generator", str(ROOT / "domains" / "generator.safetensors"), "--judge", str(ROOT / "domains" / "segmenter.safetensors"),
        "--n", "12", "--batch-size", "6", "--split", "validation", "--blur-sigmas", "2", "--grid", str(tmp_path / "grid.png"),
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["n"] == 12 and 0 < out["ssim"] < 1 and out["psnr"] > 15
    assert out["judge_render_miou"] > out["judge_render_blur2_miou"] + 0.2  # the judge cannot read blur
    assert out["frechet_judge_features"] > 0  # G's photos are not the renders
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_blur_keeps_the_image_and_smooths_an_edge(script):
    import numpy as np

    step = np.zeros((1, 9, 9, 3), np.uint8)
    step[:, :, 5:] = 200
    blurred = script.gaussian_blur(step, 1.0)
    assert blurred.shape == step.shape and blurred.dtype == np.uint8
    row = blurred[0, 4, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 200 and 0 < row[4] < row[5] < 200  # monotone ramp across the edge


def test_factor_gains_are_one_for_the_renderer_itself_and_zero_for_a_fixed_picture(script):
    import numpy as np
    import torch

    from synthgen.builtin.train_generator import render_rgb

    def render(z):
        return render_rgb(z, 32)

    z = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32))
    same = script.factor_gains(render, render, z)
    assert len(same) == 64
    moving = [v for v in same.values() if v["render_rms"] > 0]
    assert len(moving) > 50 and all(v["gain"] == pytest.approx(1) and v["cos"] == pytest.approx(1) for v in moving)
    assert all(v["gain_coarse"] == pytest.approx(1) for v in moving if v["gain_coarse"] is not None)
    fixed = script.factor_gains(lambda z: torch.zeros(len(z), 3, 32, 32), render, z)
    assert all(v["gain"] in (0, None) for v in fixed.values())  # a generator that ignores z gains nothing


def test_the_shipped_generator_follows_colour_slots_and_the_report_counts_ignored_ones(script):
    result = CliRunner().invoke(script.main, [
        "--generator", str(ROOT / "domains" / "generator.safetensors"), "--n", "4", "--split", "validation", "--factors", "4",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["factors"]["bg_value"]["gain"] > 0.8  # the background's brightness is reproduced
    assert out["factors"]["bg_value"]["w_change"] > 0  # and passed on by the mapping
    assert 0 <= out["factors_ignored"] <= 64 and 0 < out["factor_gain_mean"] < 1


def test_projection_scores_the_photos_at_projected_latents_and_they_match_the_renders_better(script):
    result = CliRunner().invoke(script.main, [
        "--generator", str(ROOT / "domains" / "generator.safetensors"), "--judge", str(ROOT / "domains" / "segmenter.safetensors"),
        "--n", "2", "--split", "validation", "--blur-sigmas", "", "--project-steps", "12,1", "--project-space", "wplus",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out["psnr_projected"]) == ["projected_wplus1", "projected_wplus12"]
    assert out["psnr_projected"]["projected_wplus12"] > out["psnr_projected"]["projected_wplus1"] > out["psnr"] - 0.5
    assert 0 <= out["judge_projected_wplus12_miou"] <= 1 and "l_eye" in out["judge_projected_wplus12_iou"]


@pytest.mark.parametrize("steps, message", [("10,x", "comma-separated"), ("0", ">= 1")])
def test_projection_refuses_step_counts_it_cannot_run(script, steps, message):
    result = CliRunner().invoke(script.main, [
        "--generator", str(ROOT / "domains" / "generator.safetensors"), "--n", "1", "--project-steps", steps,
    ])
    assert result.exit_code != 0 and message in result.output
