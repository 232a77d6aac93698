"""BigGAN-deep in the pytorch-pretrained-biggan layout: spectral norm, statistics, sampling, formats."""
import functools
import json

import pytest
import torch

from synthgen.generators import CheckpointError, detect_format, load_generator, save_generator
from synthgen.generators.biggan import BigGANConfig, BigGANDeep
from synthgen.generators.biggan.model import stats_at
from synthgen.generators.base import TapError




CONF = dict(output_dim=16, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=5,
            layers=[[False, 16, 16], [True, 16, 8], [True, 8, 4], [False, 4, 2], [False, 2, 1]], attention_layer_position=2,
            eps=1e-4, n_stats=51)


def biggan_state(seed=0):
    return dict(_biggan_state(seed))


@functools.lru_cache
def _biggan_state(seed):
    """A random state dict in the published layout: `generator.` prefix, weight_orig/_u/_v triples."""
    g = torch.Generator().manual_seed(seed)
    model = BigGANDeep(BigGANConfig.from_dict(CONF))
    state = {}
    for key, t in model.state_dict().items():
        r = torch.randn(t.shape, generator=g)
        name = key if key.startswith("embeddings") else "generator." + key
        sn = key.endswith(".weight") and not key.startswith("embeddings") and key != "bn.weight"
        if sn:
            # u, v near the top singular pair, as power iteration leaves them.
            left, _, right = torch.linalg.svd(r.flatten(1), full_matrices=False)
            state[name + "_orig"] = r
            state[name + "_u"] = torch.nn.functional.normalize(left[:, 0] + 0.05 * torch.randn(t.shape[0], generator=g), dim=0)
            state[name + "_v"] = torch.nn.functional.normalize(right[0] + 0.05 * torch.randn(right.shape[1], generator=g), dim=0)
        elif "running_vars" in key:
            state[name] = torch.rand(t.shape, generator=g) + 0.5
        else:
            state[name] = r * 0.3 if "running_means" in key else r
    return state


def write_biggan_folder(folder):
    """A random BigGAN-deep checkpoint folder in the published layout (weights + config.json)."""
    folder.mkdir(parents=True)
    torch.save(biggan_state(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(CONF))
    return folder


@pytest.fixture
def ckpt(tmp_path):
    folder = write_biggan_folder(tmp_path / "biggan")
    (folder / "classes.txt").write_text("tench\ngoldfish\nwhite shark\ntiger shark\nhammerhead\n")
    return folder


def test_reads_layout_and_applies_spectral_norm(ckpt):
    assert detect_format(ckpt) == detect_format(ckpt / "config.json") == "biggan-deep"
    gen = load_generator(ckpt, class_index=3)
    assert (gen.latent_kind, gen.num_ws, gen.latent_dim, gen.resolution) == ("z+class", 1, 8, 16)
    assert (gen.feature_channels, gen.feature_resolution) == (4, 16)
    assert torch.equal(gen.w_avg, torch.zeros(8))
    state = biggan_state()
    w, u, v = (state[f"generator.layers.1.conv_1.weight{s}"] for s in ("_orig", "_u", "_v"))
    sigma = (u[:, None] * w.reshape(w.shape[0], -1) * v[None]).sum()
    assert torch.allclose(gen.model.layers[1].conv_1.weight, w / sigma, atol=1e-6)


def test_outputs_and_feature_tap(ckpt):
    gen = load_generator(ckpt, class_index="white shark")
    assert gen.class_index == 2
    out = gen.synthesize(gen.sample_latents([0, 1], seed=0, truncation_psi=0.5))
    assert out.rgb.shape == (2, 3, 16, 16) and out.rgb.abs().max() <= 1
    assert out.features.shape == (2, 4, 16, 16) and out.features.min() >= 0  # after ReLU
    conv = gen.model.conv_to_rgb
    assert torch.allclose(torch.tanh(conv(out.features)[:, :3]), out.rgb, atol=1e-6)
    other = load_generator(ckpt, class_index=4)
    assert not torch.allclose(other.synthesize(gen.sample_latents([0], seed=0, truncation_psi=0.5)).rgb, out.rgb[:1])
    with pytest.raises(TapError, match="no feature tap 'pyramid'.*offers: default") as info:
        gen.synthesize(gen.sample_latents([0], seed=0), taps=("pyramid",))  # a StyleGAN2-only tap
    assert "\n" not in str(info.value)


def test_truncated_latents_depend_only_on_seed_and_index(ckpt):
    gen = load_generator(ckpt)
    z = gen.sample_z(list(range(200)), seed=1)
    assert z.abs().max() <= 2 and z.std() > 0.7
    assert torch.equal(gen.sample_z([7], seed=1)[0], z[7])
    lat = gen.sample_latents([7, 8], seed=1, truncation_psi=0.4)
    assert torch.allclose(lat[0, 0], z[7] * 0.4) and gen.truncation == 0.4
    with pytest.raises(ValueError):
        gen.map(z[:1], 0.0)


def test_batch_norm_statistics_interpolation():
    means = torch.arange(51.0)[:, None].expand(51, 2)
    m, _ = stats_at(means, means, 1.0)
    assert torch.equal(m, torch.tensor([50.0, 50.0]))
    m, _ = stats_at(means, means, 0.5)  # 0.5 / 0.02 = 25 exactly
    assert torch.equal(m, torch.tensor([25.0, 25.0]))
    m, _ = stats_at(means, means, 0.51)  # index 25.5: the published weighting gives 25*0.5 + 26*0.5
    assert torch.allclose(m, torch.tensor([25.5, 25.5]))
    m, _ = stats_at(means, means, 0.505)  # fraction 0.25 weights the LOWER entry, as in the original
    assert torch.allclose(m, torch.tensor([25 * 0.25 + 26 * 0.75] * 2), atol=1e-4)


def test_native_round_trip_keeps_images(ckpt, tmp_path):
    gen = load_generator(ckpt, class_index=1)
    lat = gen.sample_latents([3, 4], seed=2, truncation_psi=0.7)
    path = save_generator(gen, tmp_path / "bg.safetensors")
    back = load_generator(path)
    assert back.class_index == 1 and back.fingerprint == gen.fingerprint
    back.map(lat[:, 0], 0.7)  # adopt the same truncation statistics
    assert torch.equal(back.synthesize(lat / 0.7 * 0.7).rgb, gen.synthesize(lat).rgb)


def test_bad_biggan_inputs(ckpt):
    with pytest.raises(CheckpointError, match="unknown class name"):
        load_generator(ckpt, class_index="zebra")
    with pytest.raises(CheckpointError, match="class_index must be in"):
        load_generator(ckpt, class_index=9)
    state = biggan_state()
    del state["generator.layers.0.bn_1.running_means"]
    torch.save(state, ckpt / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing keys layers.0.bn_1.running_means"):
        load_generator(ckpt)
