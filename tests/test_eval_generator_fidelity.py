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
