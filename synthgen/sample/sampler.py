"""The device loop of `synthgen sample` (docs/sampling.md).

For each batch of sample indices: latents by index -> the frozen generator ONCE ->
every requested regressor reads the same features -> codecs.decode -> uint8 arrays.
The arrays go to the encode pool; a writer thread takes the encoded samples in index
order and streams them into the shard's tar. A bounded queue between the two sides
keeps memory flat whatever --n is, and lets the device run ahead of PNG encoding and
disk until the queue is full. On a CPU the blocks are computed on one thread each, in the
compute lanes of compute_lanes.py (processes side by side); on a GPU in this process.
"""
from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from synthgen.allocator import keep_freed_memory
from synthgen.anchors.pipeline import Head, anchor_file, run_heads
from synthgen.dataset.card import (
    CardError, build_card, check_compatible, expected_tasks, extend_card, read_card, spec_summary, write_card,
)
from synthgen.dataset.layout import ShardTask, domain_fields, is_complete, shard_paths
from synthgen.dataset.manifest import MANIFEST_VERSION, manifest_schema, merge_manifests
from synthgen.errors import UserError
from synthgen.sample.compute_lanes import ComputeLanes, auto_lanes
from synthgen.sample.encode import EncodeOptions, EncodePool, SampleArrays
from synthgen.sample.lock import hold, print_warning
from synthgen.sample.plan import (
    SampleConfig, blocks, estimate_sample_bytes, plan_shards, shards_for_rank, step_size,
)
from synthgen.sample.quality import label_scores
from synthgen.sample.shard_writer import ShardWriter
from synthgen.seeding import index_rng, per_index_normal

# synthgen.seeding streams (0: the latent z, 1: per-sample noise maps).
STYLE_MIX_Z_STREAM = 2  # the second latent of a mixed sample
STYLE_MIX_CHOICE_STREAM = 3  # whether sample i mixes, and from which layer
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@contextlib.contextmanager
def compute_mode(device: torch.device | str, dtype: str):
    """How a block is computed: inference mode, under the autocast of `--dtype` (none for float32)."""
    autocast = torch.autocast(torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "float32")
    with torch.inference_mode(), autocast:
        yield


class SampleSetupError(UserError):
    """Options that cannot make a dataset (missing generator or anchor, bad domain, ...)."""


# -- the models ------------------------------------------------------------------
@dataclass
class DomainHead(Head):
    """One requested domain (pipeline.Head) and what the card records of it."""

    fingerprint: str = "generator"  # sha256 of the anchor file; "generator" for the photo


def default_anchors_dir() -> Path:
    from synthgen.anchors.spec import builtin_domains_dir

    return builtin_domains_dir()


def load_frozen_generator(path: str | None, class_index: int | None, device: torch.device):
    from synthgen.generators import CheckpointError, frozen_generator

    try:
        return frozen_generator(default_generator_path() if path is None else path, device, class_index=class_index)
    except CheckpointError as exc:
        raise SampleSetupError(str(exc)) from None


def builtin_generator_file() -> Path:
    """The built-in default world's generator, shipped beside the built-in domain specs."""
    return default_anchors_dir() / "generator.safetensors"


def default_generator_path() -> str:
    candidate = builtin_generator_file()
    if not candidate.is_file():
        raise SampleSetupError(
            f"no --generator given and the built-in default generator ({candidate}) is not installed: "
            "pass --generator CKPT (.safetensors, rosinality .pt or NVIDIA .pkl)"
        )
    return str(candidate)


def is_builtin_generator(path: str | None) -> bool:
    """True for the built-in default world's generator (no --generator, or its own file)."""
    if path is None:
        return True
    builtin = builtin_generator_file()
    return builtin.is_file() and Path(path).resolve() == builtin.resolve()


