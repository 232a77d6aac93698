"""StyleGAN2 building blocks against formulas computed by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

from synthgen.generators.stylegan2 import ConfigError, StyleGAN2Config, StyleGAN2Discriminator, mix_latents, truncate
from synthgen.generators.stylegan2.activation import bias_leaky_relu
from synthgen.generators.stylegan2.discriminator import minibatch_stddev
from synthgen.generators.stylegan2.mapping import MappingNetwork
from synthgen.generators.stylegan2.modulated_conv import ModulatedConv2d
from synthgen.generators.stylegan2.resample import Upsample, make_kernel, upfirdn2d





def test_modulated_conv_equals_explicit_demodulated_weight():
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 4, 3, w_dim=5)
    x, w = torch.randn(2, 3, 6, 6), torch.randn(2, 5)
    out = conv(x, w)
    s = conv.modulation(w)  # (B, I)
    for b in range(2):
        wb = conv.weight[0] * conv.scale * s[b].view(1, 3, 1, 1)  # eq. 1
        wb = wb / torch.sqrt(wb.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # eq. 3
        ref = F.conv2d(x[b : b + 1], wb, padding=1)
        assert torch.allclose(out[b : b + 1], ref, atol=1e-5)


def test_demodulated_output_has_unit_weight_norm_per_channel():
    torch.manual_seed(1)
    conv = ModulatedConv2d(8, 6, 3, w_dim=4)
    # A delta input recovers the effective weights: each output channel's weights have norm ~1.
    x = torch.zeros(1, 8, 5, 5)
    norms = []
    for i in range(8):
        xi = x.clone()
        xi[0, i, 2, 2] = 1.0
        norms.append(conv(xi, torch.randn(1, 4) * 0 + 1)[0, :, 1:4, 1:4].reshape(6, -1))
    total = torch.cat(norms, 1).square().sum(1)
    assert torch.allclose(total, torch.ones(6), atol=1e-4)


def test_upsampling_conv_equals_transposed_conv_then_blur():
    torch.manual_seed(2)
    conv = ModulatedConv2d(2, 3, 3, w_dim=4, upsample=True)
    x, w = torch.randn(1, 2, 4, 4), torch.randn(1, 4)
    s = conv.modulation(w)
    wb = conv.weight[0] * conv.scale * s.view(1, 2, 1, 1)
    d = torch.rsqrt(wb.square().sum(dim=(1, 2, 3)) + 1e-8)
    y = F.conv_transpose2d(x, wb.transpose(0, 1), stride=2)  # (1, 3, 9, 9)
    y = upfirdn2d(y, make_kernel([1, 3, 3, 1]) * 4, pad=(1, 1)) * d.view(1, 3, 1, 1)
    out = conv(x, w)
    assert out.shape == (1, 3, 8, 8)
    assert torch.allclose(out, y, atol=1e-5)


def test_upsample_of_constant_is_constant_away_from_border():
    up = Upsample([1, 3, 3, 1])
    y = up(torch.ones(1, 1, 6, 6))
    assert y.shape == (1, 1, 12, 12)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


def test_fused_activation_formula():
    x, b = torch.tensor([[-1.0, 2.0]]), torch.tensor([0.5, -0.5])
    expected = torch.tensor([[-0.5 * 0.2, 1.5]]) * math.sqrt(2)
    assert torch.allclose(bias_leaky_relu(x, b), expected)
    assert bias_leaky_relu(x * 1000, None, clamp=256).abs().max() == 256


def test_mapping_normalizes_z_and_allows_z_dim_other_than_w_dim():
    torch.manual_seed(3)
    m = MappingNetwork(z_dim=7, w_dim=5, n_mlp=2)
    z = torch.randn(4, 7)
    assert m(z).shape == (4, 5)
    assert torch.allclose(m(z), m(z * 3.0), atol=1e-5)  # PixelNorm removes the scale of z


def test_truncation_and_mixing():
    ws, avg = torch.randn(2, 6, 4), torch.randn(4)
    assert torch.allclose(truncate(ws, avg, 0.0), avg.expand(2, 6, 4))
    assert torch.equal(truncate(ws, avg, 1.0), ws)
    assert torch.allclose(truncate(ws, avg, 0.5), (ws + avg) / 2)
    other = torch.randn(2, 4)
    mixed = mix_latents(ws, other, 4)
    assert torch.equal(mixed[:, :4], ws[:, :4])
    assert torch.equal(mixed[:, 4:], other[:, None].expand(2, 2, 4))
    with pytest.raises(ValueError):
        mix_latents(ws, other, 7)


@pytest.mark.parametrize("size", [48, 16, 2048])
def test_bad_resolution_is_a_one_line_error(size):
    with pytest.raises(ConfigError, match="power of two") as info:
        StyleGAN2Config(size=size)
    assert "\n" not in str(info.value)


def test_config_channels_follow_rosinality_rule():
    cfg = StyleGAN2Config(size=1024, channel_multiplier=2)
    assert [cfg.channels_at(r) for r in cfg.resolutions] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
    assert cfg.num_ws == 18 and cfg.num_layers == 17
    assert StyleGAN2Config(size=256, channel_multiplier=1).channels_at(256) == 64
    assert StyleGAN2Config.from_dict(cfg.to_dict()) == StyleGAN2Config.from_dict(cfg.to_dict())


def test_discriminator_shapes_and_minibatch_stddev():
    torch.manual_seed(4)
    d = StyleGAN2Discriminator(size=16, channels={16: 8, 8: 8, 4: 8})
    assert d(torch.randn(6, 3, 16, 16)).shape == (6, 1)
    x = torch.randn(4, 2, 3, 3)
    y = minibatch_stddev(x, group=4, n_feat=1)
    expected = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()
    assert y.shape == (4, 3, 3, 3) and torch.allclose(y[:, 2], expected.expand(4, 3, 3))


def test_a_conditional_discriminator_projects_its_features_on_the_condition():
    torch.manual_seed(5)
    d = StyleGAN2Discriminator(size=16, channels={16: 8, 8: 8, 4: 8}, c_dim=5)
    x, c = torch.randn(4, 3, 16, 16), torch.randn(4, 5)
    logit = d(x, c)
    features = d.final_linear(d.final_conv(minibatch_stddev(d.convs(x), 4, 1)).flatten(1))  # (4, cmap_dim)
    assert features.shape == (4, 8) and logit.shape == (4, 1)
    assert torch.allclose(logit, (features * d.mapping(c)).sum(1, keepdim=True) / 8 ** 0.5, atol=1e-6)
    assert not torch.allclose(d(x, torch.randn(4, 5)), logit)  # the same images, judged per condition
    with pytest.raises(ValueError, match="a condition of 5 values"):
        d(x)
    with pytest.raises(ValueError, match="no condition"):
        StyleGAN2Discriminator(size=16, channels={16: 8, 8: 8, 4: 8})(x, c)
    with pytest.raises(ConfigError, match="mapping_layers"):
        StyleGAN2Discriminator(size=16, channels={16: 8, 8: 8, 4: 8}, c_dim=5, mapping_layers=1)
