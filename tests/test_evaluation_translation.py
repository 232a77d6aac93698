"""Scoring translations: metric aggregation with stand-in translators, grids, Fréchet spaces."""
import numpy as np
import pytest
import torch
from PIL import Image

from synthgen.anchors.spec import load_domain_spec
from synthgen.evaluation import fid
from synthgen.evaluation.segmenter import SegmenterConfig
from synthgen.evaluation.train_segmenter import evaluate_segmenter, new_segmenter
from synthgen.evaluation.translation import (
    TranslationEvalError, evaluate_translation, find_paired_files, format_translation, save_translation_result,
)
from synthgen.metrics import ConfusionMatrix
from test_evaluation_data import fake_faces, write_pair_folder

SIZE = 16


def _landmarks(n, rng):
    pts = rng.uniform(2, SIZE - 3, (n, 68, 2)).astype(np.float32)
    pts[:, 36], pts[:, 45] = (3, 6), (13, 6)  # outer eye corners 10 px apart
    return pts


@pytest.fixture()
def pairs_dir(tmp_path):
    faces = fake_faces(6, size=SIZE)
    root = write_pair_folder(faces, tmp_path / "pairs")
    (root / "landmark").mkdir()
    points = _landmarks(6, np.random.default_rng(0))
    for key, p in zip(faces.keys, points):
        np.save(root / "landmark" / f"{key}.npy", p)
    return root, faces, points


def _lookup(faces):
    """A stand-in translator's memory: source mask bytes -> sample index."""
    return {m.tobytes(): i for i, m in enumerate(faces.masks)}


def test_mask_target_pools_one_confusion_matrix_and_ranks_worst(pairs_dir):
    root, faces, _ = pairs_dir
    seg = load_domain_spec("seg")
    index = _lookup(faces)
    broken = {1, 4}

    def translate(source):  # (B, S, S) class ids -> the truth, except all-background for `broken`
        ids = [index[m.tobytes()] for m in source]
        return {"mask": np.stack([np.zeros_like(m) if i in broken else m for i, m in zip(ids, source)])}

    files = find_paired_files(root, seg, seg)
    result = evaluate_translation(translate, files, seg, seg, size=SIZE, batch_size=4, grid_rows=2,
                                  progress=False)
    expected = ConfusionMatrix(19)
    for i, m in enumerate(faces.masks):
        expected.update(np.zeros_like(m) if i in broken else m, m)
    assert result["miou"] == pytest.approx(expected.miou())
    assert result["pixel_accuracy"] == pytest.approx(expected.pixel_accuracy())
    assert result["scores"]["000000"] == 1.0
    worst_two = sorted(sorted(result["scores"], key=result["scores"].get)[:2])
    assert worst_two == ["000001", "000004"]
    # grid: 2 worst + 2 best rows, 3 columns of SIZE
    assert result["grid"].shape == (4 * SIZE, 3 * SIZE, 3)
    row0 = result["grid"][:SIZE, SIZE : 2 * SIZE]  # translation of the worst sample: all background
    assert (row0 == np.array(seg.palette[0], np.uint8)).all()
    assert "mIoU" in format_translation(result) or "miou" in format_translation(result)


def test_keypoint_target_nme(pairs_dir):
    root, faces, points = pairs_dir
    seg, landmark = load_domain_spec("seg"), load_domain_spec("landmark")
    index = _lookup(faces)

    def translate(source):  # every point 3, 4 px off: error 5 / inter-ocular 10
        pts = np.stack([points[index[m.tobytes()]] for m in source]) + np.float32([3, 4])
        return {"points": pts, "map": np.zeros((len(source), SIZE, SIZE), np.uint8)}

    files = find_paired_files(root, seg, landmark)
    result = evaluate_translation(translate, files, seg, landmark, size=SIZE, progress=False)
    assert result["nme_inter_ocular"] == pytest.approx(0.5, rel=1e-5)
    assert result["fraction_within_0.08"] == 0.0
    assert result["score_name"] == "nme_inter_ocular"


def test_image_target_psnr_ssim_faithfulness_and_frechet(pairs_dir, tmp_path):
    root, faces, _ = pairs_dir
    seg, rgb = load_domain_spec("seg"), load_domain_spec("rgb")
    index = _lookup(faces)

    def translate(source):  # the true photo, darkened by 10 for the first sample
        photos = np.stack([faces.images[index[m.tobytes()]] for m in source]).astype(np.int16)
        photos[[index[m.tobytes()] == 0 for m in source]] -= 10
        return {"image": np.clip(photos, 0, 255).astype(np.uint8)}

    segmenter = new_segmenter(SegmenterConfig(base_channels=4, train_size=SIZE), seed=0).eval()
    files = find_paired_files(root, seg, rgb)
    result = evaluate_translation(translate, files, seg, rgb, size=SIZE, segmenter=segmenter,
                                  feature_extractor=fid.segmenter_extractor(segmenter), progress=False)
    assert result["scores"]["000000"] < 40 < min(v for k, v in result["scores"].items() if k != "000000")
    assert 0.5 < result["ssim"] < 1.0
    # faithfulness is the segmenter's mIoU on the photos against the input masks
    photos_only = [translate(faces.masks[i : i + 1])["image"][0] for i in range(6)]
    from synthgen.evaluation.pairs import Pairs

    direct = evaluate_segmenter(segmenter, Pairs(np.stack(photos_only), faces.masks, faces.keys))
    assert result["faithfulness_miou"] == pytest.approx(direct.miou())
    assert result["frechet_distance"] >= 0 and result["feature_space"] == "reference-segmenter"
    paths = save_translation_result(result, tmp_path / "out")
    assert Image.open(paths["grid"]).size == (3 * SIZE, 6 * SIZE)  # 4 worst + the 2 others as best
    assert '"grid_file"' in paths["json"].read_text()