def load_heads(domains: Sequence[str], anchors_dir: str | None, generator: Any, device: torch.device,
               generator_fingerprint: str, builtin_generator: bool = True) -> list[DomainHead]:
    """One head per domain. Without anchors_dir the built-in anchors are used, but only with
    the built-in generator: they were fit for it alone. The photo (rgb) never needs an anchor."""
    from synthgen.anchors.anchor import AnchorFileError, AnchorMismatchError, load_anchor
    from synthgen.anchors.spec import DomainSpecError, load_domain_spec
    from synthgen.dataset.verify import file_sha256

    folder = Path(anchors_dir) if anchors_dir else (default_anchors_dir() if builtin_generator else None)
    heads = []
    for name in domains:
        found = anchor_file(folder, name) if folder is not None else None
        path = folder / f"{name}.safetensors" if folder is not None else None  # the name messages give
        try:
            if found is None:
                spec = load_domain_spec(name)
                if not spec.from_generator:
                    raise SampleSetupError(
                        f"domain {name!r} needs its anchor {path}: train it with `synthgen fit` "
                        "or pass --anchors DIR holding <domain>.safetensors" if path is not None else
                        f"domain {name!r} needs an anchor fit for this generator (the built-in anchors work only "
                        f"with the built-in generator): fit one with `synthgen fit` and pass --anchors DIR holding "
                        f"{name}.safetensors"
                    )
                heads.append(DomainHead(spec, None))
                continue
            anchor = load_anchor(found, generator=generator, fingerprint=generator_fingerprint)
        except (DomainSpecError, AnchorFileError, AnchorMismatchError) as exc:
            raise SampleSetupError(str(exc)) from None
        if anchor.regressor is not None:
            anchor.regressor.to(device).eval()  # eval: BatchNorm uses running stats, batch size cannot matter
        heads.append(DomainHead(anchor.spec, anchor, anchor.size, fingerprint=file_sha256(found)))
    sizes = {h.size for h in heads if h.anchor is not None}
    if len(sizes) > 1:
        raise SampleSetupError(f"anchors work at different sides {sorted(sizes)}: aligned samples need one; "
                               "sample these domains in separate datasets")
    common = next(iter(sizes)) if sizes else None
    for head in heads:
        if head.anchor is None:
            head.size = common
    return heads


def load_world(cfg: SampleConfig, device: torch.device | None = None) -> tuple[Any, list[DomainHead], str]:
    """The generator, the heads of cfg's domains and the generator's fingerprint, loaded on
    `device` (default: the CPU)."""
    device = torch.device("cpu") if device is None else device
    generator = load_frozen_generator(cfg.generator, cfg.class_index, device)
    if cfg.style_mix_prob > 0 and generator.latent_kind != "w+":
        raise SampleSetupError("--style-mix needs a w+ generator (StyleGAN2); BigGAN-deep has a single z")
    fingerprint = generator.fingerprint
    heads = load_heads(cfg.domains, cfg.anchors_dir, generator, device, fingerprint,
                       builtin_generator=is_builtin_generator(cfg.generator))
    return generator, heads, fingerprint


def output_side(generator: Any, heads: Sequence[DomainHead]) -> int:
    return next((h.size for h in heads if h.size is not None), int(generator.resolution))


# -- one batch on the device -----------------------------------------------------
def style_mix_layers(seed: int, indices: Sequence[int], prob: float, num_ws: int) -> list[int | None]:
    """Per sample: None (not mixed) or the first w+ entry taken from its second latent."""
    out: list[int | None] = []
    for i in indices:
        rng = index_rng(seed, i, STYLE_MIX_CHOICE_STREAM)
        mixed, layer = rng.random() < prob, int(rng.integers(1, max(num_ws, 2)))
        out.append(layer if mixed and num_ws > 1 else None)
    return out


