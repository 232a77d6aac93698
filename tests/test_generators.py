"""The frozen StyleGAN2 wrapper, presets and the native format."""
import pytest
import torch

from synthgen.generators import CheckpointError, load_generator, save_generator
from synthgen.generators.presets import PRESETS, build_generator, build_stylegan2
from synthgen.generators.stylegan2 import FrozenStyleGAN2, StyleGAN2Config, mix_latents





@pytest.fixture(scope="module")
def tiny():
    gen = build_stylegan2("tiny", seed=0)
    with torch.no_grad():  # non-zero noise strengths so that noise choices are visible
        for m in gen.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.3)
    return FrozenStyleGAN2(gen)


def test_build_is_deterministic_given_seed():
    a, b, c = build_generator("tiny", seed=5), build_generator("tiny", seed=5), build_generator("tiny", seed=6)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_build_does_not_touch_global_torch_rng():
    torch.manual_seed(0)
    build_generator("tiny", seed=1)
    after = torch.randn(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.randn(3))


def test_shapes_and_frozen(tiny):
    lat = tiny.sample_latents([0, 1, 2], seed=0)
    assert lat.shape == (3, tiny.num_ws, tiny.latent_dim) == (3, 8, 32)
    out = tiny.synthesize(lat)
    assert out.rgb.shape == (3, 3, 32, 32)
    assert out.features.shape == (3, tiny.feature_channels, tiny.feature_resolution, tiny.feature_resolution) == (3, 16, 32, 32)
    assert not any(p.requires_grad for p in tiny.parameters())
    tiny.train()
    assert not tiny.training
    lat.requires_grad_(True)
    tiny.synthesize(lat).features.sum().backward()
    assert lat.grad is not None and lat.grad.abs().sum() > 0


def test_synthesis_keeps_the_callers_autocast(tiny, monkeypatch):
    # sample --dtype bfloat16 on a GPU wraps G in autocast; a generator without an autocast
    # dtype of its own must not open an autocast(enabled=False) that switches it off for the
    # synthesis only (CUDA then met bf16 latents with fp32 weights at the first layer).
    opened = []
    real = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: opened.append((a, k)) or real(*a, **k))
    lat = tiny.sample_latents([0, 1], seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny.synthesize(lat)
    assert opened == [(("cpu",), {"dtype": torch.bfloat16})]
    assert out.rgb.dtype == torch.float32 and torch.isfinite(out.rgb).all()


@pytest.mark.parametrize(
    "tap,res,channels", [("last", None, 16), ("last2", None, 32), ("last", 8, 32), ("last2", 16, 32), ("last", 4, 32)]
)
def test_feature_tap_options(tiny, tap, res, channels):
    g = FrozenStyleGAN2(tiny.generator, tiny.w_avg, tap=tap, tap_resolution=res)
    r = res or 32
    assert (g.feature_channels, g.feature_resolution) == (channels, r)
    out = g.synthesize(tiny.sample_latents([0, 1], seed=0))
    assert out.features.shape == (2, channels, r, r)
    assert torch.allclose(out.rgb, tiny.synthesize(tiny.sample_latents([0, 1], seed=0)).rgb)


def test_last_tap_is_input_of_last_to_rgb(tiny):
    lat = tiny.sample_latents([4], seed=0)
    seen = {}
    h = tiny.generator.synthesis.to_rgbs[-1].register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0]))
    f = tiny.synthesize(lat).features
    h.remove()
    assert torch.equal(f, seen["x"])
    g2 = FrozenStyleGAN2(tiny.generator, tiny.w_avg, tap="last2")
    assert torch.equal(g2.synthesize(lat).features[:, 16:], f)


def test_bad_tap_options(tiny):
    with pytest.raises(ValueError, match="tap_resolution"):
        FrozenStyleGAN2(tiny.generator, tiny.w_avg, tap_resolution=12)
    with pytest.raises(ValueError, match="last2"):
        FrozenStyleGAN2(tiny.generator, tiny.w_avg, tap="last2", tap_resolution=4)
    with pytest.raises(ValueError, match="latents must be"):
        tiny.synthesize(torch.zeros(1, 3, 32))


