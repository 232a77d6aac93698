import hashlib
import json

import pytest
import torch
from torch import nn

from synthgen.anchors.anchor import AnchorFileError, AnchorMismatchError, build_anchor, load_anchor, save_anchor
from synthgen.anchors.encoder import Encoder, EncoderConfig, style_split
from synthgen.anchors.regressor import Regressor, RegressorConfig
from synthgen.anchors.spec import load_domain_spec
from synthgen.generators.presets import build_generator


@pytest.fixture(scope="module")
def gen():
    return build_generator("tiny", seed=0)


def test_style_split_follows_psp_proportions():
    assert style_split(18) == (3, 7)  # pSp: 3 coarse, 4 middle, 11 fine
    coarse, middle = style_split(8)
    assert 1 <= coarse < middle < 8
    assert style_split(1) == (1, 1)  # z-space: one global code


@pytest.mark.parametrize("trunk", ["resnet18-small", "resnet18"])
def test_encoder_predicts_offsets_from_w_avg(trunk):
    w_avg = torch.randn(32)
    enc = Encoder(EncoderConfig(trunk=trunk, in_channels=19, num_ws=8, latent_dim=32), 64, w_avg)
    out = enc(torch.randn(2, 19, 64, 64))
    assert out.shape == (2, 8, 32)
    for head in enc.heads:  # zero heads -> exactly the average latent
        nn.init.zeros_(head.linear.weight)
        nn.init.zeros_(head.linear.bias)
    assert torch.equal(enc(torch.randn(2, 19, 64, 64)), w_avg.expand(2, 8, 32))


def test_z_space_encoder_outputs_z_directly():
    enc = Encoder(EncoderConfig(in_channels=3, num_ws=1, latent_dim=16, latent_kind="z+class"), 32, torch.ones(16))
    for head in enc.heads:
        nn.init.zeros_(head.linear.weight)
        nn.init.zeros_(head.linear.bias)
    assert torch.equal(enc(torch.randn(3, 3, 32, 32)), torch.zeros(3, 1, 16))


def test_regressor_is_the_weak_1x1_head():
    reg = Regressor(RegressorConfig(in_channels=16, out_channels=19, out_size=64))
    convs = [m for m in reg.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 64, 64, 32, 32, 19]
    assert all(c.kernel_size == (1, 1) for c in convs)
    assert isinstance(reg.net[1], nn.ReLU) and isinstance(reg.net[2], nn.BatchNorm2d)
    assert isinstance(reg.net[-1], nn.Conv2d)  # no output activation
    assert reg(torch.randn(2, 16, 32, 32)).shape == (2, 19, 64, 64)


def test_regressor_without_batch_norm_and_linear_regressor():
    reg = Regressor(RegressorConfig(in_channels=16, out_channels=19, batch_norm=False))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in reg.modules())
    assert [type(m) for m in reg.net[:2]] == [nn.Conv2d, nn.ReLU]
    linear = Regressor(RegressorConfig(in_channels=16, out_channels=19, widths=()))
    assert len(linear.net) == 1 and linear.net[0].kernel_size == (1, 1)
    assert RegressorConfig.from_dict({"in_channels": 16, "out_channels": 19}).batch_norm  # older files: the paper's


