"""Reference segmenter benchmark: training speed (steps/s) and held-out mIoU on ToyFaces.

Renders the training pairs from the ToyFaces `segmenter` split and the test pairs from
the held-out `test` split in memory (or reads --data / --test folders), trains the
reference U-Net, and prints one JSON line. Optionally saves the trained net (--out).

    python scripts/bench_eval_segmenter.py --n 2000 --n-test 500 --steps 1500
"""
from __future__ import annotations

import json
import time

import click
import numpy as np

from synthgen.evaluation.pairs import Pairs, read_pairs
from synthgen.evaluation.segmenter import SegmenterConfig, save_segmenter
from synthgen.evaluation.train_segmenter import TrainConfig, evaluate_segmenter, train_segmenter


def toyfaces_pairs(split: str, n: int, size: int) -> Pairs:
    from synthgen.toyfaces.render import render_pool
    from synthgen.toyfaces.splits import split_z

    chunks = list(render_pool(split_z(split, range(n)), size=size, domains=("rgb", "seg")))
    return Pairs(np.concatenate([c["rgb"] for c in chunks]), np.concatenate([c["seg"] for c in chunks]),
                 [f"{i:09d}" for i in range(n)])


@click.command()
@click.option("--data", default=None, help="Training pairs folder/shards (default: render ToyFaces `segmenter` split).")
@click.option("--test", default=None, help="Test pairs folder/shards (default: render ToyFaces `test` split).")
@click.option("--n", type=int, default=2000, show_default=True, help="Training pairs.")
@click.option("--n-test", type=int, default=500, show_default=True, help="Test pairs.")
@click.option("--size", type=int, default=64, show_default=True, help="Image side.")
@click.option("--steps", type=int, default=1500, show_default=True, help="Optimizer steps.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Pairs per step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--out", default=None, help="Save the trained segmenter here (.safetensors).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
def main(data, test, n, n_test, size, steps, batch_size, seed, out, threads):
    """Train the reference segmenter and report speed and held-out mIoU."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    train = read_pairs(data, n=n, size=size) if data else toyfaces_pairs("segmenter", n, size)
    held_out = read_pairs(test, n=n_test, size=size) if test else toyfaces_pairs("test", n_test, size)
    load_seconds = time.perf_counter() - started
    model, facts = train_segmenter(train, TrainConfig(steps=steps, batch_size=batch_size, seed=seed),
                                   SegmenterConfig(train_size=size))
    report = evaluate_segmenter(model, held_out).report()
    if out:
        save_segmenter(model, out, extra={**facts, "test": report})
    click.echo(json.dumps({
        "train_pairs": len(train), "test_pairs": len(held_out), "size": size, "steps": steps,
        "batch_size": batch_size, "threads": threads, "parameters": facts["parameters"], "data_seconds": round(load_seconds, 1),
        "train_seconds": round(facts["seconds"], 1), "steps_per_second": round(facts["steps_per_second"], 2),
        "test_miou": round(report["miou"], 4), "test_pixel_accuracy": round(report["pixel_accuracy"], 4),
        "test_iou": {k: (round(v, 3) if v is not None else None) for k, v in report["iou"].items()},
    }))


if __name__ == "__main__":
    main()
