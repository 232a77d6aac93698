"""`fit --ema-decay`: the anchor written holds the moving average of E and R, and a resumed
run continues the same average."""
import pytest
import torch
from click.testing import CliRunner

from _anchor_data import write_masks
from paper_fit import fit
from synthgen.anchors.anchor import anchor_state, build_anchor, load_anchor
from synthgen.anchors.encoder import EncoderConfig
from synthgen.anchors.fit import FitError
from synthgen.anchors.spec import load_domain_spec
from synthgen.anchors.weight_average import WeightAverage
from synthgen.cli import main
from synthgen.generators import save_generator
from synthgen.generators.presets import build_generator


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


def _anchor(gen):
    return build_anchor(load_domain_spec("seg"), gen, 32,
                        EncoderConfig(in_channels=19, num_ws=gen.num_ws, latent_dim=gen.latent_dim))


def test_the_average_is_the_decay_weighted_mean_of_the_steps_weights(gen):
    anchor = _anchor(gen)
    start = {k: v.clone() for k, v in anchor_state(anchor).items()}
    name = next(k for k, v in start.items() if v.is_floating_point() and k.endswith("weight"))
    average = WeightAverage(anchor, decay=0.5)
    steps = []
    for step in range(3):  # the weights after each of three steps: start + 1, + 2, + 3
        with torch.no_grad():
            for p in anchor.parameters():
                p.add_(1.0)
        average.update(anchor)
        steps.append(anchor_state(anchor)[name].clone())
        if step == 0:  # the weights the fit started from get no weight
            torch.testing.assert_close(average.state[name], steps[0])
    expected = (0.25 * steps[0] + 0.5 * steps[1] + steps[2]) / 1.75
    torch.testing.assert_close(average.state[name], expected)
    copy = _anchor(gen)
    average.copy_to(copy)
    torch.testing.assert_close(anchor_state(copy)[name], expected)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(anchor, decay=1.0)


def test_fit_writes_the_average_and_a_resumed_run_continues_it(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=3, progress=False, preview_every=0, checkpoint_every=4, calibration_latents=0, ema_decay=0.9)
    full = fit("seg", data, gen, tmp_path / "full.safetensors", run_dir=tmp_path / "r1", steps=8, **opts)
    fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=4, **opts)
    resumed = fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=8, **opts)
    written, again = anchor_state(load_anchor(full)), anchor_state(load_anchor(resumed))
    assert all(torch.equal(written[k], again[k]) for k in written)
    ckpt = torch.load(tmp_path / "r1" / "checkpoint.pt", weights_only=True)
    average, last = ckpt["weight_average"]["state"], ckpt["anchor"]
    assert ckpt["weight_average"]["updates"] == 8
    assert all(torch.equal(written[k], average[k]) for k in written)  # the file holds the average ...
    assert any(not torch.equal(written[k], last[k]) for k in written)  # ... the checkpoint the weights to resume from
    assert load_anchor(full).metadata["training"]["ema_decay"] == 0.9
    with pytest.raises(FitError, match="ema_decay"):  # the average belongs to its run
        fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=10, **{**opts, "ema_decay": 0.5})


def test_cli_refuses_a_decay_of_one(tmp_path, gen):
    gen_file = save_generator(gen, tmp_path / "tiny.safetensors")
    data = write_masks(tmp_path / "d")
    result = CliRunner().invoke(main, ["fit", "--domain", "seg", "--data", str(data), "--generator", str(gen_file),
                                       "--out", str(tmp_path / "a.safetensors"), "--ema-decay", "1", "--steps", "1"])
    assert result.exit_code != 0 and "--ema-decay" in result.output