def test_shell_projection_and_prior_matching():
    from synthgen.anchors.anchor import project_to_shell
    from synthgen.anchors.losses import prior_matching_loss

    z = project_to_shell(torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]]))
    assert torch.allclose(z, torch.tensor([[1.2, 1.6, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]))  # norm sqrt(4) = 2
    # mean per dim (0.6, 0.8, 0, 1) -> 0.5 / 4; unbiased var (0.72, 1.28, 0, 2) -> ((-.28)^2 + .28^2 + 1 + 1) / 4
    expected = (0.36 + 0.64 + 0 + 1) / 4 + (0.0784 + 0.0784 + 1 + 1) / 4
    assert prior_matching_loss(z).item() == pytest.approx(expected, rel=1e-5)
    assert prior_matching_loss(torch.randn(20000, 8)).item() < 1e-2  # the prior itself costs ~nothing


def _trained_like(anchor):
    with torch.no_grad():
        for p in anchor.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    for m in anchor.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_()
            m.num_batches_tracked.fill_(7)
    return anchor


def test_anchor_file_round_trip_is_bit_exact(tmp_path, gen):
    spec = load_domain_spec("seg")
    anchor = _trained_like(build_anchor(spec, gen, 32, EncoderConfig(in_channels=19, num_ws=gen.num_ws, latent_dim=gen.latent_dim)))
    anchor.metadata["steps"] = 12
    path = save_anchor(anchor, tmp_path / "seg.safetensors")
    loaded = load_anchor(path, gen)
    a, b = anchor.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert loaded.spec == spec and loaded.size == 32 and loaded.metadata["steps"] == 12
    x = torch.randn(2, 19, 32, 32)
    anchor.eval()
    assert torch.equal(anchor.encode(x), loaded.encode(x))
    syn = gen.synthesize(anchor.encode(x))
    assert torch.equal(anchor.regress(syn), loaded.regress(syn))
    save_anchor(loaded, tmp_path / "again.safetensors")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(path) == digest(tmp_path / "again.safetensors")


def test_rgb_anchor_has_no_regressor(tmp_path, gen):
    anchor = build_anchor(load_domain_spec("rgb"), gen, 32, EncoderConfig(num_ws=gen.num_ws, latent_dim=gen.latent_dim))
    loaded = load_anchor(save_anchor(anchor, tmp_path / "rgb.safetensors"))
    assert loaded.regressor is None
    syn = gen.synthesize(gen.sample_latents([0, 1], seed=0))
    assert torch.equal(loaded.regress(syn), syn.rgb)


def test_anchor_for_another_generator_is_refused(tmp_path, gen):
    other = build_generator("tiny", seed=1)
    anchor = build_anchor(load_domain_spec("sketch"), gen, 32, EncoderConfig(in_channels=1, num_ws=gen.num_ws, latent_dim=gen.latent_dim))
    path = save_anchor(anchor, tmp_path / "sketch.safetensors")
    with pytest.raises(AnchorMismatchError) as info:
        load_anchor(path, other)
    msg = str(info.value)
    assert gen.fingerprint[:12] in msg and other.fingerprint[:12] in msg and "fit" in msg and "\n" not in msg


def test_corrupt_and_foreign_files_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    for name, words in [("junk", "not a safetensors file"), ("plain", "not a synthgen anchor"), ("missing", "does not exist")]:
        with pytest.raises(AnchorFileError, match=words) as info:
            load_anchor(tmp_path / f"{name}.safetensors")
        assert "\n" not in str(info.value)


def test_trunk_starts_from_local_torchvision_weights(tmp_path):
    from torchvision.models import resnet18

    ref = resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    enc = Encoder(EncoderConfig(trunk="resnet18", in_channels=1, num_ws=4, latent_dim=8,
                                trunk_weights=str(tmp_path / "r18.pth")), 32)
    assert torch.equal(enc.trunk.layer2[0].conv1.weight, ref.layer2[0].conv1.weight)
    assert enc.trunk.stem[0].in_channels == 1  # a sketch is not a photo: fresh first conv
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        Encoder(EncoderConfig(trunk="resnet18", trunk_weights=str(tmp_path / "none.pth")), 32)


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    import torch

    from synthgen.anchors.anchor import build_anchor, load_anchor, save_anchor
    from synthgen.anchors.encoder import EncoderConfig
    from synthgen.anchors.spec import load_domain_spec
    from synthgen.generators.presets import build_generator

    gen = build_generator("tiny", seed=0)
    anchor = build_anchor(load_domain_spec("seg"), gen, 32, EncoderConfig(in_channels=19, num_ws=gen.num_ws, latent_dim=gen.latent_dim))
    full = save_anchor(anchor, tmp_path / "full.safetensors")
    half = save_anchor(anchor, tmp_path / "half.safetensors", store_dtype="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_anchor(half, gen)
    for name, value in loaded.encoder.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, anchor.encoder.state_dict()[name], rtol=1e-3, atol=1e-3)


def test_pyramid_tap_is_the_last_conv_of_the_top_three_resolutions(gen):
    latents = gen.sample_latents([0, 1], seed=0)
    plain = gen.synthesize(latents)
    syn = gen.synthesize(latents, taps=("pyramid",))
    assert plain.taps == {} and torch.equal(plain.features, syn.features) and torch.equal(plain.rgb, syn.rgb)
    maps = syn.taps["pyramid"]
    assert [m.shape[-1] for m in maps] == gen.cfg.resolutions[-3:]
    assert sum(m.shape[1] for m in maps) == gen.tap_channels("pyramid")
    assert torch.equal(maps[-1], syn.features)  # the finest level is the default tap itself
    assert gen.synthesize(latents, taps=("default", "pyramid", "pyramid")).taps.keys() == {"pyramid"}


def test_unknown_tap_is_a_one_line_error(gen):
    from synthgen.generators.base import TapError

    with pytest.raises(TapError, match="no feature tap 'middle'.*offers: default, pyramid.*--feature-tap"):
        gen.synthesize(gen.sample_latents([0], seed=0), taps=("middle",))


def test_regressor_resizes_and_stacks_a_multi_resolution_tap():
    reg = Regressor(RegressorConfig(in_channels=12, out_channels=5, widths=(8,), out_size=16))
    coarse, fine = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 16, 16)
    up = nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=False)
    stacked = reg.net(torch.cat([up, fine], 1))  # the definition: resize, stack, then the 1x1 head
    assert torch.allclose(reg([coarse, fine]), stacked, atol=1e-5)  # computed level by level, same map
    single = Regressor(RegressorConfig(in_channels=8, out_channels=5, widths=(8,)))
    assert torch.allclose(single(fine), single.net(fine), atol=1e-6)
    with pytest.raises(ValueError, match="reads 12 feature channels, got 8"):
        reg([fine])


