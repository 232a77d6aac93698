"""scripts/probe_generator_range.py: the per-slot probe and the mapping correction (the projection: test_projection.py)."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from script_module import load_script
from synthgen.generators.presets import build_generator, build_stylegan2


@pytest.fixture(scope="module")
def script():
    return load_script("probe_generator_range")


def test_corrected_mapping_adds_the_mean_direction_per_unit_of_the_slot(script):
    G = build_stylegan2("toyfaces64", seed=0).eval().requires_grad_(False)
    z = torch.randn(256, G.cfg.z_dim, generator=torch.Generator().manual_seed(2))
    unit = torch.zeros(G.cfg.z_dim)
    unit[3] = 1.0
    with torch.no_grad():
        old_step = (G.mapping(z + unit) - G.mapping(z)).mean(0)
    per_face = torch.randn(5, G.cfg.w_dim, generator=torch.Generator().manual_seed(3)) * 0.2 + 0.3
    script.corrected_mapping(G, {3: per_face}, scale=2.0, steps=600)
    with torch.no_grad():
        new_step = (G.mapping(z + unit) - G.mapping(z)).mean(0)
    wanted = old_step + 2.0 * per_face.mean(0)
    assert float((new_step - wanted).norm()) < 0.25 * float((2.0 * per_face.mean(0)).norm())
    assert not any(p.requires_grad for p in G.parameters())


def test_cli_reports_both_gains_saves_directions_and_a_loadable_corrected_generator(script, tmp_path):
    from synthgen.generators import load_generator
    from synthgen.generators.native import save_generator

    path = tmp_path / "G.safetensors"
    save_generator(build_generator("toyfaces64", seed=0), path)
    result = CliRunner().invoke(script.main, [
        "--generator", str(path), "--slots", "yaw", "--faces", "2", "--steps", "2", "--split", "validation",
        "--directions-out", str(tmp_path / "dirs.pt"), "--corrected-out", str(tmp_path / "G2.safetensors"),
        "--correction-steps", "20",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    yaw = out["slots"]["yaw"]
    assert set(yaw["mapping"]) == {"gain", "gain_coarse", "l1"} and set(yaw["projected"]) == {"gain", "gain_coarse", "l1"}
    assert len(yaw["direction_norm"]) == 2 and yaw["mapping_norm"] > 0
    assert torch.load(tmp_path / "dirs.pt")["yaw"].shape == (2, 256)
    corrected = load_generator(tmp_path / "G2.safetensors")
    assert corrected.generator.cfg.to_dict() == load_generator(path).generator.cfg.to_dict()


def test_cli_refuses_unknown_slots_and_a_generator_of_another_latent_size(script, tmp_path):
    from synthgen.generators.native import save_generator

    path = tmp_path / "tiny.safetensors"
    save_generator(build_generator("tiny", seed=0), path)
    result = CliRunner().invoke(script.main, ["--generator", str(path)])
    assert result.exit_code != 0 and "z_dim 64" in result.output
    path64 = tmp_path / "G.safetensors"
    save_generator(build_generator("toyfaces64", seed=0), path64)
    result = CliRunner().invoke(script.main, ["--generator", str(path64), "--slots", "yaw,nose_tilt"])
    assert result.exit_code != 0 and "nose_tilt" in result.output
