"""The reference U-Net: shapes, file format, flip augmentation, training, determinism."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthgen.celebamask import CLASS_ID, CLASS_NAMES
from synthgen.cli import main
from synthgen.evaluation.segmenter import (
    SegmenterConfig, SegmenterFileError, UNet, count_parameters, images_to_input, load_segmenter, predict, save_segmenter,
)
from synthgen.evaluation.train_segmenter import (
    TrainConfig, augment, evaluate_segmenter, mirror_class_map, new_segmenter, train_segmenter,
)
from test_evaluation_data import fake_faces, write_pair_folder


def test_unet_any_size_and_budget(tmp_path):
    model = UNet(SegmenterConfig())
    assert 200_000 < count_parameters(model) < 2_000_000
    for h, w in [(64, 64), (50, 37), (8, 8)]:
        assert model(torch.zeros(2, 3, h, w)).shape == (2, 19, h, w)
    path = save_segmenter(model, tmp_path / "seg.safetensors")
    assert path.stat().st_size < 10 * 2**20


def test_save_load_roundtrip_and_errors(tmp_path):
    model = new_segmenter(SegmenterConfig(num_classes=5, base_channels=4, train_size=16), seed=3)
    images = fake_faces(3, size=16).images
    path = save_segmenter(model.eval(), tmp_path / "a.safetensors", extra={"note": 1})
    loaded = load_segmenter(path)
    assert loaded.config.num_classes == 5 and loaded.training_facts == {"note": 1}
    np.testing.assert_array_equal(predict(loaded, images), predict(model, images))
    with pytest.raises(SegmenterFileError, match="not found"):
        load_segmenter(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(SegmenterFileError, match="not a safetensors"):
        load_segmenter(tmp_path / "junk.safetensors")


def test_mirror_map_swaps_left_and_right_only():
    table = mirror_class_map(CLASS_NAMES)
    for a, b in [("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")]:
        assert table[CLASS_ID[a]] == CLASS_ID[b] and table[CLASS_ID[b]] == CLASS_ID[a]
    for name in ("skin", "ear_r", "neck_l", "hair"):  # earring and necklace are not sides
        assert table[CLASS_ID[name]] == CLASS_ID[name]


def test_flip_augmentation_mirrors_pixels_and_labels():
    pairs = fake_faces(8, size=16)
    x = images_to_input(pairs.images)
    y = torch.from_numpy(pairs.masks).long()
    gen = torch.Generator().manual_seed(0)
    xa, ya = augment(x, y, TrainConfig(jitter=0), mirror_class_map(CLASS_NAMES), gen)
    flipped = [i for i in range(8) if not torch.equal(xa[i], x[i])]
    assert 0 < len(flipped) < 8
    for i in flipped:
        assert torch.equal(xa[i], x[i].flip(-1))
        # the eye on the image's left is the person's right eye, after flipping too
        left_half = ya[i][:, :8]
        assert (left_half == CLASS_ID["r_eye"]).any() and not (left_half == CLASS_ID["l_eye"]).any()


def test_training_learns_held_out_faces_and_is_deterministic():
    torch.set_num_threads(1)
    train, test = fake_faces(64, size=32, seed=0), fake_faces(16, size=32, seed=1)
    config = TrainConfig(steps=150, batch_size=12, seed=0)
    model, facts = train_segmenter(train, config, progress=False)
    cm = evaluate_segmenter(model, test)
    report = cm.report()
    assert report["miou"] > 0.7 and report["pixel_accuracy"] > 0.95, report
    assert min(report["iou"][c] for c in ("background", "skin", "hair", "mouth")) > 0.9, report
    assert facts["steps_per_second"] > 0 and facts["train_pairs"] == 64
    # predictions at another size go through the training size
    big = np.repeat(np.repeat(test.images, 2, axis=1), 2, axis=2)
    assert predict(model, big).shape == (16, 64, 64)
    short = TrainConfig(steps=3, batch_size=4, seed=5)
    a, _ = train_segmenter(train, short, progress=False)
    b, _ = train_segmenter(train, short, progress=False)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_training_rejects_out_of_range_class_ids():
    pairs = fake_faces(4, size=16)
    pairs.masks[0, 0, 0] = 30
    with pytest.raises(ValueError, match="class id 30"):
        train_segmenter(pairs, TrainConfig(steps=1), progress=False)


def test_train_segmenter_command(tmp_path):
    data = write_pair_folder(fake_faces(16, size=16), tmp_path / "data")
    val = write_pair_folder(fake_faces(4, size=16, seed=2), tmp_path / "val")
    out = tmp_path / "seg.safetensors"
    args = ["eval", "train-segmenter", "--data", str(data), "--out", str(out), "--steps", "4",
            "--batch-size", "4", "--val", str(val)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "steps/s" in result.output and "validation mIoU" in result.output
    assert load_segmenter(out).training_facts["train_pairs"] == 16
    bad = CliRunner().invoke(main, ["eval", "train-segmenter", "--data", str(tmp_path), "--out", str(out)])
    assert bad.exit_code == 1 and "rgb/ + seg/" in bad.output and "Traceback" not in bad.output


def test_frechet_command_in_segmenter_space(tmp_path):
    from test_evaluation_data import write_pair_shards

    a = write_pair_folder(fake_faces(6, size=16, seed=0), tmp_path / "a")
    b = write_pair_shards(fake_faces(6, size=16, seed=1), tmp_path / "b")
    path = save_segmenter(new_segmenter(SegmenterConfig(base_channels=4, train_size=16), seed=0),
                          tmp_path / "seg.safetensors")
    args = ["eval", "frechet", "--a", str(a), "--b", str(b), "--size", "16", "--segmenter", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"feature_space": "reference-segmenter"' in result.output and '"n_b": 6' in result.output
    same = CliRunner().invoke(main, args[:4] + ["--b", str(a)] + args[6:])
    assert '"frechet_distance": 0.0' in same.output
    neither = CliRunner().invoke(main, args[:6])
    assert neither.exit_code == 2 and "--segmenter" in neither.output
