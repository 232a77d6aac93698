"""scripts/finetune_synthesis_autodecoder.py on the shipped generator: a few steps, judged,
exported, and resumed to the same weights as an uninterrupted run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from script_module import load_script

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = str(ROOT / "domains" / "generator.safetensors")


@pytest.fixture(scope="module")
def script():
    return load_script("finetune_synthesis_autodecoder")


def _run(script, run_dir: Path, steps: int, *extra: str):
    result = CliRunner().invoke(script.main, ["--run-dir", str(run_dir), "--generator", GENERATOR, "--faces", "4",
                                              "--batch-size", "2", "--steps", str(steps), "--eval-every", "2",
                                              "--checkpoint-every", "1", *extra])
    return result


def test_fine_tune_judges_exports_and_keeps_the_mapping(script, tmp_path):
    from synthgen.generators import load_generator

    result = _run(script, tmp_path / "run", 2, "--judge", str(ROOT / "domains" / "segmenter.safetensors"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]
    judged = [r for r in records if "judge_training_faces_miou" in r]
    assert [r["step"] for r in judged] == [0, 2] and all(0 < r["judge_training_faces_miou"] < 1 for r in judged)
    tuned, shipped = load_generator(tmp_path / "run" / "G_2.safetensors"), load_generator(GENERATOR)
    z = shipped.sample_z([0, 1], 6)
    with torch.no_grad():
        assert torch.equal(tuned.map(z), shipped.map(z))  # the mapping is left as it is
        assert not torch.equal(tuned.synthesize(tuned.map(z)).rgb, shipped.synthesize(shipped.map(z)).rgb)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(script, tmp_path):
    from safetensors.torch import load_file

    assert _run(script, tmp_path / "whole", 3).exit_code == 0
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "stats.jsonl").write_text('{"step": 0}\n{"step": 7}\n')  # a run killed before its first checkpoint
    assert _run(script, tmp_path / "split", 1).exit_code == 0
    assert _run(script, tmp_path / "split", 3).exit_code == 0  # the same command, longer: resumes at step 1
    whole, split = (load_file(tmp_path / d / "G_3.safetensors") for d in ("whole", "split"))
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    other = _run(script, tmp_path / "split", 4, "--lr", "1e-3")
    assert other.exit_code == 1 and "different lr" in other.output and "Traceback" not in other.output


def test_mapping_out_refits_the_mapping_toward_the_faces_latents(script, tmp_path):
    from synthgen.generators import load_generator

    out = tmp_path / "mapped.safetensors"
    result = _run(script, tmp_path / "run", 2, "--mapping-out", str(out), "--mapping-steps", "30")
    assert result.exit_code == 0, result.output
    tuned, mapped = load_generator(tmp_path / "run" / "G_2.safetensors"), load_generator(out)
    z = tuned.sample_z([0, 1, 2], 6)
    with torch.no_grad():
        assert not torch.equal(mapped.map(z), tuned.map(z))  # the mapping was refit
        ws = tuned.map(z)
        assert torch.equal(mapped.synthesize(ws).rgb, tuned.synthesize(ws).rgb)  # the synthesis is the run's


def test_max_minutes_stops_at_the_step_reached_with_its_exports_and_a_rerun_continues(script, tmp_path):
    out = tmp_path / "mapped.safetensors"
    result = _run(script, tmp_path / "run", 3, "--max-minutes", "1e-9", "--mapping-out", str(out), "--mapping-steps", "5")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output.strip().splitlines()[-1])
    assert done["step"] == 1 and "rerun to continue" in done["stopped"] and out.exists()
    assert (tmp_path / "run" / "G_1.safetensors").exists()  # exported at the step reached, not only every --eval-every
    assert _run(script, tmp_path / "run", 3).exit_code == 0  # the same command without the limit: on from step 1
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_generator_that_does_not_imitate_toyfaces_is_one_line_and_leaves_no_run_folder(script, tmp_path):
    from synthgen.generators.native import save_generator
    from synthgen.generators.presets import build_generator

    other = save_generator(build_generator("tiny", seed=0), tmp_path / "tiny.safetensors")  # z_dim 16
    result = CliRunner().invoke(script.main, ["--run-dir", str(tmp_path / "run"), "--generator", str(other), "--steps", "1"])
    assert result.exit_code == 1 and "imitating ToyFaces" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_asking_for_cuda_without_one_is_one_line_and_leaves_no_run_folder(script, tmp_path):
    result = _run(script, tmp_path / "run", 1, "--device", "cuda")
    assert result.exit_code == 1 and "no CUDA device" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_code_shrink_pulls_the_latents_to_their_linear_prediction_and_old_run_folders_resume(script, tmp_path):
    def latents_off_the_mapping(run_dir: Path) -> float:
        settings = json.loads((run_dir / "config.json").read_text())
        run = script.AutoDecoderRun(script.Settings(**settings), str(run_dir))  # resumes the checkpoint
        return (run.codes.weight - run.mapped).abs().max().item()

    # A ridge this large predicts no offset at all: a full shrink every step returns each latent to the mapping's.
    shrunk = _run(script, tmp_path / "shrunk", 2, "--code-shrink", "1", "--shrink-every", "1", "--shrink-ridge", "1e12")
    assert shrunk.exit_code == 0, shrunk.output
    free = _run(script, tmp_path / "free", 2)
    assert free.exit_code == 0, free.output
    assert latents_off_the_mapping(tmp_path / "shrunk") < 1e-5 < 1e-2 < latents_off_the_mapping(tmp_path / "free")

    config = tmp_path / "free" / "config.json"  # a run folder written before the option existed
    old = {k: v for k, v in json.loads(config.read_text()).items() if k not in ("code_shrink", "shrink_every", "shrink_ridge")}
    config.write_text(json.dumps(old))
    assert _run(script, tmp_path / "free", 3).exit_code == 0
    other = _run(script, tmp_path / "free", 4, "--code-shrink", "0.5")
    assert other.exit_code == 1 and "different code_shrink" in other.output
