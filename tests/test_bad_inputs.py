"""The bad-input corpus: user mistakes through the real command line, each answered in one line.

Every case is a mistake a user makes (a missing or damaged file, a file of the wrong kind,
an option that cannot work here) run through `synthgen` with click's CliRunner. Each must
exit 1 (2 only for a genuine usage error such as an unknown option or a value outside an
option's range), print exactly one line that names the problem (a file name or the option),
show no traceback, and leave every file that existed before byte-identical (nothing is
created either). The fixtures are the tiny test world (tests/sample_world.py); nothing here
trains for more than one step.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from _anchor_data import write_masks
from sample_world import make_world, sample_args
from synthgen.cli import main


@dataclass
class Env:
    generator: Path  # the tiny world's native generator
    anchors: Path  # its seg / sketch / landmark anchors
    other_generator: Path  # another tiny generator (the anchors were not fit for it)
    dataset: Path  # a finished `synthgen sample` folder: rgb + seg, 20 samples, 2 shards
    rgb_only: Path  # a finished dataset without seg
    rosinality: Path  # a rosinality .pt of a tiny generator
    judge: Path  # an (untrained) 19-class reference segmenter
    judge5: Path  # a 5-class one


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    from synthgen.evaluation.segmenter import SegmenterConfig, UNet, save_segmenter
    from synthgen.generators import save_generator
    from synthgen.generators.presets import build_generator

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("corpus")
    generator, anchors = make_world(root / "world")
    other = save_generator(build_generator("tiny", seed=5), root / "other.safetensors")
    datasets = {}
    for name, domains, n in (("dataset", "rgb,seg", 20), ("rgb_only", "rgb", 10)):
        result = CliRunner().invoke(main, sample_args(generator, anchors, root / name, domains=domains, n=n))
        assert result.exit_code == 0, result.output
        datasets[name] = root / name
    gen = build_generator("tiny", seed=3)
    state = {k.removeprefix("generator.").removeprefix("synthesis."): v for k, v in gen.state_dict().items()
             if k != "latent_avg"}
    torch.save({"g_ema": state, "latent_avg": gen.w_avg}, root / "g.pt")
    torch.manual_seed(0)
    judge = save_segmenter(UNet(SegmenterConfig(base_channels=4)), root / "judge.safetensors")
    judge5 = save_segmenter(UNet(SegmenterConfig(num_classes=5, base_channels=4)), root / "judge5.safetensors")
    return Env(Path(generator), anchors, Path(other), datasets["dataset"], datasets["rgb_only"], root / "g.pt",
               judge, judge5)


# -- files a user may have instead of the right one --------------------------------
def cut(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def made(path: Path) -> Path:
    """An (empty) folder."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def written(path: Path, data: bytes | str) -> Path:
    made(path.parent)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def text_file(path: Path) -> Path:
    return written(path, "this is not a checkpoint\n")


class Evil:
    """A pickle that would run a shell command when unpickled by the plain pickle module.
    Only pickle.dumps is ever called on it here: dumping runs nothing."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_pickle(tmp: Path) -> Path:
    path = tmp / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil(tmp / "pwned")}, protocol=4))
    return path


def stylegan3_pickle(tmp: Path) -> Path:
    payload = {"G_ema": {"module_src": "class SynthesisInput(torch.nn.Module):\n    pass\n",
                         "class_name": "Generator"}}
    path = tmp / "stylegan3-t-ffhq-1024.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def copy_dataset(env: Env, tmp: Path, name: str = "dataset") -> Path:
    out = tmp / name
    shutil.copytree(getattr(env, name), out)
    return out


def truncated_shard(env: Env, tmp: Path) -> Path:
    out = copy_dataset(env, tmp)
    cut(out / "shards" / "000001.tar", out / "shards" / "000001.tar", 0.4)
    return out


def damaged_card(tmp: Path) -> Path:
    (tmp / "ds").mkdir()
    (tmp / "ds" / "dataset.json").write_text('{"config": {"seed": 0,')  # cut mid-write by hand
    return tmp / "ds"


def pair_folder(tmp: Path, mask_value: int) -> Path:
    for i in range(2):
        png(tmp / "pairs" / "rgb" / f"{i}.png", np.full((16, 16, 3), 40 * i, np.uint8))
        png(tmp / "pairs" / "seg" / f"{i}.png", np.full((16, 16), mask_value, np.uint8))
    return tmp / "pairs"


def cuda_option() -> str:
    """A GPU that is not here: cuda without CUDA, or an index beyond the machine's."""
    return "cuda:99" if torch.cuda.is_available() else "cuda"


