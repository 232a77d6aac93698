"""Synthetic label accuracy against the renderer's exact truth."""
import io
import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dataset_files import as_dataset
from synthgen.cli import main
from synthgen.evaluation.errors import LabelAccuracyError
from synthgen.evaluation.label_accuracy import synthetic_label_accuracy
from synthgen.toyfaces import render_batch, seed_to_z

SEED = 7


def png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(root, masks, config_extra=None):
    """A `synthgen sample`-shaped folder: dataset.json, one shard, its completion markers."""
    (root / "shards").mkdir(parents=True)
    config = {"seed": SEED, "truncation_psi": 1.0, "style_mix_prob": 0.0, **(config_extra or {})}
    with tarfile.open(root / "shards" / "000000.tar", "w") as tar:
        for i, mask in enumerate(masks):
            for field, data in (("rgb.png", png(np.zeros((32, 32), np.uint8))), ("seg.png", png(mask))):
                info = tarfile.TarInfo(f"{i:09d}.{field}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return as_dataset(root, config, n_samples=len(masks), shard_size=len(masks))


def true_masks(n):
    return list(render_batch(seed_to_z(SEED, range(n)), 32, domains=("seg",))["seg"])


def test_labels_equal_to_the_renderer_score_one(tmp_path):
    report = synthetic_label_accuracy(write_dataset(tmp_path / "d", true_masks(3)))
    assert report["samples"] == 3 and report["miou"] == 1.0 and report["pixel_accuracy"] == 1.0


def test_wrong_labels_lower_the_score_by_the_right_amount(tmp_path):
    masks = true_masks(2)
    wrong = masks[1].copy()
    wrong[wrong == 13] = 1  # hair labelled as skin
    report = synthetic_label_accuracy(write_dataset(tmp_path / "d", [masks[0], wrong]))
    hair_pixels = (masks[1] == 13).sum()
    assert report["pixel_accuracy"] == pytest.approx(1 - hair_pixels / (2 * 32 * 32))
    assert report["miou"] < 1.0


def test_truncated_datasets_are_refused(tmp_path):
    root = write_dataset(tmp_path / "d", true_masks(1), {"truncation_psi": 0.7})
    with pytest.raises(LabelAccuracyError, match="truncation"):
        synthetic_label_accuracy(root)
    result = CliRunner().invoke(main, ["eval", "labels", str(root)])
    assert result.exit_code == 1 and "truncation" in result.output and "Traceback" not in result.output


def test_cli_prints_and_writes_the_report(tmp_path):
    root = write_dataset(tmp_path / "d", true_masks(2))
    result = CliRunner().invoke(main, ["eval", "labels", str(root), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["miou"] == 1.0
