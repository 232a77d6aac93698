"""`synthgen eval consistency`: a dataset's seg labels against a judge parsing its photos."""
import io
import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from synthgen.anchors.spec import load_domain_spec
from synthgen.celebamask import CLASS_ID, CLASS_NAMES
from synthgen.cli import main
from synthgen.dataset.card import spec_summary
from synthgen.dataset.layout import domain_fields
from synthgen.evaluation.consistency import label_consistency
from synthgen.evaluation.errors import ConsistencyError
from synthgen.evaluation.pairs import decode_photo, read_pairs, read_photos
from synthgen.evaluation.segmenter import SegmenterConfig, predict, save_segmenter
from synthgen.evaluation.train_segmenter import TrainConfig, train_segmenter
from synthgen.sample.encode import EncodeOptions, encode_image, encode_mask, encode_npy
from tests.dataset_files import as_dataset
from tests.test_evaluation_data import fake_faces

SIZE = 32


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """A small U-Net trained briefly on fake faces, so its parsing follows the photo."""
    model, _ = train_segmenter(fake_faces(32, SIZE, seed=1), TrainConfig(steps=40, batch_size=8, seed=0),
                               SegmenterConfig(base_channels=4, train_size=SIZE), progress=False)
    path = save_segmenter(model, tmp_path_factory.mktemp("judge") / "judge.safetensors")
    return path, model


