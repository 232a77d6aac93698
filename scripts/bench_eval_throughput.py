"""Throughput of the two main jobs: `synthgen fit` (steps/s) and `synthgen sample` (samples/s).

Times whole commands, so it measures what a user waits for (start-up included; use a
large enough count to make it small). The commands are passed verbatim, which keeps the
script independent of their options:

    python scripts/bench_eval_throughput.py \
        --fit "synthgen fit --domain seg --data out/toyfaces-seg --generator G --steps 200 --out /tmp/a.safetensors" \
        --fit-steps 200 \
        --sample "synthgen sample --generator G --anchors domains --n 2000 --out /tmp/sampled" \
        --samples 2000
"""
from __future__ import annotations

import json
import shlex
import subprocess
import time

import click


def timed(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(shlex.split(command), check=True)
    return time.perf_counter() - started


@click.command()
@click.option("--fit", "fit_cmd", default=None, help="A complete `synthgen fit ...` command line.")
@click.option("--fit-steps", type=int, default=None, help="Optimizer steps that command runs.")
@click.option("--sample", "sample_cmd", default=None, help="A complete `synthgen sample ...` command line.")
@click.option("--samples", type=int, default=None, help="Samples that command writes.")
def main(fit_cmd, fit_steps, sample_cmd, samples):
    """Time the given commands and print steps/s and samples/s as JSON."""
    if bool(fit_cmd) != bool(fit_steps) or bool(sample_cmd) != bool(samples):
        raise click.UsageError("--fit goes with --fit-steps, --sample with --samples")
    result = {}
    if fit_cmd:
        seconds = timed(fit_cmd)
        result.update(fit_seconds=round(seconds, 2), fit_steps_per_second=round(fit_steps / seconds, 3))
    if sample_cmd:
        seconds = timed(sample_cmd)
        result.update(sample_seconds=round(seconds, 2), samples_per_second=round(samples / seconds, 2))
    click.echo(json.dumps(result))


if __name__ == "__main__":
    main()
