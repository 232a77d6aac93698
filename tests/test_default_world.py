"""The shipped default world: `synthgen sample` works with no --generator or --anchors."""
import json

import pytest
from click.testing import CliRunner

from synthgen.anchors import load_anchor
from synthgen.anchors.spec import builtin_domains_dir
from synthgen.cli import main
from synthgen.generators import load_generator
from synthgen.toyfaces import Z_DIM

DOMAINS = ("rgb", "seg", "sketch", "landmark")


@pytest.fixture(scope="module")
def generator():
    return load_generator(builtin_domains_dir() / "generator.safetensors")


def test_shipped_generator_imitates_the_renderer_latent(generator):
    assert generator.z_dim == Z_DIM and generator.resolution == 64


@pytest.mark.parametrize("domain", DOMAINS)
def test_shipped_anchor_belongs_to_the_shipped_generator(generator, domain):
    anchor = load_anchor(builtin_domains_dir() / f"{domain}.safetensors", generator)  # raises on mismatch
    assert anchor.spec.name == domain


def test_files_stay_under_the_size_limit():
    for path in builtin_domains_dir().glob("*.safetensors"):
        assert path.stat().st_size < 20 * 2**20, path


@pytest.mark.slow
def test_sample_with_the_defaults_writes_a_verified_dataset(tmp_path):
    out = tmp_path / "demo"
    runner = CliRunner()
    result = runner.invoke(main, ["sample", "--n", "4", "--shard-size", "2", "--batch-size", "2", "--domains",
                                  ",".join(DOMAINS), "--out", str(out), "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(main, ["verify", str(out)]).exit_code == 0
    card = json.loads((out / "dataset.json").read_text())
    assert card["config"]["domains"] == list(DOMAINS)
    result = runner.invoke(main, ["eval", "labels", str(out)])
    assert result.exit_code == 0, result.output
    assert 0.0 < json.loads(result.output)["pixel_accuracy"] <= 1.0