def test_finest_head_reads_only_the_finest_map_and_the_output_is_the_mean_of_both_heads():
    cfg = RegressorConfig(in_channels=12, out_channels=5, widths=(8,), out_size=16, batch_norm=False, finest_channels=8)
    reg = Regressor(cfg).eval()
    coarse, fine = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 16, 16)
    main, finest = reg.head_outputs([coarse, fine])
    up = nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(main, reg.net(torch.cat([up, fine], 1)), atol=1e-5)
    assert torch.allclose(finest, reg.finest(fine), atol=1e-5)
    assert torch.allclose(reg([coarse, fine]), (main + finest) / 2, atol=1e-6)
    assert torch.equal(reg.head_outputs([torch.randn_like(coarse), fine])[1], finest)  # blind to the coarse map
    before, bias = reg([coarse, fine]), torch.randn(5)
    reg.add_output_bias(bias)  # what the class-frequency calibration folds in moves the output by exactly that
    assert torch.allclose(reg([coarse, fine]), before + bias.view(1, 5, 1, 1), atol=1e-5)
    one = Regressor(RegressorConfig(in_channels=12, out_channels=5, widths=(8,), out_size=16, batch_norm=False))
    missing = Regressor(cfg).load_state_dict(one.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("finest.") for k in missing)  # a one-head file fills the main head
    with pytest.raises(ValueError, match="finest head reads 8 channels, the tap's last map has 4"):
        reg([fine, coarse])


def test_two_head_anchor_round_trip_and_older_files_have_one_head(tmp_path, gen):
    from synthgen.anchors.anchor import anchor_taps, read_anchor_metadata

    spec = load_domain_spec("seg")
    enc = EncoderConfig(in_channels=19, num_ws=gen.num_ws, latent_dim=gen.latent_dim)
    anchor = _trained_like(build_anchor(spec, gen, 32, enc, tap="pyramid", finest_head=True)).eval()
    finest = gen.finest_tap_channels("pyramid")
    assert anchor.regressor.cfg.finest_channels == finest == gen.synthesize(
        gen.sample_latents([0], seed=0), taps=("pyramid",)).taps["pyramid"][-1].shape[1]
    path = save_anchor(anchor, tmp_path / "seg.safetensors")
    assert read_anchor_metadata(path)["regressor"]["finest_channels"] == finest
    loaded = load_anchor(path, gen)
    syn = gen.synthesize(gen.sample_latents([0, 1], seed=0), taps=anchor_taps([loaded]))
    assert torch.equal(anchor.regress(syn), loaded.regress(syn))
    old = {k: v for k, v in anchor.regressor.cfg.to_dict().items() if k != "finest_channels"}
    assert RegressorConfig.from_dict(old).finest_channels == 0


def test_pyramid_anchor_round_trip_and_its_tap_contract(tmp_path, gen):
    from safetensors.torch import load_file, save_file

    from synthgen.anchors.anchor import METADATA_KEY, anchor_taps, read_anchor_metadata

    spec = load_domain_spec("seg")
    enc = EncoderConfig(in_channels=19, num_ws=gen.num_ws, latent_dim=gen.latent_dim)
    anchor = _trained_like(build_anchor(spec, gen, 32, enc, tap="pyramid")).eval()
    assert anchor.regressor.cfg.in_channels == gen.tap_channels("pyramid")
    path = save_anchor(anchor, tmp_path / "seg.safetensors")
    assert read_anchor_metadata(path)["feature_tap"] == "pyramid"
    loaded = load_anchor(path, gen)
    plain = build_anchor(load_domain_spec("sketch"), gen, 32, EncoderConfig(in_channels=1, num_ws=gen.num_ws, latent_dim=gen.latent_dim))
    assert loaded.tap == "pyramid" and anchor_taps([loaded, plain, loaded]) == ("pyramid", "default")
    latents = gen.sample_latents([0, 1], seed=0)
    syn = gen.synthesize(latents, taps=anchor_taps([loaded]))
    assert torch.equal(anchor.regress(syn), loaded.regress(syn))
    with pytest.raises(ValueError, match="reads the generator tap 'pyramid'.*anchor_taps"):
        loaded.regress(gen.synthesize(latents))  # a caller that forgot to ask for the tap
    # A file written before anchors recorded their tap reads the default one.
    meta = read_anchor_metadata(path)
    del meta["feature_tap"]
    old = build_anchor(spec, gen, 32, enc)
    save_file(load_file(str(save_anchor(old, tmp_path / "old.safetensors"))), str(tmp_path / "old.safetensors"),
              metadata={METADATA_KEY: json.dumps({**meta, "regressor": old.regressor.cfg.to_dict()})})
    assert load_anchor(tmp_path / "old.safetensors", gen).tap == "default"