def batch_latents(generator: Any, indices: Sequence[int], cfg: SampleConfig) -> tuple[torch.Tensor, list[int | None]]:
    """(B, num_ws, D) latents of these indices, and each sample's style-mixing layer."""
    latents = generator.sample_latents(indices, cfg.seed, cfg.truncation_psi)
    layers = style_mix_layers(cfg.seed, indices, cfg.style_mix_prob, generator.num_ws) if cfg.style_mix_prob > 0 \
        else [None] * len(indices)
    rows = [k for k, layer in enumerate(layers) if layer is not None]
    if rows:
        from synthgen.generators.stylegan2.latents import mix_latents

        z2 = per_index_normal(cfg.seed, [indices[k] for k in rows], generator.z_dim, STYLE_MIX_Z_STREAM)
        w2 = generator.map(torch.from_numpy(z2).to(latents.device), cfg.truncation_psi)
        latents = latents.clone()
        for j, k in enumerate(rows):
            latents[k:k + 1] = mix_latents(latents[k:k + 1], w2[j:j + 1], layers[k])
    return latents, layers


def compute_batch(generator: Any, heads: Sequence[DomainHead], indices: Sequence[int], cfg: SampleConfig,
                  shard: int) -> list[SampleArrays]:
    """The samples of `indices`, computed in whole aligned blocks of COMPUTE_BLOCK (plan.blocks).

    Every block runs latents -> G -> regressors -> decode with the same shape and the same
    rows wherever it is computed, so a sample's bytes cannot depend on the batch size, the
    shard size or which other samples were asked for; rows of a block outside `indices`
    (at a shard's or the dataset's ends) are computed and dropped.
    """
    wanted = set(int(i) for i in indices)
    out = []
    for block in blocks(indices):
        out += [s for s in compute_block(generator, heads, block, cfg, shard) if s.index in wanted]
    return out


def compute_block(generator: Any, heads: Sequence[DomainHead], indices: Sequence[int], cfg: SampleConfig,
                  shard: int) -> list[SampleArrays]:
    """One generator pass over exactly these indices (the caller keeps their number fixed)."""
    with compute_mode(generator.w_avg.device, cfg.dtype):
        latents, layers = batch_latents(generator, indices, cfg)
        decoded, scores = {}, {}
        for out in run_heads(generator, latents, heads):  # the one generator pass every domain shares
            scores.update(label_scores(out.head.spec, out.raw))
            decoded[out.head.spec.name] = out.decoded  # points already on codecs.POINT_STEP, the map drawn from them
    samples = []
    for k, index in enumerate(indices):
        meta = {
            "shard": shard, "seed": cfg.seed, "truncation_psi": cfg.truncation_psi,
            "style_mix_layer": layers[k], "class_index": cfg.class_index,
        }
        samples.append(SampleArrays(
            index=int(index),
            arrays={name: {f: v[k] for f, v in d.items()} for name, d in decoded.items()},
            scores={name: float(v[k]) for name, v in scores.items()},
            meta=meta,
        ))
    return samples


# -- the writer side -------------------------------------------------------------
class _Start:
    def __init__(self, task: ShardTask):
        self.task = task


class _Commit:
    pass


class ShardSink(threading.Thread):
    """Takes encoded-sample futures in index order and writes them into shards."""

    def __init__(self, out_dir: Path, schema: Any, maxsize: int, on_sample: Callable[[], None], rank: int = 0):
        super().__init__(name="shard-writer", daemon=True)
        self.rank = rank
        self.out_dir = out_dir
        self.schema = schema
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.on_sample = on_sample
        self.error: BaseException | None = None
        self.written: list[ShardTask] = []

    def put(self, item: Any) -> None:
        while True:
            if self.error is not None and item is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        writer = None
        try:
            while (item := self.queue.get()) is not None:
                if isinstance(item, _Start):
                    writer = ShardWriter(self.out_dir, item.task, self.schema, self.rank)
                elif isinstance(item, _Commit):
                    writer.commit()
                    self.written.append(writer.task)
                    writer = None
                else:
                    writer.add(item.result())
                    self.on_sample()
            if writer is not None:  # the producer stopped mid-shard: leave no half tar behind
                writer.abort()
        except BaseException as exc:
            self.error = exc
            if writer is not None:
                writer.abort()
            while self.queue.get() is not None:  # unblock the producer until it stops
                pass

    def finish(self) -> None:
        self.put(None)
        self.join()
        if self.error is not None:
            raise self.error


