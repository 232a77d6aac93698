"""scripts/bench_sample.py: one tiny run of every section, numbers in --json-out."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from script_module import load_script



@pytest.fixture(scope="module")
def bench():
    return load_script("bench_sample")


def test_world_folder_flops_roofline_and_part_timings(bench, world, tmp_path):
    gen_path, _ = world  # <folder>/generator.safetensors and <folder>/anchors (landmark reads the pyramid tap)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench.main, [
        "--world", str(gen_path.parent), "--domains", "rgb,seg,landmark", "--n", "8", "--n-naive", "1",
        "--batch-size", "8", "--workers", "0", "--repeats", "1", "--probe-size", "64", "--probe-repeats", "1",
        "--g-batches", "1,8", "--head-batches", "8", "--json-out", str(out),
    ])
    assert result.exit_code == 0, result.output
    numbers = json.loads(out.read_text())
    assert numbers["preset"] is None and numbers["probe"]["peak_gflops"] > 0
    flops = numbers["flops"]
    assert flops["generator_per_sample"] > 0 and flops["heads_per_sample"]["rgb"] == 0
    assert flops["heads_per_sample"]["seg"] > 0 and flops["heads_per_sample"]["landmark"] > 0
    assert flops["total_per_sample"] == pytest.approx(
        flops["mapping_per_sample"] + flops["generator_per_sample"] + sum(flops["heads_per_sample"].values()))
    for key in ("a_compute", "a1_compute_threads", "b_end_to_end", "c_naive"):
        assert flops[f"{key}_over_roofline"] > 0
    assert numbers["compute_procs"] >= 1 and len(numbers["a1_runs"]) == 1
    assert numbers["e_encode_ms_per_sample"] > 0
    timings = numbers["timings"]
    assert set(timings["generator"]) == {"1", "8"} and timings["g_batch8_over_batch1"] > 0
    assert set(timings["heads"]["landmark"]) == {"8"}
    assert "roofline peak:" in result.output and "G batch 8 / batch 1:" in result.output
    # (b) against the generator alone at (b)'s batch: the GPU target's ratio
    assert numbers["b_over_generator_only"] == pytest.approx(
        numbers["b_end_to_end_samples_per_s"] / timings["generator"]["8"]["samples_per_s"])


def test_bfloat16_probe_and_parts_run_in_that_dtype(bench, world, tmp_path):
    gen_path, _ = world
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench.main, [
        "--world", str(gen_path.parent), "--domains", "rgb,seg", "--n", "8", "--n-naive", "1", "--batch-size", "8",
        "--workers", "0", "--repeats", "1", "--probe-size", "64", "--probe-repeats", "1", "--g-batches", "8",
        "--head-batches", "", "--dtype", "bfloat16", "--json-out", str(out),
    ])
    assert result.exit_code == 0, result.output
    numbers = json.loads(out.read_text())
    assert numbers["probe"]["dtype"] == "bfloat16" and numbers["probe"]["peak_gflops"] > 0
    assert numbers["a_compute_samples_per_s"] > 0 and numbers["b_over_generator_only"] > 0
    assert "bfloat16 matmul on cpu" in result.output


def test_unknown_world_folder_is_one_line(bench, tmp_path):
    result = CliRunner().invoke(bench.main, ["--world", str(tmp_path), "--n", "8", "--probe-repeats", "0"])
    assert result.exit_code == 2 and "holds no generator.safetensors" in result.output


@pytest.mark.slow
def test_real_size_runs_each_config_in_its_own_process(bench, tmp_path):
    out = tmp_path / "real.json"
    result = CliRunner().invoke(bench.main, [
        "--n", "0", "--probe-repeats", "0", "--real-size", "--real-presets", "tiny", "--real-batches", "1",
        "--real-n", "1", "--real-domains", "rgb,seg", "--dtype", "bfloat16", "--json-out", str(out),
    ])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["real_size"]["presets"]["tiny"]["1"]
    assert row["status"] == 0 and row["samples"] == 1 and row["samples_per_s"] > 0
    assert (row["device"], row["dtype"]) == ("cpu", "bfloat16")  # the child's sampler ran in the asked dtype
    # The peak is read from the parent (os.wait4), the loaded size in the child, each rounded.
    assert row["peak_rss_mb"] >= row["rss_after_load_mb"] - 1 > 0


def test_peak_memory_counts_the_process_with_its_lanes(bench, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench.main, [
        "--n", "0", "--probe-repeats", "0", "--rss-n", "16", "--rss-preset", "tiny", "--rss-domains", "rgb",
        "--batch-size", "8", "--workers", "0", "--json-out", str(out),
    ])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["rss"]["16"]
    assert row["peak_rss_mb"] > 100 and row["seconds"] > 0
    if Path("/proc/self/smaps_rollup").exists():  # Linux: read from /proc while it ran; elsewhere 0
        assert 100 < row["peak_tree_pss_mb"] < 4 * row["peak_rss_mb"]
