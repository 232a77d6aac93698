"""`synthgen sample` end to end on the tiny world: layout, determinism, resume, refusal."""
from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sample_world import sample_args, shard_hashes
from synthgen.cli import main


def run(args, ok=True):
    result = CliRunner().invoke(main, args)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def dataset(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    run(sample_args(*world, out))
    return out


def tar_members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_layout_card_and_manifest(dataset):
    assert sorted(p.name for p in (dataset / "shards").iterdir()) == ["000000.tar", "000001.tar", "000002.tar"]
    assert sorted(p.name for p in (dataset / "stats").iterdir()) == ["000000.json", "000001.json", "000002.json"]
    card = json.loads((dataset / "dataset.json").read_text())
    cfg = card["config"]
    assert cfg["domains"] == ["rgb", "seg", "sketch", "landmark"] and cfg["shard_size"] == 10
    assert cfg["anchors"]["rgb"] == "generator" and len(cfg["anchors"]["seg"]) == 64
    assert card["ranges"] == [[0, 30]] and card["command"].startswith("synthgen sample")
    table = pq.read_table(dataset / "manifest.parquet")
    assert table.column("index").to_pylist() == list(range(30))
    assert table.column("shard").to_pylist() == [i // 10 for i in range(30)]
    members = tar_members(dataset / "shards" / "000001.tar")
    assert set(members) == {f"{i:09d}.{f}" for i in range(10, 20)
                            for f in ("json", "landmark.npy", "landmark.png", "rgb.png", "seg.png", "sketch.png")}
    meta = json.loads(members["000000012.json"])
    assert meta["index"] == 12 and meta["seed"] == 0 and meta["style_mix_layer"] is None
    row = table.slice(12, 1).to_pylist()[0]
    assert row["seg_bytes"] == len(members["000000012.seg.png"])
    assert row["landmark_bytes"] == len(members["000000012.landmark.npy"]) + len(members["000000012.landmark.png"])
    mask = np.asarray(Image.open(io.BytesIO(members["000000012.seg.png"])))
    fractions = np.bincount(mask.reshape(-1), minlength=19) / mask.size
    np.testing.assert_allclose(row["seg_class_fractions"], fractions, atol=1e-6)
    points = np.load(io.BytesIO(members["000000012.landmark.npy"]))
    np.testing.assert_allclose(np.array(row["landmark_points"]), points)
    assert row["quality"] == pytest.approx(min(row["seg_confidence"], row["landmark_confidence"]))
    assert 1 / 19 <= row["seg_confidence"] <= 1


def test_sample_is_a_function_of_its_index(dataset, world):
    """The rgb of sample 17 equals the generator's photo of index 17 computed on its own, and its
    landmarks what the landmark anchor (on the pyramid tap) reads from that same pass."""
    from synthgen.anchors.anchor import load_anchor
    from synthgen.anchors.codecs import decode
    from synthgen.anchors.spec import load_domain_spec
    from synthgen.generators import load_generator

    gen = load_generator(world[0])
    landmark = load_anchor(world[1] / "landmark.safetensors", gen)
    assert landmark.tap == "pyramid"
    with torch.inference_mode():
        synthesis = gen.synthesize(gen.sample_latents([17], 0, 1.0), taps=("pyramid",))
        rgb = decode(load_domain_spec("rgb"), synthesis.rgb)["image"][0]
        points = decode(landmark.spec, landmark.regress(synthesis))["points"][0]
    members = tar_members(dataset / "shards" / "000001.tar")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(members["000000017.rgb.png"]))), rgb)
    np.testing.assert_allclose(np.load(io.BytesIO(members["000000017.landmark.npy"])), points, atol=1 / 256)


def test_a_sample_does_not_depend_on_what_else_is_computed(world):
    """Samples 8..15 alone, in batches of 3 and inside a batch of 16 give the same arrays: the
    device loop always computes whole aligned blocks of a fixed shape."""
    from synthgen.sample.plan import SampleConfig
    from synthgen.sample.sampler import compute_batch, prepare

    cfg = SampleConfig(out_dir=world[0].parent / "unused", generator=str(world[0]), anchors_dir=str(world[1]),
                       domains=("rgb", "seg", "sketch", "landmark"), device="cpu")
    prep = prepare(cfg, "")

    def run(*groups):
        return [s for indices in groups for s in compute_batch(prep.generator, prep.heads, indices, cfg, shard=1)]

    runs = [run(*([i] for i in range(8, 16))), run([8, 9, 10], [11, 12, 13], [14, 15]),
            [s for s in run(list(range(4, 20))) if 8 <= s.index < 16]]
    for other in runs[1:]:
        assert [s.index for s in other] == list(range(8, 16))
        for a, b in zip(runs[0], other):
            for domain, fields in a.arrays.items():
                for name, value in fields.items():
                    np.testing.assert_array_equal(value, b.arrays[domain][name], err_msg=f"{a.index} {domain}.{name}")


@pytest.mark.parametrize("batch_size,workers", [("3", "0"), ("1", "2"), ("7", "1"), ("16", "2")])
def test_batch_size_and_workers_do_not_change_bytes(dataset, world, tmp_path, batch_size, workers):
    out = tmp_path / "other"
    args = sample_args(*world, out)
    args[args.index("--batch-size") + 1] = batch_size
    args[args.index("--workers") + 1] = workers
    run(args)
    assert shard_hashes(out) == shard_hashes(dataset)
    # Confidence scores are float means of raw logits: equal up to float rounding.
    a, b = (pq.read_table(d / "manifest.parquet").to_pandas() for d in (out, dataset))
    scores = [c for c in a.columns if c.endswith(("_confidence", "_entropy")) or c == "quality"]
    assert a.drop(columns=scores).to_json() == b.drop(columns=scores).to_json()
    np.testing.assert_allclose(a[scores].to_numpy(), b[scores].to_numpy(), rtol=1e-5)