# -- the whole job ---------------------------------------------------------------
@dataclass
class SampleResult:
    out_dir: Path
    shards_written: int
    shards_skipped: int
    samples_written: int
    seconds: float


@dataclass
class Prepared:
    state: Any
    device: torch.device
    generator: Any
    heads: list[DomainHead]
    card: dict
    tasks: list[ShardTask]


def make_state(device: str) -> Any:
    from accelerate import PartialState

    # cpu=True makes every torchrun process a gloo rank on CPU; without it a CPU-only
    # launch would leave each process believing it is rank 0 (Accelerate). "auto" on a
    # machine without CUDA is such a launch too.
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    state = PartialState(cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1 and state.num_processes != launched:
        raise SampleSetupError(
            f"launched with WORLD_SIZE={launched} but this process joined a world of {state.num_processes}: "
            "every process would write the same shards; pass --device cpu (CPU launches) or check the launcher")
    return state


def rank_device(state: Any, device: str) -> torch.device:
    """This rank's device: Accelerate's for auto and cpu (make_state forced the CPU for cpu),
    else the named CUDA device (check_device has checked it exists)."""
    return state.device if device in ("auto", "cpu") else torch.device(device)


def dataset_config(cfg: SampleConfig, generator: Any, heads: Sequence[DomainHead], fingerprint: str) -> dict:
    """The card's config: everything that decides a sample's bytes, nothing that does not."""
    describe = generator.describe() if hasattr(generator, "describe") else {}
    return {
        "generator_fingerprint": fingerprint,
        "generator": describe,
        "anchors": {h.spec.name: h.fingerprint for h in heads},
        "domains": [h.spec.name for h in heads],
        "domain_specs": {h.spec.name: spec_summary(h.spec, domain_fields(h.spec, cfg.image_format)) for h in heads},
        "resolution": output_side(generator, heads),
        "seed": cfg.seed,
        "truncation_psi": cfg.truncation_psi,
        "style_mix_prob": cfg.style_mix_prob,
        "class_index": cfg.class_index,
        "shard_size": cfg.shard_size,
        "image_format": cfg.image_format,
        "quality": None if cfg.image_format == "png" else cfg.quality,
        "png_level": cfg.png_level,
        "dtype": cfg.dtype,
        "noise": "const",
        "manifest_version": MANIFEST_VERSION,
    }


def check_paths(cfg: SampleConfig) -> None:
    """The folders named on the command line, checked here so that each is one line (exit 1)."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise SampleSetupError(f"--out {out} is a file: pass a folder for the dataset (it is created if missing)")
    if cfg.anchors_dir is not None and not Path(cfg.anchors_dir).is_dir():
        raise SampleSetupError(f"--anchors {cfg.anchors_dir} is not a folder: pass the folder holding "
                               "<domain>.safetensors anchor files (written by `synthgen fit`)")


def check_device(device: str) -> None:
    """--device auto and cpu always work; cuda / cuda:N only where that GPU is visible."""
    if device in ("auto", "cpu"):
        return
    from synthgen.devices import DeviceError, resolve_device

    try:
        if resolve_device(device).type != "cuda":
            raise DeviceError(f"unknown device {device!r}: choose auto, cpu or cuda:N")
    except DeviceError as exc:
        raise SampleSetupError(str(exc)) from None


def prepare(cfg: SampleConfig, command: str) -> Prepared:
    if cfg.style_mix_prob and not 0 <= cfg.style_mix_prob <= 1:
        raise SampleSetupError(f"--style-mix is a probability in [0, 1], got {cfg.style_mix_prob}")
    if len(set(cfg.domains)) != len(cfg.domains) or not cfg.domains:
        raise SampleSetupError(f"--domains must name each domain once, got {','.join(cfg.domains)}")
    tasks = plan_shards(cfg.start_index, cfg.n_samples, cfg.shard_size)
    check_paths(cfg)
    check_device(cfg.device)
    state = make_state(cfg.device)
    device = rank_device(state, cfg.device)
    generator, heads, fingerprint = load_world(cfg, device)
    card = build_card(config=dataset_config(cfg, generator, heads, fingerprint), start_index=cfg.start_index,
                      n_samples=cfg.n_samples, command=command)
    return Prepared(state, device, generator, heads, card, tasks)


def describe_plan(cfg: SampleConfig, prep: Prepared) -> str:
    world = prep.state.num_processes
    done = sum(is_complete(Path(cfg.out_dir), t) for t in prep.tasks)
    kinds = {h.spec.name: (h.spec.kind, getattr(h.spec, "channels", 0) or getattr(h.spec, "num_points", 0))
             for h in prep.heads}
    est = estimate_sample_bytes(kinds, output_side(prep.generator, prep.heads), cfg.image_format)
    lines = [
        f"out          {cfg.out_dir}",
        f"generator    {prep.card['config']['generator_fingerprint'][:16]} ({prep.generator.resolution}px, {prep.device})",
        f"domains      {', '.join(cfg.domains)}",
        f"samples      {cfg.n_samples} (indices {cfg.start_index}..{cfg.stop_index - 1}), seed {cfg.seed}, "
        f"psi {cfg.truncation_psi}, style mix {cfg.style_mix_prob}",
        f"shards       {len(prep.tasks)} of {cfg.shard_size} ({prep.tasks[0].name}..{prep.tasks[-1].name}), "
        f"{done} already complete",
        f"compute      {_describe_compute(cfg, prep)}",
        f"ranks        {world}: " + ", ".join(
            f"rank {r}: {len(shards_for_rank(prep.tasks, r, world))}" for r in range(min(world, 8))
        ) + (" ..." if world > 8 else ""),
        f"bytes        ~{est.per_sample / 1e3:.1f} KB/sample, ~{est.per_sample * cfg.n_samples / 1e9:.2f} GB total "
        f"({', '.join(f'{k} {v / 1e3:.1f} KB' for k, v in est.per_domain.items())}; rough)",
    ]
    return "\n".join(lines)


def _describe_compute(cfg: SampleConfig, prep: Prepared) -> str:
    if prep.device.type != "cpu":
        return f"this process on {prep.device}"
    procs = compute_procs(cfg, prep)
    return "this process, one thread (CPU)" if procs == 1 else f"{procs} lane processes, one thread each (CPU)"


def clear_dataset(out_dir: Path) -> None:
    for sub in ("shards", "manifests", "stats"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    for name in ("manifest.parquet", "dataset.json"):
        (out_dir / name).unlink(missing_ok=True)


def setup_output(cfg: SampleConfig, prep: Prepared) -> None:
    """Refuse a different dataset in the folder (every rank, same answer), then rank 0 writes the card."""
    out_dir = Path(cfg.out_dir)
    try:
        existing = read_card(out_dir)
    except CardError:
        if not cfg.overwrite:
            raise
        existing = {"config": None}  # a damaged card: --overwrite starts the dataset again
    if not cfg.overwrite:
        check_compatible(existing, prep.card, out_dir)
    if prep.state.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        if existing is not None and cfg.overwrite and existing.get("config") != prep.card["config"]:
            clear_dataset(out_dir)
            existing = None
        write_card(out_dir, extend_card(existing, prep.card))
    prep.state.wait_for_everyone()


def sample_dataset(cfg: SampleConfig, command: str = "", prepared: Prepared | None = None,
                   warn: Callable[[str], None] = print_warning) -> SampleResult:
    """Write the dataset of `cfg` into cfg.out_dir, holding its lock (sample/lock.py) from
    before the card is written until every rank is done; warn: one-line warnings (rank 0)."""
    started = time.perf_counter()
    keep_freed_memory()  # no page faults on every pass's large maps (synthgen/allocator.py)
    prep = prepared or prepare(cfg, command)
    with hold(Path(cfg.out_dir), prep.state, command, warn):
        return _write_dataset(cfg, prep, started)


def _write_dataset(cfg: SampleConfig, prep: Prepared, started: float) -> SampleResult:
    setup_output(cfg, prep)
    out_dir = Path(cfg.out_dir)
    state = prep.state
    mine = shards_for_rank(prep.tasks, state.process_index, state.num_processes)
    todo = [t for t in mine if not is_complete(out_dir, t)]
    schema = manifest_schema([h.spec for h in prep.heads])
    specs = [h.spec for h in prep.heads]
    opts = EncodeOptions(cfg.image_format, cfg.quality, cfg.png_level)
    # The lanes start first: a forked lane must not inherit the writer's or the encoders' threads.
    with open_lanes(cfg, prep, None if todo else 1) as lanes, \
            _progress(state, total=sum(t.count for t in todo), world=state.num_processes,
                      enabled=cfg.show_progress) as tick:
        sink = ShardSink(out_dir, schema, maxsize=max(2 * step_size(cfg.batch_size), 4 * cfg.workers), on_sample=tick,
                         rank=state.process_index)
        sink.start()
        with EncodePool(specs, opts, cfg.workers) as pool:
            try:
                for task in todo:
                    sink.put(_Start(task))
                    for samples in lanes.run(task.indices, task.shard):
                        for sample in samples:
                            sink.put(pool.submit(sample))
                    sink.put(_Commit())
            finally:
                sink.finish()
    state.wait_for_everyone()
    if state.is_main_process:
        write_merged_manifest(out_dir)
    state.wait_for_everyone()
    return SampleResult(out_dir, len(sink.written), len(mine) - len(todo),
                        sum(t.count for t in sink.written), time.perf_counter() - started)


def compute_procs(cfg: SampleConfig, prep: Prepared) -> int:
    """Lane processes of this rank (compute_lanes.py): --compute-procs, or auto; 1 off the CPU."""
    if prep.device.type != "cpu":
        return 1
    return cfg.compute_procs or auto_lanes(int(prep.generator.resolution))


def open_lanes(cfg: SampleConfig, prep: Prepared, procs: int | None = None) -> ComputeLanes:
    """The compute lanes of this rank (enter them to start): `procs`, else compute_procs."""
    return ComputeLanes(cfg, prep, procs or compute_procs(cfg, prep), compute_block, load_world)


def write_merged_manifest(out_dir: Path) -> int:
    """manifest.parquet over every shard the card lists, in shard order; written last."""
    card = read_card(out_dir)
    tasks = expected_tasks(card)
    missing = [t.name for t in tasks if not is_complete(out_dir, t)]
    if missing:
        raise RuntimeError(f"cannot merge manifests: shards {', '.join(missing[:5])} are incomplete; rerun the command")
    return merge_manifests([shard_paths(out_dir, t.name)["manifest"] for t in tasks], out_dir / "manifest.parquet")


@contextlib.contextmanager
def _progress(state: Any, total: int, world: int, enabled: bool):
    if not (enabled and state.is_main_process):
        yield lambda: None
        return
    from tqdm.auto import tqdm

    desc = "sample" if world == 1 else f"sample (rank 0 of {world})"
    bar = tqdm(total=total, unit="sample", desc=desc, dynamic_ncols=True, smoothing=0.1)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()


__all__ = [
    "DomainHead", "SampleResult", "SampleSetupError", "compute_batch", "prepare", "sample_dataset",
    "describe_plan", "write_merged_manifest",
]