def test_latent_of_a_row_does_not_depend_on_batch(tiny):
    a = tiny.sample_latents([10, 11, 12], seed=3, truncation_psi=0.7)
    b = tiny.sample_latents([12], seed=3, truncation_psi=0.7)
    assert torch.allclose(a[2], b[0], atol=1e-6)
    assert not torch.allclose(a[0], a[1])
    assert not torch.allclose(tiny.sample_latents([12], seed=4), tiny.sample_latents([12], seed=3))
    # The same z the ToyFaces renderer sees for (seed, index).
    from synthgen.seeding import per_index_normal

    assert torch.equal(tiny.sample_z([12], seed=3), torch.from_numpy(per_index_normal(3, [12], tiny.z_dim)))


def test_truncation_zero_gives_w_avg(tiny):
    lat = tiny.sample_latents([0, 1], seed=0, truncation_psi=0.0)
    assert torch.allclose(lat, tiny.w_avg.expand_as(lat), atol=1e-6)


def test_w_avg_is_mean_of_mapped_z(tiny):
    z = torch.from_numpy(__import__("numpy").random.default_rng(0).standard_normal((10_000, tiny.z_dim)).astype("float32"))
    with torch.no_grad():
        assert torch.allclose(tiny.generator.mapping(z).mean(0), tiny.w_avg, atol=1e-5)


def test_style_mixing_changes_fine_layers_only(tiny):
    a, b = tiny.sample_latents([0], seed=0), tiny.sample_latents([1], seed=0)
    mixed = mix_latents(a, b, start=6)
    assert torch.equal(mixed[:, :6], a[:, :6]) and torch.equal(mixed[:, 6:], b[:, 6:])
    assert not torch.allclose(tiny.synthesize(mixed).rgb, tiny.synthesize(a).rgb)


def test_noise_modes(tiny):
    lat = tiny.sample_latents([0, 1], seed=0)
    const1, const2 = tiny.synthesize(lat).rgb, tiny.synthesize(lat).rgb
    assert torch.equal(const1, const2)
    seeded = tiny.synthesize(lat, noise_seeds=torch.tensor([7, 8])).rgb
    again = tiny.synthesize(lat[1:], noise_seeds=torch.tensor([8])).rgb
    assert torch.allclose(seeded[1:], again, atol=1e-5)
    assert not torch.allclose(seeded, const1)
    zero = FrozenStyleGAN2(tiny.generator, tiny.w_avg, noise_mode="zero")
    assert not torch.allclose(zero.synthesize(lat).rgb, const1)


def test_native_round_trip(tiny, tmp_path):
    path = save_generator(tiny, tmp_path / "g.safetensors")
    back = load_generator(path)
    assert isinstance(back, FrozenStyleGAN2)
    assert back.fingerprint == tiny.fingerprint
    assert back.cfg.to_dict() == tiny.cfg.to_dict()
    lat = tiny.sample_latents([0, 5], seed=1, truncation_psi=0.5)
    assert torch.equal(back.synthesize(lat).rgb, tiny.synthesize(lat).rgb)
    assert load_generator(path, tap="last2").feature_channels == 32


def test_native_missing_keys_and_truncation_are_named(tiny, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = save_generator(tiny, tmp_path / "g.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    del state["generator.synthesis.conv1.noise.weight"]
    save_file(state, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="missing keys generator.synthesis.conv1.noise.weight") as info:
        load_generator(tmp_path / "missing.safetensors")
    assert "missing.safetensors" in str(info.value) and "\n" not in str(info.value)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_generator(tmp_path / "cut.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_generator(tmp_path / "junk.bin")
    with pytest.raises(CheckpointError, match="no such file"):
        load_generator(tmp_path / "absent.pt")


def test_toyfaces64_preset_budget():
    cfg = PRESETS["toyfaces64"]
    assert cfg.z_dim == 64 and cfg.size == 64
    gen = build_stylegan2("toyfaces64", seed=0)
    n = sum(p.numel() for p in gen.parameters())
    assert 1_000_000 < n < 6_000_000


def test_mapping_without_pixelnorm_keeps_the_norm_of_z():
    z = torch.randn(3, 64)
    built_in = build_stylegan2("toyfaces64", seed=0)  # imitates a renderer that reads raw z
    assert not torch.allclose(built_in.mapping(z), built_in.mapping(2 * z))
    public = build_stylegan2(StyleGAN2Config(size=32, z_dim=64, w_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16, 32: 16}), seed=0)
    torch.testing.assert_close(public.mapping(z), public.mapping(2 * z))  # PixelNorm: only the direction counts
