"""Images per second of FrozenGenerator.synthesize (features + rgb), random-weight StyleGAN2.

    python scripts/bench_generators.py                       # CPU, 64/256/1024 px, batch 1 and 16
    python scripts/bench_generators.py --device cuda --autocast bf16
"""
from __future__ import annotations

import time

import click
import torch

from synthgen.generators.presets import build_generator
from synthgen.generators.stylegan2 import StyleGAN2Config

CONFIGS = {
    64: StyleGAN2Config(size=64, channel_multiplier=2),
    256: StyleGAN2Config(size=256, channel_multiplier=2),
    1024: StyleGAN2Config(size=1024, channel_multiplier=2),
}


def bench(size: int, batch_size: int, iterations: int, device: str, autocast: str | None, preset: str | None) -> float:
    """Images/s over `iterations` timed calls after one warm-up call."""
    cfg = preset if preset else CONFIGS[size]
    gen = build_generator(cfg, seed=0, autocast_dtype=autocast).to(device)
    latents = gen.sample_latents(range(batch_size), seed=0)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        gen.synthesize(latents)
        sync()
        start = time.perf_counter()
        for _ in range(iterations):
            gen.synthesize(latents)
        sync()
    return batch_size * iterations / (time.perf_counter() - start)


@click.command()
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu or cuda.")
@click.option("--sizes", default="64,256,1024", show_default=True, help="Resolutions (config F channels).")
@click.option("--batch-sizes", default="1,16", show_default=True, help="Batch sizes to time.")
@click.option("--iterations", default=5, show_default=True, help="Timed calls per setting (1024 px uses 2 on CPU).")
@click.option("--threads", default=0, show_default=True, help="torch CPU threads (0: torch's default).")
@click.option("--autocast", type=click.Choice(["bf16", "fp16"]), default=None, show_default=True,
              help="Mixed precision on CUDA; fp32 when omitted.")
@click.option("--preset", default=None, show_default=True, help="Time a named preset (e.g. toyfaces64) instead of --sizes.")
def main(device: str, sizes: str, batch_sizes: str, iterations: int, threads: int, autocast: str | None, preset: str | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    click.echo(f"device={device} threads={torch.get_num_threads()} autocast={autocast or 'fp32'}")
    click.echo(f"{'size':>6} {'batch':>6} {'images/s':>10}")
    size_list = [0] if preset else [int(s) for s in sizes.split(",")]
    for size in size_list:
        for batch_size in (int(b) for b in batch_sizes.split(",")):
            n = 2 if size == 1024 and device == "cpu" else iterations
            rate = bench(size, batch_size, n, device, autocast, preset)
            label = preset or str(size)
            click.echo(f"{label:>6} {batch_size:>6} {rate:>10.2f}")


if __name__ == "__main__":
    main()