def test_rerun_skips_complete_shards_and_redoes_broken_ones(dataset, world, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    (out / "stats" / "000001.json").unlink()  # as if killed before the completion marker
    (out / "shards" / "000001.tar").write_bytes(b"half a tar")
    (out / "shards" / "000002.tar.tmp").write_bytes(b"leftover")
    result = run(sample_args(*world, out))
    assert "1 shards written, 2 already complete" in result.output
    assert shard_hashes(out) == shard_hashes(dataset)
    assert run(["verify", str(out)]).output.strip().endswith("3 shards: 3 ok, 0 missing, 0 corrupt")


def test_different_config_is_refused_unless_overwrite(dataset, world, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    result = run(sample_args(*world, out, "--seed", "1"), ok=False)
    assert result.exit_code == 1 and "different config (seed differ)" in result.output and "--overwrite" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Usage:" not in result.output
    run(sample_args(*world, out, "--seed", "1", "--overwrite"))
    assert json.loads((out / "dataset.json").read_text())["config"]["seed"] == 1
    assert shard_hashes(out) != shard_hashes(dataset)


def test_more_samples_extend_the_dataset(dataset, world, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    result = run(sample_args(*world, out, n=45))
    assert "2 shards written, 3 already complete" in result.output
    result = run(sample_args(*world, out, n=50))  # the partial last shard is redone, whole
    assert "1 shards written, 4 already complete" in result.output
    card = json.loads((out / "dataset.json").read_text())
    assert card["ranges"] == [[0, 50]] and card["n_samples"] == 50 and len(card["commands"]) == 3
    assert pq.read_table(out / "manifest.parquet").column("index").to_pylist() == list(range(50))
    assert {k: v for k, v in shard_hashes(out).items() if k < "000003"} == shard_hashes(dataset)


def test_dry_run_prints_plan_and_writes_nothing(world, tmp_path):
    result = run(sample_args(*world, tmp_path / "dry", "--dry-run", "--n", "25"))  # the short spelling
    assert "3 of 10 (000000..000002), 0 already complete" in result.output
    assert "rank 0: 3" in result.output and "GB total" in result.output
    assert not (tmp_path / "dry").exists()


def test_style_mixing_and_jpeg(world, tmp_path):
    out = tmp_path / "mix"
    run(sample_args(*world, out, "--style-mix", "0.5", "--image-format", "jpeg", "--quality", "80",
                    domains="rgb,seg", n=20))
    layers = pq.read_table(out / "manifest.parquet").column("style_mix_layer").to_pylist()
    assert any(v == -1 for v in layers) and any(v >= 1 for v in layers)
    members = tar_members(out / "shards" / "000000.tar")
    assert "000000000.rgb.jpg" in members and "000000000.seg.png" in members
    mixed = next(i for i, v in enumerate(layers) if v >= 1)
    assert json.loads(members[f"{mixed:09d}.json"])["style_mix_layer"] == layers[mixed]
    assert run(["verify", str(out)]).exit_code == 0


def test_user_errors_are_one_line(world, tmp_path):
    result = run(sample_args(world[0], tmp_path, tmp_path / "x", domains="rgb,seg"), ok=False)
    # A bad file or setting: one line naming it and the fix, exit 1 (exit 2 is for malformed options).
    assert result.exit_code == 1 and "needs its anchor" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Usage:" not in result.output
    result = run(sample_args(*world, tmp_path / "y", "--start-index", "5"), ok=False)
    assert result.exit_code == 1 and "multiple of the shard size" in result.output
    result = run(["sample", "--out", str(tmp_path / "z"), "--generator", str(world[0]), "--domains", "rgb",
                  "--device", "cpu", "--anchors", str(world[1]), "--style-mix", "2"], ok=False)
    assert result.exit_code == 2


def test_preview_reads_the_shards(dataset, tmp_path):
    result = run(["preview", str(dataset), "--n", "5", "--out", str(tmp_path / "grid.png"), "--size", "16"])
    assert "5 samples" in result.output
    assert Image.open(tmp_path / "grid.png").size == (4 * 16, 14 + 5 * 16)


def test_every_option_is_documented():
    from pathlib import Path

    from synthgen.sample.cli import preview, sample, verify

    doc = (Path(__file__).resolve().parent.parent / "docs" / "sampling.md").read_text()
    for command in (sample, verify, preview):
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert f"`{opt}" in doc, f"{command.name} {opt} is not in docs/sampling.md"


def test_own_generator_without_anchors_samples_rgb_and_names_the_fix_for_others(world, tmp_path):
    gen, _ = world
    base = ["sample", "--generator", str(gen), "--num-samples", "4", "--shard-size", "4", "--device", "cpu",
            "--no-progress"]
    # The built-in anchors were fit for the built-in generator only: rgb needs none.
    run(base + ["--domains", "rgb", "--out", str(tmp_path / "rgb")])
    assert (tmp_path / "rgb" / "manifest.parquet").is_file()
    result = run(base + ["--domains", "rgb,seg", "--out", str(tmp_path / "seg")], ok=False)
    assert result.exit_code != 0
    assert "built-in anchors work only with the built-in generator" in result.output
    assert "--anchors" in result.output and "Traceback" not in result.output
