"""The fit terms that reach where `synthgen sample` reads: the sampled-latent cycle, the
realism critic, class balance, and starting from an earlier anchor."""
import dataclasses
import json

import pytest
import torch

from _anchor_data import DOMAIN_KINDS, domain_of_kind, write_images, write_masks
from synthgen.anchors.anchor import load_anchor
from paper_fit import fit
from synthgen.anchors.fit import FitError
from synthgen.anchors.fit import hard_decoded_input
from synthgen.anchors.losses import class_balance_weights, latent_cycle_loss, reconstruction_loss
from synthgen.anchors.realism import DomainCritic, critic_loss, realism_loss
from synthgen.anchors.spec import load_domain_spec
from synthgen.generators.presets import PRESETS, build_generator


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


def _stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def test_class_balance_weights_follow_the_frequencies():
    counts = torch.tensor([900.0, 90.0, 10.0, 0.0])
    w = class_balance_weights(counts, 0.5)
    freq = counts / counts.sum()
    assert torch.isclose((freq * w).sum(), torch.tensor(1.0))  # the average pixel weighs 1
    assert w[0] < w[1] < w[2]  # rarer classes weigh more
    assert torch.isclose(w[1] / w[0], torch.tensor(10 ** 0.5), rtol=1e-4)  # freq^-0.5
    assert torch.isclose(w[3], 50 * w[0])  # an absent class takes the cap: 50 x the smallest weight
    assert torch.allclose(class_balance_weights(counts, 0.0)[:3], torch.ones(3))  # power 0 = plain CE
    capped = class_balance_weights(torch.tensor([1e6, 1.0]), 1.0, max_ratio=50)
    assert torch.isclose(capped[1] / capped[0], torch.tensor(50.0))


def test_weighted_reconstruction_loss_is_cross_entropy_with_weights():
    spec = load_domain_spec("seg")
    raw, target = torch.randn(2, 19, 4, 4), torch.randint(0, 19, (2, 4, 4))
    w = torch.rand(19) + 0.5
    expected = torch.nn.functional.cross_entropy(raw, target, weight=w)
    assert torch.isclose(reconstruction_loss(spec, raw, target, w), expected)
    assert torch.isclose(reconstruction_loss(spec, raw, target), torch.nn.functional.cross_entropy(raw, target))


def test_latent_cycle_loss_is_scaled_by_the_latent_variance():
    target = torch.randn(8, 3, 5)
    assert latent_cycle_loss(target, target, torch.ones(3, 5)) == 0
    scale = torch.full((3, 5), 4.0)
    assert torch.isclose(latent_cycle_loss(target + 2, target, scale), torch.tensor(1.0))


@pytest.mark.parametrize("kind", DOMAIN_KINDS)
def test_cycle_term_is_logged_and_trains_the_encoder(tmp_path, gen, kind):
    domain, data = domain_of_kind(kind, tmp_path)
    start = fit(domain, data, gen, tmp_path / "start.safetensors", run_dir=tmp_path / "r0", steps=1, lr=0.0,
                progress=False, preview_every=0)
    out = fit(domain, data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=25, batch_size=4, lr=1e-3,
              lambda_cycle=1.0, lambda_rec=0.0, lambda_latent=0.0, init_from=str(start), progress=False,
              preview_every=0, calibration_latents=0)
    rows = _stats(tmp_path / "r")
    assert all("cycle" in r for r in rows)
    first, last = sum(r["cycle"] for r in rows[:5]) / 5, sum(r["cycle"] for r in rows[-5:]) / 5
    assert last < first  # E learns to re-find the sampled latents
    a, b = load_anchor(start).state_dict(), load_anchor(out).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    # R's output enters the cycle decoded and detached: the cycle alone never moves R.
    # (BatchNorm's running statistics do follow the sampled latents it sees.)
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("regressor.") and "running" not in k
               and "num_batches_tracked" not in k)


