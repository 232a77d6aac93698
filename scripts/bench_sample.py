"""Benchmark of `synthgen sample` (numbers in docs/sampling.md).

On one generator and one set of anchors, in one run:
  (a) compute only: latents -> G once -> every regressor -> uint8 arrays, no encoding or IO;
  (b) `sample_dataset` end to end: the same plus the encode pool, tar, manifests, stats;
  (c) a naive baseline: batch 1, the generator run again for every domain, loose PNG files;
  (d) peak RSS of `synthgen sample` subprocesses for growing --n (memory must stay flat).

    python scripts/bench_sample.py --preset toyfaces64 --domains rgb,seg,sketch --n 512
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch


def build_world(folder: Path, preset: str, domains: list[str]) -> tuple[Path, Path]:
    """A random-weight generator of `preset` and untrained anchors (speed does not depend on training)."""
    from synthgen.anchors.anchor import build_anchor, save_anchor
    from synthgen.anchors.encoder import EncoderConfig
    from synthgen.anchors.spec import load_domain_spec
    from synthgen.generators import save_generator
    from synthgen.generators.presets import build_generator

    (folder / "anchors").mkdir(parents=True, exist_ok=True)
    gen = build_generator(preset, seed=0)
    gen_path = save_generator(gen, folder / "generator.safetensors")
    fingerprint = gen.fingerprint
    for name in domains:
        spec = load_domain_spec(name)
        if spec.from_generator:
            continue
        enc = EncoderConfig(in_channels=spec.in_channels, num_ws=gen.num_ws, latent_dim=gen.latent_dim,
                            small_widths=(8, 8, 8))
        save_anchor(build_anchor(spec, gen, gen.resolution, enc, fingerprint=fingerprint),
                    folder / "anchors" / f"{name}.safetensors")
    return Path(gen_path), folder / "anchors"


def bench_compute(cfg, prep, n: int) -> float:
    from synthgen.sample.plan import batches
    from synthgen.sample.sampler import compute_batch

    started = time.perf_counter()
    for indices in batches(range(n), cfg.batch_size):
        compute_batch(prep.generator, prep.heads, indices, cfg, shard=0)
    return n / (time.perf_counter() - started)


def bench_naive(prep, n: int, out: Path, seed: int) -> float:
    """What one would write first: per sample, per domain, a fresh generator pass and a PNG file."""
    from synthgen.anchors.codecs import decode, write_decoded

    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(n):
            for head in prep.heads:
                synthesis = prep.generator.synthesize(prep.generator.sample_latents([i], seed, 1.0))
                write_decoded(head.spec, decode(head.spec, head.raw(synthesis)), 0, out / head.spec.name, f"{i:09d}")
    return n / (time.perf_counter() - started)


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one `synthgen sample` subprocess."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synthgen.cli", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise click.ClickException(f"synthgen sample failed: {' '.join(args)}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def run_throughput(tmp: Path, preset: str, names: list[str], n_samples: int, n_naive: int, batch_size: int,
                   workers: int, png_level: int, repeats: int, results: dict) -> None:
    from synthgen.sample.plan import SampleConfig
    from synthgen.sample.sampler import prepare, sample_dataset

    gen_path, anchors = build_world(tmp / "world", preset, names)
    cfg = SampleConfig(out_dir=tmp / "out", generator=str(gen_path), anchors_dir=str(anchors), domains=tuple(names),
                       n_samples=n_samples, shard_size=min(1000, n_samples), batch_size=batch_size,
                       workers=workers, png_level=png_level, device="cpu", show_progress=False)
    prep = prepare(cfg, "bench")
    bench_compute(cfg, prep, min(batch_size, n_samples))  # warm-up
    a_runs, b_runs = [], []
    for r in range(repeats):
        a_runs.append(bench_compute(cfg, prep, n_samples))
        run_cfg = dataclasses.replace(cfg, out_dir=tmp / f"out{r}")
        started = time.perf_counter()
        sample_dataset(run_cfg, "bench", prepared=prep)
        b_runs.append(n_samples / (time.perf_counter() - started))
    results["a_runs"], results["b_runs"] = a_runs, b_runs
    results["a_compute_samples_per_s"] = max(a_runs)
    results["b_end_to_end_samples_per_s"] = max(b_runs)
    results["c_naive_samples_per_s"] = bench_naive(prep, n_naive, tmp / "naive", cfg.seed)
    results["b_over_a"] = results["b_end_to_end_samples_per_s"] / results["a_compute_samples_per_s"]
    results["b_over_c"] = results["b_end_to_end_samples_per_s"] / results["c_naive_samples_per_s"]
    click.echo(json.dumps(results, indent=1))


@click.command()
@click.option("--preset", default="toyfaces64", show_default=True, help="StyleGAN2 preset of the generator.")
@click.option("--domains", default="rgb,seg,sketch", show_default=True, help="Domains to write.")
@click.option("--n", "n_samples", type=int, default=512, show_default=True,
              help="Samples for (a) and (b); 0 skips (a)-(c).")
@click.option("--n-naive", type=int, default=64, show_default=True, help="Samples for the naive baseline (c).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Batch size of (a) and (b).")
@click.option("--workers", type=int, default=2, show_default=True, help="Encode threads of (b).")
@click.option("--png-level", type=int, default=1, show_default=True, help="PNG zlib level of (b).")
@click.option("--threads", type=int, default=0, show_default=True, help="torch threads (0: torch's default).")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="(a) and (b) run alternately this many times; the best of each is kept (shared CPUs are noisy).")
@click.option("--rss-n", default="", show_default=True, help="Comma-separated --n values for (d), e.g. 10000,100000.")
@click.option("--rss-preset", default="tiny", show_default=True, help="Generator preset for (d).")
@click.option("--rss-domains", default="rgb", show_default=True, help="Domains for (d).")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the numbers here.")
def main(preset, domains, n_samples, n_naive, batch_size, workers, png_level, threads, repeats, rss_n, rss_preset,
         rss_domains, json_out) -> None:
    """Measure compute-only, end-to-end and naive sampling throughput, and peak RSS."""
    if threads:
        torch.set_num_threads(threads)
    names = [d for d in domains.split(",") if d]
    results: dict = {"preset": preset, "domains": names, "batch_size": batch_size, "workers": workers,
                     "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if n_samples:
            run_throughput(tmp, preset, names, n_samples, n_naive, batch_size, workers, png_level, repeats, results)
        if rss_n:
            rss_names = [d for d in rss_domains.split(",") if d]
            gen_rss, anchors_rss = build_world(tmp / "rss_world", rss_preset, rss_names)
            results["rss"] = {}
            for n in [int(v) for v in rss_n.split(",")]:
                mb, seconds = peak_rss_mb([
                    "sample", "--generator", str(gen_rss), "--anchors", str(anchors_rss), "--domains", rss_domains,
                    "--num-samples", str(n), "--out", str(tmp / f"rss{n}"), "--device", "cpu", "--no-progress",
                    "--batch-size", str(batch_size), "--workers", str(workers),
                ])
                results["rss"][n] = {"peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1)}
                click.echo(f"--n {n}: peak RSS {mb:.0f} MB in {seconds:.0f}s")
    if json_out:
        json_out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
