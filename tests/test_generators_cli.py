"""`synthgen convert` and `synthgen info` through the real command group."""
import json

import torch
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.generators import load_generator, save_generator
from synthgen.generators.presets import build_generator




def test_convert_then_info(tmp_path):
    gen = build_generator("tiny", seed=3)
    src = tmp_path / "g.pt"
    state = {k.removeprefix("generator.").removeprefix("synthesis."): v for k, v in gen.state_dict().items() if k != "latent_avg"}
    torch.save({"g_ema": state, "latent_avg": gen.w_avg}, src)
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(src), str(tmp_path / "g.safetensors")])
    assert res.exit_code == 0, res.output
    assert "stylegan2, 32px" in res.output
    back = load_generator(tmp_path / "g.safetensors")
    assert back.fingerprint == gen.fingerprint
    res = runner.invoke(main, ["info", "--json", str(tmp_path / "g.safetensors")])
    facts = json.loads(res.output)
    assert facts["format"] == "native" and facts["kind"] == "stylegan2"
    assert (facts["resolution"], facts["num_ws"], facts["latent_dim"], facts["z_dim"]) == (32, 8, 32, 16)
    assert (facts["feature_channels"], facts["feature_resolution"]) == (16, 32)
    assert facts["extra_taps"] == {"pyramid": gen.tap_channels("pyramid")}
    assert facts["fingerprint"] == gen.fingerprint
    assert facts["parameters"] == sum(p.numel() for p in gen.parameters())
    res = runner.invoke(main, ["info", str(src)])
    assert res.exit_code == 0 and "rosinality" in res.output


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 definitely not a zip")
    res = CliRunner().invoke(main, ["info", str(tmp_path / "junk.pt")])
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and "junk.pt" in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
    save_generator(build_generator("tiny", seed=0), tmp_path / "ok.safetensors")
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "junk.pt"), str(tmp_path / "out.safetensors")])
    assert res.exit_code == 1 and not (tmp_path / "out.safetensors").exists()


def test_every_option_is_documented():
    from pathlib import Path

    from synthgen.generators.cli import convert, info

    doc = (Path(__file__).resolve().parents[1] / "docs" / "generators.md").read_text()
    for command in (convert, info):
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in doc, f"{command.name} {opt} is not in docs/generators.md"
