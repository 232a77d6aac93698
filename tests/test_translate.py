import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from _anchor_data import write_images, write_keypoints, write_masks
from paper_fit import fit
from synthgen.anchors.translate import TranslateError, mix_fine_styles, translate
from synthgen.cli import main
from synthgen.generators import save_generator
from synthgen.generators.presets import build_generator


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny generator file and seg / sketch / landmark anchors fit for it (a few steps each)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("world")
    gen = build_generator("tiny", seed=0)
    gen_file = save_generator(gen, root / "tiny.safetensors")
    data = {"seg": write_masks(root / "seg", n=4), "sketch": write_images(root / "sketch", n=4),
            "landmark": write_keypoints(root / "landmark", n=4, num_points=68)}
    for domain, folder in data.items():
        fit(domain, folder, gen, root / "anchors" / f"{domain}.safetensors", run_dir=root / f"run-{domain}",
            steps=2, progress=False, feature_tap="pyramid" if domain == "landmark" else "default")
    return root, gen, gen_file, data


def test_mix_fine_styles_keeps_coarse_and_takes_fine():
    lat, styles = torch.randn(2, 8, 4), torch.randn(3, 8, 4)
    mixed = mix_fine_styles(lat, styles, fine_start=5)
    assert mixed.shape == (6, 8, 4)
    assert torch.equal(mixed[4, :5], lat[1, :5]) and torch.equal(mixed[4, 5:], styles[1, 5:])


def test_cli_translate_to_every_target(world, tmp_path):
    root, _, gen_file, data = world
    res = CliRunner().invoke(main, [
        "translate", str(data["seg"]), "--from", "seg", "--to", "rgb,sketch,landmark", "--generator", str(gen_file),
        "--anchors", str(root / "anchors"), "--out", str(tmp_path / "out"), "--batch-size", "3",
    ])
    assert res.exit_code == 0, res.output
    stems = sorted(p.stem for p in data["seg"].glob("*.png"))
    for target in ("rgb", "sketch", "landmark"):
        assert sorted(p.stem for p in (tmp_path / "out" / target).glob("*.png")) == stems
    assert Image.open(tmp_path / "out" / "rgb" / f"{stems[0]}.png").mode == "RGB"
    assert Image.open(tmp_path / "out" / "sketch" / f"{stems[0]}.png").mode == "L"
    assert np.load(tmp_path / "out" / "landmark" / f"{stems[0]}.npy").shape == (68, 2)


def test_translation_matches_the_chain_by_hand(world, tmp_path):
    from synthgen.anchors.anchor import load_anchor
    from synthgen.anchors.codecs import decode, read_file, to_input

    root, gen, _, data = world
    src = sorted(data["sketch"].glob("*.png"))[:2]
    translate("sketch", ["seg", "landmark"], gen, src, tmp_path, anchors=root / "anchors")
    e, r = load_anchor(root / "anchors" / "sketch.safetensors"), load_anchor(root / "anchors" / "seg.safetensors")
    lm = load_anchor(root / "anchors" / "landmark.safetensors")
    assert (r.tap, lm.tap) == ("default", "pyramid")  # two taps, one generator pass
    x = to_input(e.spec, torch.from_numpy(np.stack([read_file(e.spec, f, e.size) for f in src])), e.size)
    with torch.no_grad():
        expected = decode(r.spec, r.regress(gen.synthesize(e.encode(x))))["mask"]
        points = decode(lm.spec, lm.regress(gen.synthesize(e.encode(x), taps=("pyramid",))))["points"]
    for k, f in enumerate(src):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "seg" / f"{f.stem}.png")), expected[k])
        np.testing.assert_allclose(np.load(tmp_path / "landmark" / f"{f.stem}.npy"), points[k], atol=1e-5)


def test_multimodal_styles(world, tmp_path):
    root, gen, _, data = world
    src = sorted(data["seg"].glob("*.png"))[:1]
    files = translate("seg", ["rgb"], gen, src, tmp_path, anchors=root / "anchors", multimodal=3, seed=5)
    assert [f.name for f in files] == [f"{src[0].stem}_style{k:02d}.png" for k in range(3)]
    imgs = [np.asarray(Image.open(f)) for f in files]
    assert not np.array_equal(imgs[0], imgs[1])  # different fine styles, different colours