def test_cycle_run_resumes_exactly(tmp_path, gen):
    opts = assert_resumes_exactly(tmp_path, gen, lambda_cycle=0.5, class_balance=0.5)
    with pytest.raises(FitError, match="different class_balance"):
        fit("seg", tmp_path / "d", gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=8,
            **{**opts, "class_balance": 1.0})


@pytest.mark.parametrize("kind", [k for k in DOMAIN_KINDS if k != "rgb"])
def test_realism_term_trains_the_regressor_alone(tmp_path, gen, kind):
    """The critic judges R's decoded output on sampled latents: its gradient reaches R (straight
    through the hard decoding) and never E, and both sides are logged."""
    domain, data = domain_of_kind(kind, tmp_path)
    start = fit(domain, data, gen, tmp_path / "start.safetensors", run_dir=tmp_path / "r0", steps=1, lr=0.0,
                progress=False, preview_every=0, regressor_batch_norm=False)
    out = fit(domain, data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=6, batch_size=4, lr=1e-3,
              lambda_realism=1.0, lambda_rec=0.0, lambda_latent=0.0, init_from=str(start), progress=False,
              preview_every=0, regressor_batch_norm=False)
    rows = _stats(tmp_path / "r")
    assert all("realism" in r and "critic" in r and "cycle" not in r for r in rows)
    a, b = load_anchor(start).state_dict(), load_anchor(out).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("regressor."))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder.") and "running" not in k
               and "num_batches_tracked" not in k)