def write_dataset(root, photos, masks, image_format="png", domains=("rgb", "seg"), points=None):
    """The folder `synthgen sample` writes: card with domain specs, one shard, its completion
    markers; fields encoded by the sampler's own encoders."""
    (root / "shards").mkdir(parents=True)
    specs = {d: load_domain_spec(d) for d in domains}
    opts = EncodeOptions(image_format=image_format)
    config = {"seed": 0, "truncation_psi": 1.0, "style_mix_prob": 0.0, "domains": list(domains),
              "image_format": image_format,
              "domain_specs": {d: spec_summary(s, domain_fields(s, image_format)) for d, s in specs.items()}}
    with tarfile.open(root / "shards" / "000000.tar", "w") as tar:
        for i, (photo, mask) in enumerate(zip(photos, masks)):
            fields = {}
            if "rgb" in specs:
                fields[domain_fields(specs["rgb"], image_format)[0]] = encode_image(photo, opts)
            if "seg" in specs:
                fields["seg.png"] = encode_mask(mask, specs["seg"].palette, 1)
            if "landmark" in specs:
                fields["landmark.npy"] = encode_npy(points[i])
            fields["json"] = b"{}"
            for name, data in fields.items():
                info = tarfile.TarInfo(f"{i:09d}.{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return as_dataset(root, config, n_samples=len(photos), shard_size=len(photos))


def encoded_photos(photos, image_format):
    """The photos as a reader gets them back from the format's encoder."""
    opts = EncodeOptions(image_format=image_format)
    return np.stack([decode_photo(encode_image(p, opts)) for p in photos])


def judged_dataset(root, model, n=6, image_format="png"):
    """A dataset whose seg labels are exactly the judge's parsing of its (decoded) photos."""
    photos = fake_faces(n, SIZE, seed=2).images
    verdict = predict(model, encoded_photos(photos, image_format))
    return write_dataset(root, photos, verdict, image_format), photos, verdict


def test_judge_parses_faces_into_several_classes(judge):
    verdict = predict(judge[1], fake_faces(6, SIZE, seed=2).images)
    assert len(np.unique(verdict)) >= 2  # otherwise the tests below would prove little


def test_labels_equal_to_the_judge_score_one(tmp_path, judge):
    root, _, verdict = judged_dataset(tmp_path / "d", judge[1])
    report = label_consistency(root, judge[0])
    assert report["samples"] == 6 and report["miou"] == 1.0 and report["pixel_accuracy"] == 1.0
    assert report["pixels"] == 6 * SIZE * SIZE and report["truth"] == "judge"
    assert report["miou_present"] == 1.0


def test_corrupted_labels_lower_the_score_by_the_right_amount(tmp_path, judge):
    photos = fake_faces(6, SIZE, seed=2).images
    verdict = predict(judge[1], photos)
    labels = verdict.copy()
    labels[0, :8, :] = CLASS_ID["hat"] if (verdict[0, :8] != CLASS_ID["hat"]).all() else CLASS_ID["cloth"]
    changed = int((labels != verdict).sum())
    assert changed > 0
    report = label_consistency(write_dataset(tmp_path / "d", photos, labels), judge[0])
    assert report["pixel_accuracy"] == pytest.approx(1 - changed / (6 * SIZE * SIZE))
    assert report["miou"] < 1.0


def test_presence_counts_photos_where_the_judge_sees_a_class(tmp_path, judge):
    root, _, verdict = judged_dataset(tmp_path / "d", judge[1])
    report = label_consistency(root, judge[0], n=4)
    assert report["samples"] == 4
    for c, name in enumerate(CLASS_NAMES):
        assert report["presence"][name] == pytest.approx(np.mean([(v == c).any() for v in verdict[:4]]))
    present = {p["class"] for p in report["present_classes"]}
    assert present == {name for c, name in enumerate(CLASS_NAMES) if (verdict[:4] == c).any()}
    assert all(p["iou"] == 1.0 for p in report["present_classes"])
    strict = label_consistency(root, judge[0], n=4, min_pixels=20)
    for c, name in enumerate(CLASS_NAMES):
        expected = np.mean([(v == c).sum() >= 20 for v in verdict[:4]])
        assert strict["presence"][name] == pytest.approx(expected)


@pytest.mark.parametrize("image_format,field", [("webp", "rgb.webp"), ("jpeg", "rgb.jpg")])
def test_lossy_photo_formats_are_read_from_the_card(tmp_path, judge, image_format, field):
    root, photos, verdict = judged_dataset(tmp_path / "d", judge[1], image_format=image_format)
    names = tarfile.open(root / "shards" / "000000.tar").getnames()
    assert f"000000000.{field}" in names and "000000000.rgb.png" not in names
    report = label_consistency(root, judge[0])
    assert report["samples"] == 6 and report["miou"] == 1.0 and report["photo_field"] == field
    # the shared reader of `eval labels` and `eval downstream`, and `eval frechet`'s
    pairs = read_pairs(root)
    np.testing.assert_array_equal(pairs.images, encoded_photos(photos, image_format))
    np.testing.assert_array_equal(pairs.masks, verdict)
    assert read_photos(root, size=SIZE).shape == (6, SIZE, SIZE, 3)


def test_eval_labels_reads_a_jpeg_dataset(tmp_path):
    from synthgen.evaluation.label_accuracy import synthetic_label_accuracy
    from synthgen.toyfaces import render_batch, seed_to_z

    truth = render_batch(seed_to_z(0, range(3)), SIZE, domains=("rgb", "seg"))
    root = write_dataset(tmp_path / "d", truth["rgb"], truth["seg"], image_format="jpeg")
    report = synthetic_label_accuracy(root)
    assert report["samples"] == 3 and report["miou"] == 1.0


def test_a_judge_with_other_classes_is_refused(tmp_path, judge):
    root, _, _ = judged_dataset(tmp_path / "d", judge[1])
    import torch

    from synthgen.evaluation.segmenter import UNet

    torch.manual_seed(0)
    names = list(CLASS_NAMES[:-1]) + ["shoulders"]
    other = save_segmenter(UNet(SegmenterConfig(base_channels=4, class_names=names)), tmp_path / "other.safetensors")
    with pytest.raises(ConsistencyError, match="shoulders"):
        label_consistency(root, other)
    fewer = save_segmenter(UNet(SegmenterConfig(num_classes=5, base_channels=4)), tmp_path / "five.safetensors")
    with pytest.raises(ConsistencyError, match="5 classes"):
        label_consistency(root, fewer)
    result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--judge", str(other)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "differ" in result.output


def test_datasets_without_rgb_or_seg_and_missing_judges_are_refused(tmp_path, judge):
    photos = fake_faces(2, SIZE).images
    no_seg = write_dataset(tmp_path / "no_seg", photos, fake_faces(2, SIZE).masks, domains=("rgb",))
    no_rgb = write_dataset(tmp_path / "no_rgb", photos, fake_faces(2, SIZE).masks, domains=("seg",))
    for root, missing in ((no_seg, "no seg"), (no_rgb, "no rgb")):
        with pytest.raises(ConsistencyError, match=missing):
            label_consistency(root, judge[0])
        result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--judge", str(judge[0])])
        assert result.exit_code == 1 and missing in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    root, _, _ = judged_dataset(tmp_path / "d", judge[1])
    result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--judge", str(tmp_path / "none.safetensors")])
    assert result.exit_code == 1 and "not found" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--judge", str(judge[0]), "--n", "7"])
    assert result.exit_code == 1 and "lower --n" in result.output and "Traceback" not in result.output


def test_cli_prints_a_table_and_writes_json(tmp_path, judge):
    root, _, _ = judged_dataset(tmp_path / "d", judge[1])
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--judge", str(judge[0]),
                                       "--n", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "presence" in result.output
    report = json.loads(out.read_text())
    assert report["samples"] == 3 and report["miou"] == 1.0


def test_cli_default_judge_is_the_shipped_segmenter(tmp_path):
    from synthgen.evaluation.consistency import default_judge

    photos = fake_faces(2, SIZE).images
    root = write_dataset(tmp_path / "d", photos, fake_faces(2, SIZE).masks)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "consistency", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["judge"] == str(default_judge()) and default_judge().name == "segmenter.safetensors"
    assert 0.0 <= report["miou"] < 1.0


def test_a_sampled_jpeg_dataset_end_to_end(tmp_path, judge):
    """`synthgen sample --image-format jpeg` output, read as its card says."""
    from tests.sample_world import make_world, sample_args

    generator, anchors = make_world(tmp_path / "world", size=SIZE)
    out = tmp_path / "sampled"
    result = CliRunner().invoke(main, sample_args(generator, anchors, out, "--image-format", "jpeg",
                                                  domains="rgb,seg", n=4))
    assert result.exit_code == 0, result.output
    report = label_consistency(out, judge[0])
    assert report["samples"] == 4 and report["photo_field"] == "rgb.jpg"
    pairs = read_pairs(out)
    assert report["pixels"] == pairs.masks.size and pairs.images.shape[-1] == 3
    truth = predict(judge[1], pairs.images)
    assert report["pixel_accuracy"] == pytest.approx((truth == pairs.masks).mean())