def test_translate_errors_are_one_line(world, tmp_path):
    root, _, gen_file, data = world
    other = save_generator(build_generator("tiny", seed=1), tmp_path / "other.safetensors")
    runner = CliRunner()

    def error_of(args):
        r = runner.invoke(main, ["translate", *args, "--out", str(tmp_path / "o")])
        lines = [ln for ln in r.output.splitlines() if ln.startswith("Error")]
        assert r.exit_code != 0 and len(lines) == 1 and "Traceback" not in r.output, r.output
        return lines[0]

    seg = str(data["seg"])
    msg = error_of([seg, "--from", "seg", "--to", "sketch", "--generator", str(other), "--anchors", str(root / "anchors")])
    assert "fit for generator" in msg and "fit the domain again" in msg
    msg = error_of([seg, "--from", "seg", "--to", "hair", "--generator", str(gen_file), "--anchors", str(root / "anchors")])
    assert "no anchor" in msg and "synthgen fit --domain hair" in msg
    msg = error_of([str(tmp_path / "nope.png"), "--from", "seg", "--to", "rgb", "--generator", str(gen_file),
                    "--anchors", str(root / "anchors")])
    assert "does not exist" in msg
    msg = error_of([seg, "--from", "seg", "--to", " , ", "--generator", str(gen_file), "--anchors", str(root / "anchors")])
    assert "--to" in msg and "name at least one" in msg  # once it wrote 0 files and reported success
    assert not (tmp_path / "o").exists()
    with pytest.raises(TranslateError):
        translate("seg", ["rgb"], gen_file, [seg, seg], tmp_path, anchors=root / "anchors")
    with pytest.raises(TranslateError, match="at least one target"):
        translate("seg", [], gen_file, [seg], tmp_path / "none", anchors=root / "anchors")


def test_z_space_anchor_translates_through_the_mapping(world, tmp_path):
    from synthgen.anchors.anchor import load_anchor
    from synthgen.anchors.codecs import decode, read_file, to_input
    from synthgen.anchors.encoder import style_split

    root, gen, _, data = world
    fit("sketch", data["sketch"], gen, tmp_path / "anchors" / "sketch.safetensors", run_dir=tmp_path / "run",
        steps=2, batch_size=2, latent_space="z", lambda_prior=1.0, progress=False)
    (tmp_path / "anchors" / "seg.safetensors").write_bytes((root / "anchors" / "seg.safetensors").read_bytes())
    src = sorted(data["sketch"].glob("*.png"))[:2]
    translate("sketch", ["seg"], gen, src, tmp_path / "out", anchors=tmp_path / "anchors")
    e, r = load_anchor(tmp_path / "anchors" / "sketch.safetensors"), load_anchor(tmp_path / "anchors" / "seg.safetensors")
    x = to_input(e.spec, torch.from_numpy(np.stack([read_file(e.spec, f, e.size) for f in src])), e.size)
    with torch.no_grad():
        latents = e.encode(x, gen)
        expected = decode(r.spec, r.regress(gen.synthesize(latents)))["mask"]
    for k, f in enumerate(src):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "seg" / f"{f.stem}.png")), expected[k])
    # Multimodal: the coarse entries of the mapped z stay, the fine ones come from K styles.
    files = translate("sketch", ["seg"], gen, src[:1], tmp_path / "mm", anchors=tmp_path / "anchors", multimodal=2, seed=5)
    mixed = mix_fine_styles(latents[:1], gen.sample_latents([0, 1], 5), style_split(gen.num_ws)[1])
    with torch.no_grad():
        expected = decode(r.spec, r.regress(gen.synthesize(mixed)))["mask"]
    assert [np.array_equal(np.asarray(Image.open(f)), expected[k]) for k, f in enumerate(files)] == [True, True]