def test_critic_sees_hard_masks_and_passes_gradient_to_logits():
    spec = load_domain_spec("seg")
    logits = torch.randn(2, 19, 8, 8, requires_grad=True)
    decoded = hard_decoded_input(spec, logits, 8)
    # forward: exactly the one-hot of the argmax, as a real file's encoder input
    assert torch.equal(decoded.detach(), torch.nn.functional.one_hot(logits.argmax(1), 19).permute(0, 3, 1, 2).float())
    critic = DomainCritic(19)
    realism_loss(critic, decoded).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_critic_learns_to_tell_files_from_fakes():
    torch.manual_seed(0)
    critic = DomainCritic(1, width=8)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.99))
    real, fake = torch.ones(4, 1, 16, 16), -torch.ones(4, 1, 16, 16)
    first = float(critic_loss(critic, real, fake, r1_gamma=1.0).detach())
    for _ in range(30):
        loss = critic_loss(critic, real, fake, r1_gamma=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    assert float(realism_loss(critic, fake).detach()) > float(realism_loss(critic, real).detach())


def assert_resumes_exactly(tmp_path, gen, **terms) -> dict:
    """6 steps equal 3 + 3 resumed steps bit for bit; returns the options used."""
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=3, progress=False, preview_every=0, checkpoint_every=3, **terms)
    full = fit("seg", data, gen, tmp_path / "full.safetensors", run_dir=tmp_path / "r1", steps=6, **opts)
    fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=3, **opts)
    resumed = fit("seg", data, gen, tmp_path / "half.safetensors", run_dir=tmp_path / "r2", steps=6, **opts)
    a, b = load_anchor(full).state_dict(), load_anchor(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    return opts


def test_realism_run_resumes_exactly(tmp_path, gen):
    assert_resumes_exactly(tmp_path, gen, lambda_realism=0.5)


def test_feature_noise_is_seeded_and_training_only(tmp_path, gen):
    from synthgen.anchors.fit import with_feature_noise

    syn = gen.synthesize(gen.sample_latents([0, 1, 2], seed=0))
    a, b = with_feature_noise(syn, 1.0, seed=3, tap="default"), with_feature_noise(syn, 1.0, seed=3, tap="default")
    assert torch.equal(a.features, b.features) and torch.equal(a.rgb, syn.rgb)
    spread = (a.features - syn.features).std(dim=(0, 2, 3)) / syn.features.std(dim=(0, 2, 3))
    assert 0.7 < float(spread.mean()) < 1.3  # sigma is in units of each channel's std
    opts = assert_resumes_exactly(tmp_path, gen, feature_noise=1.0)
    fit("seg", tmp_path / "d", gen, tmp_path / "plain.safetensors", run_dir=tmp_path / "r3", steps=1,
        **{**opts, "feature_noise": 0.0})
    assert _stats(tmp_path / "r1")[0]["rec"] != _stats(tmp_path / "r3")[0]["rec"]  # the noise reaches the loss


def test_feature_noise_lands_on_the_tap_the_regressor_reads(gen):
    from synthgen.anchors.fit import channel_std, with_feature_noise

    syn = gen.synthesize(gen.sample_latents([0, 1, 2], seed=0), taps=("pyramid",))
    noisy = with_feature_noise(syn, 2.0, seed=3, tap="pyramid")
    assert torch.equal(noisy.features, syn.features) and torch.equal(noisy.rgb, syn.rgb)  # nothing the regressor does not read
    for clean, moved in zip(syn.taps["pyramid"], noisy.taps["pyramid"]):
        spread = (moved - clean).std(dim=(0, 2, 3)) / clean.std(dim=(0, 2, 3))
        assert 1.4 < float(spread.mean()) < 2.6
        assert torch.allclose(channel_std(clean), clean.std(dim=(0, 2, 3), keepdim=True), rtol=1e-5, atol=1e-7)
    default = with_feature_noise(syn, 2.0, seed=3, tap="default")
    assert not torch.equal(default.features, syn.features)
    assert all(torch.equal(x, y) for x, y in zip(default.taps["pyramid"], syn.taps["pyramid"]))


def test_frequency_offsets_bring_over_drawn_classes_down_only():
    from synthgen.anchors.calibration import argmax_shares, frequency_offsets

    torch.manual_seed(0)
    logits = torch.randn(20000, 4)
    logits[:, 1] += 1.5  # class 1 over-drawn, class 3 under-drawn
    logits[:, 3] -= 1.0
    target = torch.tensor([0.4, 0.3, 0.3, 0.0])  # class 3 never appears in the files
    before = argmax_shares(logits, torch.zeros(4))
    assert before[1] > 0.3 and before[3] > 0 and before[0] < 0.4
    bias = frequency_offsets(logits, target)
    share = argmax_shares(logits, bias)
    assert (bias <= 0).all() and bias[1] < 0 and bias[3] < 0
    assert abs(float(share[1]) - 0.3) < 0.005 and share[3] < 1e-3  # over-drawn classes: brought to their share
    assert bias[0] == 0 and before[0] < share[0] <= 0.4 + 1e-3  # an under-drawn class is never moved; it takes pixels, up to its share


def test_frequency_offsets_lower_a_class_that_passes_its_share_by_taking_pixels():
    # The runner-up of an over-drawn class starts under its share and would end far above
    # it on the pixels given up (the shipped seg anchor's mouth: 0.0001 -> 0.0033 against
    # 0.00097 in the files); it must be lowered too, and no class may end above its share.
    from synthgen.anchors.calibration import argmax_shares, frequency_offsets

    torch.manual_seed(0)
    logits = 0.1 * torch.randn(20000, 4)
    logits[:8000, 1] += 3.0  # class 1 drawn on 40% ...
    logits[:8000, 2] += 2.0  # ... with class 2 its runner-up there
    logits[8000:18000, 0] += 3.0
    logits[18000:, 2] += 3.0  # class 2 drawn on 10%, under its 20%
    target = torch.tensor([0.5, 0.1, 0.2, 0.2])
    before = argmax_shares(logits, torch.zeros(4))
    assert before[2] < target[2]
    bias = frequency_offsets(logits, target)
    share = argmax_shares(logits, bias)
    assert (bias <= 0).all() and bias[2] < 0
    assert (share <= target + 1e-3).all(), share


def test_frequency_offsets_step_each_class_by_its_exact_margin_over_the_best_other():
    """Each coordinate step is the one the plain definition gives: the class's margin over the
    best other class on every pixel (here computed the obvious way, one masked copy per class)."""
    from synthgen.anchors.calibration import argmax_shares, frequency_offsets

    def reference(logits, target, rounds=100):
        n, k = logits.shape
        bias = torch.zeros(k)
        for _ in range(rounds):
            moved = False
            shares = argmax_shares(logits, bias)
            for c in [c for c in range(k) if float(shares[c]) > float(target[c]) + 0.5 / n]:
                cur = logits + bias
                others = cur.clone()
                others[:, c] = float("-inf")
                margin = cur[:, c] - others.max(1).values
                keep = int(float(target[c]) * n)
                if int((margin > 0).sum()) <= keep:
                    continue
                bias[c] -= max(float(torch.kthvalue(-margin, keep + 1).values.neg()), 0.0) + 1e-6
                moved = True
            if not moved:
                break
        return bias

    g = torch.Generator().manual_seed(3)
    logits = 2.0 * torch.randn(5000, 6, generator=g)
    logits[:, 0] += 2.0  # the first and last columns over-drawn: the edges of the column range
    logits[:, 5] += 1.0
    target = torch.tensor([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    assert torch.equal(frequency_offsets(logits, target), reference(logits, target))


def test_presence_offsets_keep_an_occasional_class_in_its_share_of_the_samples_where_it_is_surest():
    from synthgen.anchors.calibration import presence, presence_offsets

    torch.manual_seed(0)
    n, pixels = 200, 64
    logits = torch.zeros(n, pixels, 3)
    logits[..., 0] = 1.0  # background everywhere ...
    sure = torch.linspace(0.5, 3.0, n)  # ... and a blob of class 1 on 6 px of every sample, surer in later ones
    logits[:, :6, 1] = 1.0 + sure[:, None]
    logits[:, 10:13, 2] = 5.0  # class 2: 3 px, under the 4 px that count as appearing
    before = presence(logits, torch.zeros(3), min_pixels=4)
    assert before.tolist() == [1.0, 1.0, 0.0]
    target = torch.tensor([1.0, 0.25, 0.5])
    bias = presence_offsets(logits, target, min_pixels=4)
    after = presence(logits, bias, min_pixels=4)
    assert bias[1] < 0 and bias[0] == 0 and bias[2] == 0  # only the class seen too often is lowered
    assert abs(float(after[1]) - 0.25) <= 1 / n
    kept = ((logits + bias).argmax(-1) == 1).sum(1) >= 4
    assert kept[-int(0.25 * n):].all() and not kept[: n // 2].any()  # the surest samples keep it


def test_presence_targets_lower_only_occasional_classes():
    # hair-like (in 90% of the files, drawn in every sample) stays; hat-like (15%) is brought to its share
    from synthgen.anchors.calibration import presence, presence_offsets, presence_targets

    n = 100
    logits = torch.zeros(n, 16, 3)
    logits[..., 0] = 1.0
    logits[:, :8, 1] = 2.0 + torch.linspace(0, 1, n)[:, None]
    logits[:, 8:, 2] = 2.0 + torch.linspace(0, 1, n)[:, None]
    target = presence_targets(torch.tensor([1.0, 0.9, 0.15]))
    assert torch.allclose(target, torch.tensor([1.0, 1.0, 0.15]))
    bias = presence_offsets(logits, target, min_pixels=4)
    after = presence(logits, bias, min_pixels=4)
    assert bias[1] == 0 and float(after[1]) == 1.0
    assert abs(float(after[2]) - 0.15) <= 1 / n


def test_file_class_stats_count_a_class_present_where_it_covers_its_presence_area(tmp_path):
    import numpy as np
    from PIL import Image
    from synthgen.anchors.calibration import PRESENCE_AREA, file_class_stats
    from synthgen.anchors.data import DomainDataset

    assert round(64 * 64 * PRESENCE_AREA) == 4
    folder = tmp_path / "m"
    folder.mkdir()
    for i, px in enumerate([0, 3, 4, 9]):  # class 2 on 0, 3, 4 and 9 px of a 64-px mask
        m = np.zeros((64, 64), np.uint8)
        m.reshape(-1)[:px] = 2
        Image.fromarray(m, mode="L").save(folder / f"{i}.png")
    stats = file_class_stats(DomainDataset(load_domain_spec("seg"), folder, 64))
    assert float(stats.presence[2]) == 0.5 and float(stats.presence[0]) == 1.0 and float(stats.presence[1]) == 0.0
    assert float(stats.pixels[2]) == 16 and abs(float(stats.shares.sum()) - 1) < 1e-6


def test_mask_fit_writes_calibrated_offsets_and_keeps_the_checkpoint_as_trained(tmp_path, gen):
    from synthgen.runs import RunFolder

    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=4, lr=1e-3, progress=False, preview_every=0, regressor_batch_norm=False)
    out = fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=4, calibration_latents=16, **opts)
    anchor = load_anchor(out)
    record = anchor.metadata["class_frequency_calibration"]
    assert record["latents"] == 16 and all(v <= 0 for v in record["offsets"].values())
    for c in record["share_after"]:  # a class drawn over its share of the files is lowered
        if record["share_before"][c] > record["share_files"][c] + 1e-3:
            assert record["offsets"][c] < 0, c
    # the recorded shares are what the written file draws on those latents (up to pixels whose
    # near-tied logits round the other way once the offsets sit in the bias)
    from synthgen.anchors.calibration import OCCASIONAL_PRESENCE, argmax_shares, presence, presence_pixels, sampled_logits
    logits, side = sampled_logits(anchor, gen, 16, record["seed"])
    zero = torch.zeros(anchor.spec.num_classes)
    drawn = argmax_shares(logits, zero)
    appears = presence(logits.reshape(16, -1, logits.shape[1]), zero, presence_pixels(*side))
    for c, share, seen in zip(anchor.spec.class_names, drawn, appears):
        assert abs(float(share) - record["share_after"][c]) < 1e-2, c
        assert abs(float(seen) - record["presence_after"][c]) <= 1 / 16, c
        if record["presence_files"][c] < OCCASIONAL_PRESENCE:
            # no occasional class appears in more of the samples than of the files (up to one sample of rounding)
            assert record["presence_after"][c] <= record["presence_files"][c] + 1 / 16, c
            if record["presence_before"][c] > record["presence_files"][c] + 1 / 16:
                assert record["presence_offsets"][c] < 0, c
        else:  # a class most files hold is never lowered for its presence
            assert record["presence_offsets"][c] == 0, c
    trained = RunFolder(tmp_path / "r").read_checkpoint()["anchor"]
    state = anchor.state_dict()
    last = f"regressor.net.{len(anchor.regressor.net) - 1}.bias"
    offsets = torch.tensor([record["offsets"][c] for c in anchor.spec.class_names])
    assert torch.allclose(state[last], trained[last] + offsets, atol=1e-3)
    assert all(torch.equal(state[k], trained[k]) for k in state if k != last)
    plain = load_anchor(fit("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "r2", steps=4,
                            calibration_latents=0, **opts))
    assert "class_frequency_calibration" not in plain.metadata


def test_realism_refused_for_the_photo_domain(tmp_path, gen):
    with pytest.raises(FitError, match="lambda-realism"):
        fit("rgb", write_images(tmp_path / "d", channels=3), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=1, lambda_realism=0.5, progress=False)


def test_class_balance_only_for_masks(tmp_path, gen):
    with pytest.raises(FitError, match="class-balance"):
        fit("sketch", write_images(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=1, class_balance=0.5, progress=False)


def test_init_from_starts_from_the_anchors_weights(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    first = fit("seg", data, gen, tmp_path / "first.safetensors", run_dir=tmp_path / "r1", steps=5, batch_size=2,
                lr=1e-3, progress=False, preview_every=0)
    # lr 0: the continued run's weights must be exactly the ones it started from.
    again = fit("seg", data, gen, tmp_path / "again.safetensors", run_dir=tmp_path / "r2", steps=1, batch_size=2,
                lr=0.0, init_from=str(first), seed=5, progress=False, preview_every=0, calibration_latents=0)
    a, b = load_anchor(first).state_dict(), load_anchor(again).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "num_batches_tracked" not in k and "running" not in k)
    # A different regressor shape: the encoder is taken, the regressor starts fresh.
    other = fit("seg", data, gen, tmp_path / "other.safetensors", run_dir=tmp_path / "r3", steps=1, batch_size=2,
                lr=0.0, init_from=str(first), regressor_widths=(16,), progress=False, preview_every=0)
    c = load_anchor(other).state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a if k.startswith("encoder.") and "running" not in k
               and "num_batches_tracked" not in k)


def test_init_from_warm_starts_from_an_anchor_of_another_generator_of_the_same_shapes(tmp_path, gen):
    # The generator fine-tuned (here: other weights, same architecture): the old anchor is a
    # warm start, and the new file belongs to the new generator.
    first = fit("rgb", write_images(tmp_path / "i"), gen, tmp_path / "first.safetensors", run_dir=tmp_path / "r1",
                steps=2, batch_size=2, progress=False, preview_every=0)
    tuned = build_generator("tiny", seed=1)
    again = fit("rgb", write_images(tmp_path / "i"), tuned, tmp_path / "again.safetensors", run_dir=tmp_path / "r2",
                steps=1, batch_size=2, lr=0.0, init_from=str(first), progress=False, preview_every=0)
    old, new = load_anchor(first), load_anchor(again, generator=tuned)  # refused if it still named the old generator
    assert new.generator_fingerprint == tuned.fingerprint != old.generator_fingerprint
    a, b = old.encoder.state_dict(), new.encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "w_avg" and "running" not in k and "num_batches" not in k)
    assert torch.allclose(b["w_avg"], new.encoder.w_avg) and not torch.equal(a["w_avg"], b["w_avg"])  # its own mean w
    # Another architecture: one clear line, no traceback.
    wider = build_generator(dataclasses.replace(PRESETS["tiny"], w_dim=2 * PRESETS["tiny"].w_dim))
    with pytest.raises(FitError, match="--init-from .*(shapes differ|differs from this fit)"):
        fit("rgb", write_images(tmp_path / "i"), wider, tmp_path / "x.safetensors", run_dir=tmp_path / "r3", steps=1,
            init_from=str(first), progress=False, preview_every=0)
    assert not (tmp_path / "x.safetensors").exists()


def test_init_from_refuses_another_domain(tmp_path, gen):
    sketch = fit("sketch", write_images(tmp_path / "s"), gen, tmp_path / "sketch.safetensors", run_dir=tmp_path / "r1",
                 steps=1, progress=False, preview_every=0)
    with pytest.raises(FitError, match="anchors domain 'sketch'"):
        fit("seg", write_masks(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r2", steps=1,
            init_from=str(sketch), progress=False)


def test_mask_class_stats_read_numpy_masks_as_the_files_are_read():
    import numpy as np
    from synthgen.anchors.calibration import mask_class_stats

    masks = np.zeros((2, 64, 64), np.uint8)
    masks[0].reshape(-1)[:4] = 1  # class 1 covers its presence area in one of two masks
    stats = mask_class_stats(masks, 3)
    assert stats.pixels.tolist() == [2 * 64 * 64 - 4, 4, 0] and stats.presence.tolist() == [1.0, 0.5, 0.0]
