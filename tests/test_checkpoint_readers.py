"""Readers of rosinality `.pt` and NVIDIA `.pkl` StyleGAN2 checkpoints, built here with random weights.

The checkpoints are made from key names and shapes as the formats define them (docs/generators.md,
"Checkpoint formats"), not from synthgen's modules, so a wrong mapping cannot cancel out.
"""
import argparse
import os
import pickle
import sys
import types
from collections import OrderedDict

import pytest
import torch

from synthgen.generators import CheckpointError, detect_format, load_generator, save_generator




SIZE, Z, W, N_MLP = 32, 24, 16, 2
CH = {4: 16, 8: 16, 16: 12, 32: 8}
RES = [4, 8, 16, 32]


def nvidia_state(seed=0):
    """Flat NVIDIA G_ema state: mapping.fc{i}, synthesis.b{R}.conv{0,1}/torgb, w_avg."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    st = {}
    for i in range(N_MLP):
        st[f"mapping.fc{i}.weight"] = r(W, Z if i == 0 else W) * 100  # stored / lr_mul
        st[f"mapping.fc{i}.bias"] = r(W)
    st["mapping.w_avg"] = r(W) * 0.1
    filt = torch.tensor([1.0, 3, 3, 1])
    filt = torch.outer(filt, filt) / 64
    st["synthesis.b4.const"] = r(CH[4], 4, 4)
    for res in RES:
        cin = CH[res // 2] if res > 4 else CH[4]
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        for j, conv in enumerate(convs):
            p = f"synthesis.b{res}.{conv}."
            i = cin if j == 0 and res > 4 else CH[res]
            st[p + "weight"] = r(CH[res], i, 3, 3)
            st[p + "bias"] = r(CH[res]) * 0.2
            st[p + "noise_strength"] = r(()) * 0.3
            st[p + "noise_const"] = r(res, res)
            st[p + "affine.weight"] = r(i, W)
            st[p + "affine.bias"] = 1 + 0.1 * r(i)
            st[p + "resample_filter"] = filt
        st[f"synthesis.b{res}.resample_filter"] = filt
        p = f"synthesis.b{res}.torgb."
        st[p + "weight"] = r(3, CH[res], 1, 1)
        st[p + "bias"] = r(3) * 0.1
        st[p + "affine.weight"] = r(CH[res], W)
        st[p + "affine.bias"] = 1 + 0.1 * r(CH[res])
    return st


def rosinality_from_nvidia(nv):
    """The NVIDIA -> rosinality mapping of docs/generators.md, written out independently of the reader."""
    ro = {f"style.{i + 1}.{k}": nv[f"mapping.fc{i}.{k}"] for i in range(N_MLP) for k in ("weight", "bias")}
    ro["input.input"] = nv["synthesis.b4.const"][None]
    names = [(4, "conv1", "conv1")] + [(res, f"conv{j}", f"convs.{2 * k + j}") for k, res in enumerate(RES[1:]) for j in (0, 1)]
    for layer, (res, src, dst) in enumerate(names):
        p = f"synthesis.b{res}.{src}."
        ro[dst + ".conv.weight"] = nv[p + "weight"][None]
        ro[dst + ".conv.modulation.weight"] = nv[p + "affine.weight"]
        ro[dst + ".conv.modulation.bias"] = nv[p + "affine.bias"]
        ro[dst + ".noise.weight"] = nv[p + "noise_strength"].reshape(1)
        ro[dst + ".activate.bias"] = nv[p + "bias"]
        ro[f"noises.noise_{layer}"] = nv[p + "noise_const"][None, None]
        if src == "conv0":
            ro[dst + ".conv.blur.kernel"] = nv[p + "resample_filter"] * 4
    for k, res in enumerate(RES):
        p, dst = f"synthesis.b{res}.torgb.", ("to_rgb1" if res == 4 else f"to_rgbs.{k - 1}")
        ro[dst + ".conv.weight"] = nv[p + "weight"][None]
        ro[dst + ".conv.modulation.weight"] = nv[p + "affine.weight"]
        ro[dst + ".conv.modulation.bias"] = nv[p + "affine.bias"]
        ro[dst + ".bias"] = nv[p + "bias"].reshape(1, 3, 1, 1)
        if res > 4:
            ro[dst + ".upsample.kernel"] = nv[p.replace("torgb.", "resample_filter")] * 4
    return ro


def save_rosinality(path, nv, with_avg=True, with_noise=True):
    g_ema = rosinality_from_nvidia(nv)
    if not with_noise:
        g_ema = {k: v for k, v in g_ema.items() if not k.startswith("noises.")}
    ckpt = {"g_ema": g_ema, "g": g_ema, "args": argparse.Namespace(size=SIZE, n_mlp=N_MLP)}
    if with_avg:
        ckpt["latent_avg"] = nv["mapping.w_avg"]
    torch.save(ckpt, path)
    return path


# --- an NVIDIA persistence pickle, made with the same globals the real ones use -----------------
SRC = "import os\nos.system('touch SHOULD_NOT_EXIST')\n"


def _fake_nvidia_modules(monkeypatch):
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # the safe reader never calls this
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    dnnlib_util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    for name, mod in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                      ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", dnnlib_util)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return persistence, EasyDict


class Persistent:
    def __init__(self, reconstruct, class_name, state):
        self.reconstruct, self.class_name, self.state = reconstruct, class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=4, module_src=SRC, class_name=self.class_name, state=self.state)
        return (self.reconstruct, (meta,))


def save_nvidia_pkl(path, nv, monkeypatch, extra=None):
    persistence, EasyDict = _fake_nvidia_modules(monkeypatch)
    rec = persistence._reconstruct_persistent_obj

    def module(class_name, params=(), buffers=(), children=(), **attrs):
        state = {"training": False, "_parameters": OrderedDict(params), "_buffers": OrderedDict(buffers),
                 "_non_persistent_buffers_set": set(), "_modules": OrderedDict(children),
                 "_init_kwargs": EasyDict(attrs.pop("init", {})), **attrs}
        return Persistent(rec, class_name, state)

    P = torch.nn.Parameter
    fcs = [(f"fc{i}", module("FullyConnectedLayer", [("weight", P(nv[f"mapping.fc{i}.weight"])), ("bias", P(nv[f"mapping.fc{i}.bias"]))],
                             activation="lrelu", weight_gain=0.01 / (Z if i == 0 else W) ** 0.5, bias_gain=0.01))
           for i in range(N_MLP)]
    mapping = module("MappingNetwork", buffers=[("w_avg", nv["mapping.w_avg"])], children=fcs)
    blocks = []
    for res in RES:
        children = []
        for conv in (["conv1"] if res == 4 else ["conv0", "conv1"]) + ["torgb"]:
            p = f"synthesis.b{res}.{conv}."
            aff = module("FullyConnectedLayer", [("weight", P(nv[p + "affine.weight"])), ("bias", P(nv[p + "affine.bias"]))],
                         activation="linear", bias_gain=1.0)
            if conv == "torgb":
                children.append((conv, module("ToRGBLayer", [("weight", P(nv[p + "weight"])), ("bias", P(nv[p + "bias"]))],
                                              children=[("affine", aff)], conv_clamp=256)))
            else:
                children.append((conv, module(
                    "SynthesisLayer", [("weight", P(nv[p + "weight"])), ("noise_strength", P(nv[p + "noise_strength"])), ("bias", P(nv[p + "bias"]))],
                    [("resample_filter", nv[p + "resample_filter"]), ("noise_const", nv[p + "noise_const"])],
                    children=[("affine", aff)], conv_clamp=256, activation="lrelu", up=2 if conv == "conv0" else 1)))
        params = [("const", P(nv["synthesis.b4.const"]))] if res == 4 else []
        blocks.append((f"b{res}", module("SynthesisBlock", params, [("resample_filter", nv[f"synthesis.b{res}.resample_filter"])],
                                         children, architecture="skip", use_fp16=False)))
    synthesis = module("SynthesisNetwork", children=blocks)
    g = module("Generator", children=[("synthesis", synthesis), ("mapping", mapping)], z_dim=Z, c_dim=0, w_dim=W,
               img_resolution=SIZE, img_channels=3, init={"z_dim": Z, "mapping_kwargs": EasyDict(num_layers=N_MLP)})
    data = {"G": g, "G_ema": g, "D": None, "training_set_kwargs": EasyDict(resolution=SIZE, xflip=False)}
    data.update(extra or {})
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


@pytest.fixture(scope="module")
def nv():
    return nvidia_state(0)


def test_rosinality_reader_reads_training_checkpoint(nv, tmp_path):
    path = save_rosinality(tmp_path / "ckpt.pt", nv)
    assert detect_format(path) == "rosinality"
    gen = load_generator(path)
    assert (gen.resolution, gen.num_ws, gen.latent_dim, gen.z_dim) == (32, 8, W, Z)
    assert gen.cfg.n_mlp == N_MLP and gen.cfg.to_dict()["channels"] == {str(k): v for k, v in CH.items()}
    assert torch.equal(gen.w_avg, nv["mapping.w_avg"])
    syn = gen.generator.synthesis
    assert torch.equal(syn.convs[3].conv.weight[0], nv["synthesis.b16.conv1.weight"])
    assert torch.equal(syn.noises.noise_6, nv["synthesis.b32.conv1.noise_const"][None, None])
    out = gen.synthesize(gen.sample_latents([0, 1], seed=0, truncation_psi=0.7))
    assert out.rgb.shape == (2, 3, 32, 32) and torch.isfinite(out.rgb).all()


def test_rosinality_without_latent_avg_and_noise(nv, tmp_path):
    gen = load_generator(save_rosinality(tmp_path / "a.pt", nv, with_avg=False, with_noise=False))
    z = torch.from_numpy(__import__("numpy").random.default_rng(0).standard_normal((10_000, Z)).astype("float32"))
    with torch.no_grad():
        assert torch.allclose(gen.w_avg, gen.generator.mapping(z).mean(0), atol=1e-4)
    again = load_generator(save_rosinality(tmp_path / "b.pt", nv, with_avg=False, with_noise=False))
    assert gen.fingerprint == again.fingerprint  # missing noise is filled deterministically


def test_rosinality_refuses_unknown_globals(nv, tmp_path):
    ckpt = {"g_ema": rosinality_from_nvidia(nv), "args": types.SimpleNamespace(size=32)}
    torch.save(ckpt, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="odd.pt: refused to unpickle") as info:
        load_generator(tmp_path / "odd.pt")
    assert "\n" not in str(info.value)


def test_rosinality_missing_keys_and_truncated(nv, tmp_path):
    g_ema = rosinality_from_nvidia(nv)
    del g_ema["convs.2.noise.weight"]
    torch.save({"g_ema": g_ema}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"m.pt: missing keys convs.2.noise.weight"):
        load_generator(tmp_path / "m.pt")
    data = save_rosinality(tmp_path / "full.pt", nv).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cut.pt: unreadable torch file"):
        load_generator(tmp_path / "cut.pt")
    torch.save({"g": {}}, tmp_path / "nog.pt")
    with pytest.raises(CheckpointError, match="no 'g_ema'"):
        load_generator(tmp_path / "nog.pt")


def test_nvidia_pkl_matches_rosinality_and_converts(nv, tmp_path, monkeypatch):
    pkl = save_nvidia_pkl(tmp_path / "net.pkl", nv, monkeypatch)
    pt = save_rosinality(tmp_path / "net.pt", nv)
    assert detect_format(pkl) == "nvidia-pkl"
    a, b = load_generator(pkl), load_generator(pt)
    assert a.cfg.conv_clamp == 256 and a.cfg.lr_mlp == pytest.approx(0.01)
    assert torch.equal(a.w_avg, b.w_avg)
    lat = a.sample_latents([0, 1, 2], seed=1, truncation_psi=0.8)
    ra, rb = a.synthesize(lat), b.synthesize(lat)
    assert torch.allclose(ra.rgb, rb.rgb, atol=1e-5) and torch.allclose(ra.features, rb.features, atol=1e-5)
    for src, gen in (("pkl", a), ("pt", b)):
        native = load_generator(save_generator(gen, tmp_path / f"{src}.safetensors"))
        assert native.fingerprint == gen.fingerprint
        assert torch.equal(native.synthesize(lat).rgb, gen.synthesize(lat).rgb)
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists() and not os.path.exists("SHOULD_NOT_EXIST")


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_before_anything_runs(nv, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    pkl = save_nvidia_pkl(tmp_path / "evil.pkl", nv, monkeypatch, extra={"augment_pipe": Evil(marker)})
    with pytest.raises(CheckpointError, match=r"evil.pkl: pickle needs global (posix|os|nt)\.system") as info:
        load_generator(pkl)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    # The plain pickle module would have run it: the test's pickle is really dangerous.
    pickle.loads(pkl.read_bytes())
    assert marker.exists()


def test_nvidia_pkl_without_g_ema_and_truncated(nv, tmp_path, monkeypatch):
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"weights": [1, 2, 3]}, f)
    with pytest.raises(CheckpointError, match="no persistent 'G_ema'"):
        load_generator(tmp_path / "plain.pkl")
    data = save_nvidia_pkl(tmp_path / "full.pkl", nv, monkeypatch).read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pkl"):
        load_generator(tmp_path / "cut.pkl")


def test_stylegan3_pickle_is_named_not_supported(tmp_path):
    import numpy as np

    # The shape of NVIDIA's persistence pickles: the network's source travels with its arrays.
    payload = {"G_ema": {"module_src": "class SynthesisInput(torch.nn.Module):\n    pass\n",
                         "class_name": "Generator", "freqs": np.zeros(3)}}
    path = tmp_path / "stylegan3-t-ffhq-1024.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="StyleGAN3 is not supported"):
        load_generator(path)
