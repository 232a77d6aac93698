"""The downstream benchmark: same net, same budget, synthetic vs real pairs."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.evaluation.downstream import format_downstream, run_downstream
from synthgen.evaluation.pairs import Pairs
from test_evaluation_data import fake_faces, write_pair_folder, write_pair_shards


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    real = write_pair_folder(fake_faces(24, size=24, seed=0), root / "real")
    test = write_pair_folder(fake_faces(8, size=24, seed=1), root / "test")
    good = write_pair_shards(fake_faces(24, size=24, seed=2), root / "sampled")
    faces = fake_faces(24, size=24, seed=3)
    # labels of another face: a sampler whose masks do not match its photos
    shuffled = Pairs(faces.images, np.roll(faces.masks, 1, axis=0)[:, ::-1].copy(), faces.keys)
    bad = write_pair_shards(shuffled, root / "misaligned")
    return {"real": real, "test": test, "good": good, "bad": bad}


def test_misaligned_synthetic_data_scores_below_real(folders):
    torch.set_num_threads(1)
    kwargs = dict(real=folders["real"], test=folders["test"], n=24, steps=60, batch_size=8, seed=0, progress=False)
    bad = run_downstream(synthetic=folders["bad"], **kwargs)
    assert bad["miou_real"] > 0.4
    assert bad["ratio"] == pytest.approx(bad["miou_synthetic"] / bad["miou_real"])
    assert bad["ratio"] < 0.9
    good = run_downstream(synthetic=folders["good"], **kwargs)
    assert good["ratio"] > bad["ratio"]
    assert good["miou_real"] == bad["miou_real"]  # the real arm is the same run, bit for bit
    text = format_downstream(good)
    assert "ratio mIoU synthetic / real" in text and "skin" in text


def test_downstream_command_writes_json_and_is_deterministic(folders, tmp_path):
    args = ["eval", "downstream", "--synthetic", str(folders["good"]), "--real", str(folders["real"]),
            "--test", str(folders["test"]), "--n", "8", "--steps", "3", "--batch-size", "4", "--size", "16"]
    first = CliRunner().invoke(main, args + ["--out", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, args + ["--out", str(tmp_path / "b.json")])
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["size"] == 16 and a["n"] == 8
    for key in ("miou_synthetic", "miou_real", "ratio"):
        assert a[key] == b[key]
    assert "ratio" in second.output
    too_many = CliRunner().invoke(main, args[:-6] + ["--n", "500", "--steps", "1"])
    assert too_many.exit_code == 1 and "lower --n" in too_many.output


def test_without_real_pairs_only_the_synthetic_net_is_trained(folders, tmp_path):
    torch.set_num_threads(1)
    kwargs = dict(test=folders["test"], n=8, steps=3, batch_size=4, seed=0, size=16, progress=False)
    alone = run_downstream(synthetic=folders["good"], real=None, **kwargs)
    both = run_downstream(synthetic=folders["good"], real=folders["real"], **kwargs)
    assert "real" not in alone and "ratio" not in alone and "miou_real" not in alone
    assert alone["miou_synthetic"] == both["miou_synthetic"]  # the same synthetic run, bit for bit
    assert "ratio" not in format_downstream(alone) and "synthetic" in format_downstream(alone)
    args = ["eval", "downstream", "--synthetic", str(folders["good"]), "--test", str(folders["test"]),
            "--n", "8", "--steps", "3", "--batch-size", "4", "--size", "16", "--out", str(tmp_path / "s.json")]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert json.loads((tmp_path / "s.json").read_text())["miou_synthetic"] == alone["miou_synthetic"]


def test_teacher_arm_relabels_the_synthetic_photos(folders, tmp_path):
    """The teacher arm trains on the synthetic photos with a reference segmenter's masks: on
    photos whose own labels are wrong, it scores above the synthetic arm."""
    from synthgen.evaluation.pairs import read_pairs
    from synthgen.evaluation.segmenter import SegmenterConfig, save_segmenter
    from synthgen.evaluation.train_segmenter import TrainConfig, train_segmenter

    torch.set_num_threads(1)
    judge, _ = train_segmenter(read_pairs(folders["real"]), TrainConfig(steps=80, batch_size=8),
                               SegmenterConfig(num_classes=19, train_size=24), progress=False)
    path = save_segmenter(judge, tmp_path / "judge.safetensors")
    kwargs = dict(real=folders["real"], test=folders["test"], n=24, steps=60, batch_size=8, seed=0, progress=False)
    result = run_downstream(synthetic=folders["bad"], teacher=path, **kwargs)
    assert result["miou_teacher"] > result["miou_synthetic"]
    assert result["ratio_to_teacher"] == pytest.approx(result["miou_synthetic"] / result["miou_teacher"])
    assert result["ratio_teacher_to_real"] == pytest.approx(result["miou_teacher"] / result["miou_real"])
    assert result["miou_real"] == run_downstream(synthetic=folders["bad"], **kwargs)["miou_real"]
    text = format_downstream(result)
    assert "ratio mIoU synthetic / teacher" in text and "teacher" in text.splitlines()[1]
    with pytest.raises(Exception, match="classes"):
        other, _ = train_segmenter(read_pairs(folders["real"]), TrainConfig(steps=1, batch_size=8),
                                   SegmenterConfig(num_classes=5, train_size=24), progress=False)
        run_downstream(synthetic=folders["bad"], teacher=save_segmenter(other, tmp_path / "five.safetensors"),
                       **kwargs)


def test_arms_train_only_the_nets_asked_for(folders, tmp_path):
    """`--arms teacher` trains the teacher's net alone, the same run as beside the others; an arm
    without its source is one line naming the option to pass."""
    from synthgen.evaluation.pairs import read_pairs
    from synthgen.evaluation.segmenter import SegmenterConfig, save_segmenter
    from synthgen.evaluation.train_segmenter import TrainConfig, train_segmenter

    torch.set_num_threads(1)
    judge, _ = train_segmenter(read_pairs(folders["real"]), TrainConfig(steps=2, batch_size=8),
                               SegmenterConfig(num_classes=19, train_size=24), progress=False)
    path = save_segmenter(judge, tmp_path / "judge.safetensors")
    kwargs = dict(synthetic=folders["bad"], test=folders["test"], n=8, steps=3, batch_size=4, seed=0, size=16,
                  teacher=path, progress=False)
    every = run_downstream(real=folders["real"], **kwargs)
    alone = run_downstream(real=folders["real"], arms=("teacher",), **kwargs)
    assert "synthetic" not in alone and "real" not in alone and "ratio_to_teacher" not in alone
    assert alone["miou_teacher"] == every["miou_teacher"]
    assert "teacher" in format_downstream(alone).splitlines()[1]
    two = run_downstream(real=folders["real"], arms=("real", "synthetic"), **kwargs)
    assert "teacher" not in two and "ratio_to_teacher" not in two
    assert "teacher_source" not in two and "real_source" not in alone  # the result names what was trained
    assert (two["miou_synthetic"], two["miou_real"]) == (every["miou_synthetic"], every["miou_real"])
    real_only = run_downstream(real=folders["real"], arms=("real",), **{**kwargs, "synthetic": tmp_path / "absent"})
    assert real_only["miou_real"] == every["miou_real"] and "synthetic_source" not in real_only  # never read

    args = ["eval", "downstream", "--synthetic", str(folders["bad"]), "--test", str(folders["test"]),
            "--n", "8", "--steps", "3", "--batch-size", "4", "--size", "16"]
    no_teacher = CliRunner().invoke(main, args + ["--arms", "teacher"])
    assert no_teacher.exit_code == 1 and "--teacher" in no_teacher.output
    assert len(no_teacher.output.strip().splitlines()) == 1
    unknown = CliRunner().invoke(main, args + ["--arms", "judge"])
    assert unknown.exit_code == 2 and "unknown judge" in unknown.output
    run = CliRunner().invoke(main, args + ["--teacher", str(path), "--arms", "teacher", "--out", str(tmp_path / "t.json")])
    assert run.exit_code == 0, run.output
    assert json.loads((tmp_path / "t.json").read_text())["miou_teacher"] == alone["miou_teacher"]
