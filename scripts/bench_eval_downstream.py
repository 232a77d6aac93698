"""Downstream value of synthetic data at several N (DatasetGAN's test): mIoU of the same
U-Net trained on N synthetic vs N real pairs, scored on held-out real pairs.

Needs a `synthgen sample` output of at least max(N) samples (with rgb and seg), a real
training folder of at least max(N) pairs and a test folder. Prints one table; writes the
per-N JSON next to it with --out.

    python scripts/bench_eval_downstream.py --synthetic out/sampled --real out/toyfaces-segmenter \
        --test out/toyfaces-test --n 1000 --n 10000 --steps 3000 --out out/bench-downstream
"""
from __future__ import annotations

from pathlib import Path

import click

from synthgen.evaluation.downstream import run_downstream
from synthgen.evaluation.report import format_table, write_json


@click.command()
@click.option("--synthetic", type=click.Path(exists=True), required=True, help="Synthetic pairs (shards or folders).")
@click.option("--real", type=click.Path(exists=True), required=True, help="Real training pairs.")
@click.option("--test", type=click.Path(exists=True), required=True, help="Real test pairs.")
@click.option("--n", "ns", type=int, multiple=True, default=(1000, 10000), show_default=True,
              help="Training-set sizes (repeat the option).")
@click.option("--steps", type=int, default=3000, show_default=True, help="Optimizer steps per net.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Pairs per step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed shared by both nets.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for downstream_n<N>.json.")
def main(synthetic, real, test, ns, steps, batch_size, seed, out):
    """Run the downstream benchmark at every N and print the ratios."""
    rows = []
    for n in ns:
        r = run_downstream(synthetic=synthetic, real=real, test=test, n=n, steps=steps,
                           batch_size=batch_size, seed=seed)
        rows.append([n, r["miou_synthetic"], r["miou_real"], r["ratio"]])
        if out:
            write_json(r, Path(out) / f"downstream_n{n}.json")
    click.echo(format_table(["N", "mIoU synthetic", "mIoU real", "ratio"], rows))


if __name__ == "__main__":
    main()