def fit_args(env: Env, tmp: Path, domain: str, data: Path) -> list[str]:
    return ["fit", "--domain", domain, "--data", str(data), "--generator", str(env.generator),
            "--out", str(tmp / "anchor.safetensors"), "--run-dir", str(tmp / "run"), "--steps", "1", "--no-progress",
            "--device", "cpu"]


def translate_args(env: Env, tmp: Path, source: str, inputs: Path, *extra: str) -> list[str]:
    return ["translate", str(inputs), "--from", source, "--to", "rgb", "--generator", str(env.generator),
            "--anchors", str(env.anchors), "--out", str(tmp / "translated"), "--device", "cpu", *extra]


# -- the corpus ------------------------------------------------------------------
@dataclass
class Case:
    id: str
    args: Callable[[Env, Path], list[str]]  # writes the case's inputs under tmp, returns the command line
    words: tuple[str, ...]  # each appears in the error line
    exit_code: int = 1
    lines: int = 1  # lines of output (verify adds its summary line)


CASES = [
    # generators: info, convert, sample --generator
    Case("info-missing-file", lambda e, t: ["info", str(t / "missing.pt")], ("missing.pt", "no such file", "check the path")),
    Case("convert-missing-file", lambda e, t: ["convert", str(t / "missing.pt"), str(t / "g.safetensors")],
         ("missing.pt", "no such file")),
    Case("sample-missing-generator", lambda e, t: sample_args(t / "missing.pt", e.anchors, t / "out"),
         ("missing.pt", "no such file")),
    Case("info-text-file", lambda e, t: ["info", str(text_file(t / "ffhq.pt"))], ("ffhq.pt", "unknown checkpoint format")),
    Case("info-truncated-safetensors", lambda e, t: ["info", str(cut(e.generator, t / "g.safetensors"))],
         ("g.safetensors", "truncated or corrupt", "download it again")),
    Case("sample-truncated-safetensors",
         lambda e, t: sample_args(cut(e.generator, t / "g.safetensors", 0.01), e.anchors, t / "out"),
         ("g.safetensors", "truncated or corrupt")),
    Case("info-truncated-rosinality-pt", lambda e, t: ["info", str(cut(e.rosinality, t / "g.pt", 0.3))],
         ("g.pt", "truncated or corrupt", "download it again")),
    Case("info-malicious-pickle", lambda e, t: ["info", str(malicious_pickle(t))],
         ("network-snapshot.pkl", "system", "not allowed; refused before loading")),
    Case("convert-stylegan3-pkl", lambda e, t: ["convert", str(stylegan3_pickle(t)), str(t / "g.safetensors")],
         ("stylegan3-t-ffhq-1024.pkl", "StyleGAN3 is not supported")),
    Case("convert-unsupported-file",
         lambda e, t: ["convert", str(png(t / "face.png", np.zeros((8, 8, 3), np.uint8))), str(t / "g.safetensors")],
         ("face.png", "unknown checkpoint format")),
    Case("info-folder-not-biggan", lambda e, t: ["info", str(t)], ("folder without config.json",)),
    # anchors and domains
    Case("sample-anchor-of-another-generator",
         lambda e, t: sample_args(e.other_generator, e.anchors, t / "out", domains="rgb,seg"),
         ("seg.safetensors", "fit for generator", "fit the domain again")),
    Case("sample-anchors-folder-missing", lambda e, t: sample_args(e.generator, t / "anchorz", t / "out"),
         ("anchorz", "not a folder")),
    Case("translate-anchor-file-missing",
         lambda e, t: translate_args(e, t, "seg", write_masks(t / "masks", n=1), "--anchor",
                                     f"seg={t / 'seg-anchor.safetensors'}"),
         ("seg-anchor.safetensors", "does not exist", "synthgen fit")),
    Case("sample-corrupt-anchor",
         lambda e, t: sample_args(e.generator, written(t / "a" / "seg.safetensors", b"\0" * 64).parent, t / "out",
                                  domains="rgb,seg"),
         ("seg.safetensors", "not a safetensors file")),
    Case("sample-truncated-anchor",
         lambda e, t: sample_args(e.generator, cut(e.anchors / "seg.safetensors", made(t / "a") / "seg.safetensors").parent,
                                  t / "out", domains="rgb,seg"),
         ("seg.safetensors", "truncated or corrupt")),
    Case("fit-domain-spec-malformed",
         lambda e, t: fit_args(e, t, str(written(t / "hair.json", '{"name": "hair", ')), write_masks(t / "masks", n=2)),
         ("hair.json", "not a readable JSON domain spec")),
    Case("sample-unknown-domain", lambda e, t: sample_args(e.generator, e.anchors, t / "out", domains="rgb,hair"),
         ("unknown domain 'hair'",)),
    # fit data
    Case("fit-data-folder-empty", lambda e, t: fit_args(e, t, "seg", made(t / "masks")),
         ("masks", "no seg files")),
    Case("fit-data-only-corrupt-png",
         lambda e, t: fit_args(e, t, "seg", written(t / "masks" / "m.png", b"\x89PNG\r\n\x1a\n cut here").parent),
         ("m.png", "could be read")),
    Case("fit-init-from-missing",
         lambda e, t: fit_args(e, t, "seg", write_masks(t / "masks", n=2)) + ["--init-from", str(t / "old.safetensors")],
         ("--init-from", "old.safetensors", "does not exist")),
    Case("train-generator-unknown-preset",
         lambda e, t: ["toyfaces", "train-generator", "--run-dir", str(t / "run"), "--preset", "nope", "--steps", "1"],
         ("unknown StyleGAN2 preset 'nope'",)),
    # sample options and output folders
    Case("sample-n-zero", lambda e, t: sample_args(e.generator, e.anchors, t / "out", n=0),
         ("--num-samples", "0 is not in the range"), exit_code=2),
    Case("sample-n-negative", lambda e, t: sample_args(e.generator, e.anchors, t / "out", n=-5),
         ("--num-samples", "-5"), exit_code=2),
    Case("sample-unknown-option", lambda e, t: sample_args(e.generator, e.anchors, t / "out", "--shards", "3"),
         ("No such option", "--shards"), exit_code=2),
    Case("sample-into-another-runs-dataset",
         lambda e, t: sample_args(e.generator, e.anchors, copy_dataset(e, t), "--seed", "7", domains="rgb,seg", n=20),
         ("different config", "seed", "--overwrite")),
    Case("sample-damaged-card", lambda e, t: sample_args(e.generator, e.anchors, damaged_card(t)),
         ("dataset.json", "not a readable dataset card")),
    Case("sample-out-is-a-file",
         lambda e, t: sample_args(e.generator, e.anchors, written(t / "out.tar", b"x")),
         ("out.tar", "is a file")),
    Case("sample-device-not-here", lambda e, t: sample_args(e.generator, e.anchors, t / "out", "--device", cuda_option()),
         ("--device cuda",)),
    Case("sample-device-unknown", lambda e, t: sample_args(e.generator, e.anchors, t / "out", "--device", "tpu"),
         ("unknown device 'tpu'",)),
    # verify, preview
    Case("verify-truncated-shard", lambda e, t: ["verify", str(truncated_shard(e, t))],
         ("000001: corrupt", "sha256"), lines=2),
    Case("verify-missing-folder", lambda e, t: ["verify", str(t / "faces")], ("faces", "does not exist")),
    Case("verify-damaged-card", lambda e, t: ["verify", str(damaged_card(t))], ("dataset.json", "not a readable")),
    Case("preview-empty-folder", lambda e, t: ["preview", str(made(t / "e")), "--out", str(t / "g.png")],
         ("has no dataset.json",)),
    Case("preview-no-complete-shard",
         lambda e, t: ["preview", str(written(t / "d" / "dataset.json", (e.dataset / "dataset.json").read_bytes()).parent),
                       "--out", str(t / "g.png")], ("no complete shard yet",)),
    # translate inputs
    Case("translate-missing-input", lambda e, t: translate_args(e, t, "seg", t / "mask.png"), ("mask.png", "does not exist")),
    Case("translate-photo-as-mask",  # an RGB photo where a class-id mask belongs
         lambda e, t: translate_args(e, t, "seg", png(t / "photo.png", np.random.default_rng(0).integers(
             0, 256, (32, 32, 3), dtype=np.uint8))), ("photo.png", "not in the palette")),
    Case("translate-mask-class-out-of-range",
         lambda e, t: translate_args(e, t, "seg", png(t / "mask.png", np.full((32, 32), 23, np.uint8))),
         ("mask.png", "class id 23", "out of range")),
    Case("translate-two-channel-mask",
         lambda e, t: translate_args(e, t, "seg", png(t / "la.png", np.zeros((32, 32, 2), np.uint8))),
         ("la.png", "unsupported mask mode 'LA'")),
    # eval
    Case("eval-consistency-judge-of-other-classes",
         lambda e, t: ["eval", "consistency", str(e.dataset), "--judge", str(e.judge5)], ("judge5.safetensors", "5 classes")),
    Case("eval-frechet-truncated-shard",  # a tar from elsewhere, cut short (a dataset's readers skip its own:
         # a shard whose size is not its stats' is incomplete, redone by the next sample run)
         lambda e, t: ["eval", "frechet", "--a", str(cut(e.dataset / "shards" / "000001.tar", t / "faces.tar", 0.4)),
                       "--b", str(e.dataset), "--segmenter", str(e.judge)], ("faces.tar", "unreadable shard", "copy it again")),
    Case("eval-labels-dataset-without-seg", lambda e, t: ["eval", "labels", str(e.rgb_only)], ("no seg domain",)),
    Case("eval-labels-damaged-card", lambda e, t: ["eval", "labels", str(damaged_card(t))],
         ("dataset.json", "not a readable dataset card", "restore it")),
    Case("eval-labels-missing-folder", lambda e, t: ["eval", "labels", str(t / "faces")], ("faces", "does not exist")),
    Case("eval-frechet-one-photo",
         lambda e, t: ["eval", "frechet", "--a", str(png(t / "a" / "0.png", np.zeros((16, 16, 3), np.uint8)).parent),
                       "--b", str(e.dataset), "--segmenter", str(e.judge)], ("at least 2 photos",)),
    Case("eval-train-segmenter-class-ids-beyond-classes",
         lambda e, t: ["eval", "train-segmenter", "--data", str(pair_folder(t, 7)), "--num-classes", "5", "--steps", "1",
                       "--out", str(t / "seg.safetensors")], ("class id 7", "5 classes")),
    Case("eval-train-segmenter-data-missing",
         lambda e, t: ["eval", "train-segmenter", "--data", str(t / "pairs"), "--out", str(t / "seg.safetensors")],
         ("--data", "pairs", "does not exist")),
    Case("eval-translate-generator-not-a-checkpoint",
         lambda e, t: ["eval", "translate", "--from", "seg", "--to", "rgb", "--pairs", str(made(t / "p")),
                       "--generator", str(text_file(t / "g.safetensors")), "--anchors", str(e.anchors), "--device", "cpu"],
         ("g.safetensors", "unknown checkpoint format")),
]


