"""Train a small segmentation net on a synthgen dataset, streaming from its shards.

    synthgen sample --domains rgb,seg --n 20000 --out out/faces
    python examples/train_segmentation.py --dataset out/faces --steps 2000 --out out/segmenter.safetensors

The last shard is held out for evaluation (mIoU over the dataset's classes). Masks are
read as class ids (no RGB conversion) by synthgen.dataset.webdataset; photos arrive in
[0, 1] and are mapped to [-1, 1], the range the segmenter expects.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from synthgen.dataset.reader import open_dataset
from synthgen.dataset.webdataset import shard_pipeline
from synthgen.evaluation.segmenter import SegmenterConfig, UNet, save_segmenter
from synthgen.metrics import ConfusionMatrix


def loader(dataset: Path, shards: list[Path], batch_size: int, workers: int, shuffle: int, seed: int = 0):
    pipe = shard_pipeline(dataset, domains=["rgb", "seg"], shards=shards, shuffle_buffer=shuffle, seed=seed)
    return torch.utils.data.DataLoader(pipe, batch_size=batch_size, num_workers=workers)


def train_segmentation(
    *, dataset: Path, steps: int = 500, batch_size: int = 16, lr: float = 2e-3, workers: int = 0,
    base_channels: int = 16, shuffle: int = 256, out: Path | None = None, log_every: int = 50,
) -> dict:
    folder = open_dataset(dataset)
    class_names = folder.specs["seg"]["class_names"]
    shards = folder.complete_shards()
    if len(shards) < 2:
        raise click.UsageError("need at least 2 complete shards: all but the last train, the last evaluates")
    train_shards, eval_shards = shards[:-1], shards[-1:]
    model = UNet(SegmenterConfig(num_classes=len(class_names), base_channels=base_channels, depth=2,
                                 class_names=list(class_names)))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Epochs over the training shards until `steps` batches were seen.
    batches = itertools.chain.from_iterable(
        loader(dataset, train_shards, batch_size, workers, shuffle, seed=epoch) for epoch in itertools.count()
    )
    model.train()
    started = time.perf_counter()
    for step, batch in zip(range(1, steps + 1), batches):
        x = batch["rgb"] * 2 - 1  # (B, 3, H, W) in [-1, 1]
        loss = F.cross_entropy(model(x), batch["seg"])  # seg: (B, H, W) int64 class ids
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            rate = step * batch_size / (time.perf_counter() - started)
            click.echo(f"step {step}/{steps}  loss {loss.item():.4f}  {rate:.0f} samples/s")
    model.eval()
    cm = ConfusionMatrix(len(class_names), class_names)
    with torch.no_grad():
        for batch in loader(dataset, eval_shards, batch_size, 0, 0):
            cm.update(model(batch["rgb"] * 2 - 1).argmax(1), batch["seg"])
    result = {"steps": steps, "final_loss": float(loss.item()), "eval_miou": float(cm.miou())}
    if out is not None:
        save_segmenter(model, out, extra={"dataset": str(dataset), **result})
    return result


@click.command()
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder written by `synthgen sample` with domains rgb and seg.")
@click.option("--steps", type=click.IntRange(min=1), default=500, show_default=True, help="Optimizer steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Samples per step.")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="DataLoader workers (shards are split between them).")
@click.option("--base-channels", type=click.IntRange(min=4), default=16, show_default=True,
              help="U-Net width at full resolution.")
@click.option("--shuffle", type=click.IntRange(min=0), default=256, show_default=True,
              help="Sample shuffle buffer (0 keeps index order).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to save the trained segmenter (safetensors).")
def main(**options) -> None:
    """Train a U-Net rgb -> seg on a synthgen dataset and report held-out mIoU."""
    result = train_segmentation(**options)
    click.echo(f"eval mIoU {result['eval_miou']:.3f} (last shard held out)")


if __name__ == "__main__":
    main()