def test_missing_domain_folder_and_non_dlib_points(pairs_dir, tmp_path):
    root, _, _ = pairs_dir
    with pytest.raises(TranslationEvalError, match="no sketch/ folder"):
        find_paired_files(root, load_domain_spec("seg"), load_domain_spec("sketch"))
    spec = load_domain_spec("landmark")
    import dataclasses

    five = dataclasses.replace(spec, num_points=5, skeleton=())
    with pytest.raises(TranslationEvalError, match="68 dlib points"):
        evaluate_translation(lambda s: {}, find_paired_files(root, load_domain_spec("seg"), spec),
                             load_domain_spec("seg"), five, size=SIZE, progress=False)


def test_backbone_features_from_a_local_weights_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    extract = fid.backbone_extractor("resnet18", path, image_size=32)
    images = fake_faces(4, size=SIZE).images
    feats = fid.extract_features(extract, images, batch_size=3)
    assert feats.shape == (4, 512)
    assert fid.frechet_distance_of_images(images, images, extract) == pytest.approx(0, abs=1e-6)
    with pytest.raises(fid.FeatureSpaceError, match="does not hold mobilenet_v3_small"):
        fid.load_backbone("mobilenet_v3_small", path)
    with pytest.raises(fid.FeatureSpaceError, match="unknown torchvision model"):
        fid.load_backbone("no_such_net", path)
    with pytest.raises(fid.FeatureSpaceError, match="never downloaded"):
        fid.load_backbone("resnet18", tmp_path / "absent.pth")


def test_translate_command_end_to_end_with_untrained_anchors(tmp_path):
    """The whole path through generator + anchor files; untrained weights, so only the
    plumbing and the output files are checked, not the scores."""
    import json

    from click.testing import CliRunner

    from synthgen.anchors.anchor import build_anchor, save_anchor
    from synthgen.anchors.encoder import EncoderConfig
    from synthgen.cli import main
    from synthgen.evaluation.segmenter import save_segmenter
    from synthgen.generators import save_generator
    from synthgen.generators.presets import build_generator

    gen = build_generator("tiny", seed=0)
    save_generator(gen, tmp_path / "g.safetensors")
    for name in ("seg", "rgb"):
        spec = load_domain_spec(name)
        config = EncoderConfig(in_channels=spec.in_channels, num_ws=gen.num_ws, latent_dim=gen.latent_dim)
        tap = "pyramid" if name == "seg" else "default"  # rgb -> seg then reads the multi-resolution tap
        save_anchor(build_anchor(spec, gen, gen.resolution, config, tap=tap), tmp_path / "anchors" / f"{name}.safetensors")
    write_pair_folder(fake_faces(5, size=gen.resolution), tmp_path / "pairs")
    save_segmenter(new_segmenter(SegmenterConfig(base_channels=4, train_size=gen.resolution), seed=0),
                   tmp_path / "seg.safetensors")
    common = ["eval", "translate", "--pairs", str(tmp_path / "pairs"), "--generator", str(tmp_path / "g.safetensors"),
              "--anchors", str(tmp_path / "anchors"), "--out", str(tmp_path / "out"), "--batch-size", "2"]
    result = CliRunner().invoke(main, common + ["--from", "seg", "--to", "rgb", "--segmenter",
                                                str(tmp_path / "seg.safetensors")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "translate_seg_rgb.json").read_text())
    assert summary["n"] == 5 and set(summary["scores"]) == {f"{i:06d}" for i in range(5)}
    assert 0 <= summary["faithfulness_miou"] <= 1 and summary["feature_space"] == "reference-segmenter"
    assert (tmp_path / "out" / "translate_seg_rgb.png").is_file()
    result = CliRunner().invoke(main, common + ["--from", "rgb", "--to", "seg"])
    assert result.exit_code == 0, result.output
    assert "pixel_accuracy" in result.output
    missing = CliRunner().invoke(main, common + ["--from", "seg", "--to", "sketch"])
    assert missing.exit_code == 1 and "no anchor for domain 'sketch'" in missing.output
    if not torch.cuda.is_available():
        no_gpu = CliRunner().invoke(main, common + ["--from", "rgb", "--to", "seg", "--device", "cuda"])
        assert no_gpu.exit_code == 1 and "CUDA" in no_gpu.output and "Traceback" not in no_gpu.output