def snapshot(*folders: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `folders`."""
    return {str(p): (p.read_bytes() if p.is_file() else None) for f in folders for p in sorted(f.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_and_changes_nothing(case, env, tmp_path):
    args = case.args(env, tmp_path)
    shared = [env.generator.parent, env.dataset, env.rgb_only]
    before = snapshot(tmp_path, *shared)
    result = CliRunner().invoke(main, [str(a) for a in args])
    out = result.output.strip()
    assert isinstance(result.exception, SystemExit), f"{type(result.exception).__name__}: {result.exception}\n{out}"
    assert result.exit_code == case.exit_code, out
    assert "Traceback" not in out
    lines = out.splitlines()
    if case.exit_code == 2:  # click's usage error: Usage / Try / Error
        lines = [ln for ln in lines if ln.startswith("Error:")]
    assert len(lines) == case.lines, out
    for word in case.words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert snapshot(tmp_path, *shared) == before, "a refused command changed or created files"
    assert not (tmp_path / "pwned").exists()  # the malicious pickle never ran


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


def test_fit_skips_a_corrupt_file_among_good_ones_with_one_line(env, tmp_path):
    data = write_masks(tmp_path / "masks", n=2)
    (data / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n cut here")
    result = CliRunner().invoke(main, fit_args(env, tmp_path, "seg", data))
    assert result.exit_code == 0, result.output
    skipped = [ln for ln in result.output.splitlines() if "skipped" in ln]
    assert len(skipped) == 1 and "zz.png" in skipped[0] and "1 unreadable" in skipped[0]
    assert (tmp_path / "anchor.safetensors").is_file()


def test_a_bug_in_eval_is_not_hidden_as_a_one_line_error(env, monkeypatch):
    """`synthgen eval` turns the project's input errors into one line, not every ValueError."""
    import synthgen.evaluation.label_accuracy as label_accuracy

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(label_accuracy, "synthetic_label_accuracy", bug)
    result = CliRunner().invoke(main, ["eval", "labels", str(env.dataset)])
    assert isinstance(result.exception, ValueError) and "could not be broadcast" in str(result.exception)


def test_a_json_card_that_is_no_card_is_one_line_for_every_dataset_reader(env, tmp_path):
    """A card that is JSON but not a card: sample, verify and preview each say so in one line."""
    out = copy_dataset(env, tmp_path)
    (out / "dataset.json").write_text(json.dumps({"config": {"seed": 0}}))
    for args in (sample_args(env.generator, env.anchors, out, domains="rgb,seg", n=20), ["verify", str(out)],
                 ["preview", str(out), "--out", str(tmp_path / "g.png")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert "not a readable dataset card" in result.output


def test_verify_names_a_shard_that_is_not_a_tar(env, tmp_path):
    out = copy_dataset(env, tmp_path)
    (out / "shards" / "000000.tar").write_bytes(b"not a tar at all" * 64)
    with tarfile.open(out / "shards" / "000001.tar") as tar:
        assert tar.getmembers()  # the other shard is intact
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines()[0].startswith("000000: corrupt")
