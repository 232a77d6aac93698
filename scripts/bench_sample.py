"""Benchmark of `synthgen sample` (numbers in docs/sampling.md).

On one generator and one set of anchors, in one run:
  (p) a matmul probe of this machine: GFLOP/s of a 2048x2048 fp32 matmul with the torch
      threads in use, the "roofline peak";
  (a) compute only: latents -> G once -> every regressor -> uint8 arrays, no encoding or IO,
      as `synthgen sample` computes (on a CPU its --compute-procs lanes, started beforehand);
  (a1) the same in this process on torch's threads (how `sample` computed before the lanes);
  (b) `sample_dataset` end to end: the same plus the encode pool, tar, manifests, stats;
  (c) a naive baseline: batch 1, the generator run again for every domain, loose PNG files;
  (e) encoding alone: ms per sample of one encode worker turning a sample into its fields;
  (f) FLOPs per sample (torch.utils.flop_counter on one compute block) of the mapping, of
      the generator pass and of each head; roofline samples/s = peak / total FLOPs per
      sample, and (a), (b), (c) as fractions of it;
  (t) the generator alone (`synthesize`) at batch 1, 8, 32 and each head alone at batch 8, 32;
  (d) peak RSS of `synthgen sample` subprocesses for growing --n (memory must stay flat), and the
      peak PSS of the process with its compute lanes (Linux);
  (r) with --real-size: compute-only samples/s and peak RSS of the FFHQ architectures
      (random weights) at batch 1, 8, 32, each (preset, batch) in a fresh subprocess.

--device cuda and --dtype bfloat16 run every part on a GPU in that compute dtype (autocast, as
`synthgen sample --dtype`): the probe is then a matmul of that dtype on the GPU, the timings
wait for the GPU (torch.cuda.synchronize), (r) also reports the GPU's peak memory, and (b) is
set against the generator alone at the same batch ("end to end / generator only").

    python scripts/bench_sample.py --preset toyfaces64 --domains rgb,seg,sketch --n 512
    python scripts/bench_sample.py --world domains --domains rgb,seg,sketch,landmark --n 256
    python scripts/bench_sample.py --n 0 --real-size --json-out real.json
    python scripts/bench_sample.py --n 0 --probe-repeats 0 --real-size --real-presets ffhq256 --real-batches 1,8
    python scripts/bench_sample.py --preset ffhq256 --domains rgb,seg,sketch,landmark --device cuda \
        --dtype bfloat16 --n 2048 --batch-size 32 --workers 16 --g-batches 32 --head-batches 32
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import click
import torch

from synthgen.allocator import keep_freed_memory
from synthgen.sample.sampler import compute_mode

REAL_DOMAINS = "rgb,seg,sketch,landmark"


def synchronize() -> None:
    """Wait for queued GPU work, so a wall-clock timing covers it (no-op on CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


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


def world_files(tmp: Path, world: str, preset: str, names: list[str]) -> tuple[Path, Path]:
    """--world random: build_world; a folder: its generator.safetensors and anchors, as they are."""
    if world == "random":
        return build_world(tmp / "world", preset, names)
    folder = Path(world)
    gen_path = folder / "generator.safetensors"
    if not gen_path.is_file():
        raise click.BadParameter(f"{folder} holds no generator.safetensors: pass `random` or a world folder "
                                 "such as domains", param_hint="--world")
    anchors = folder / "anchors" if (folder / "anchors").is_dir() else folder  # build_world's layout, or domains/
    return gen_path, anchors


def parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def best_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """(best, all) wall seconds of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(max(1, repeats)):
        synchronize()
        started = time.perf_counter()
        fn()
        synchronize()
        runs.append(time.perf_counter() - started)
    return min(runs), runs


# -- (p) the machine --------------------------------------------------------------
def matmul_peak(size: int, repeats: int, device: str = "cpu", dtype: str = "float32") -> dict:
    """GFLOP/s of one size x size matmul (2 size^3 FLOPs) of `dtype` on `device`, best of
    `repeats` after warm-up."""
    from synthgen.sample.sampler import DTYPES

    a, b = (torch.randn(size, size, device=device, dtype=DTYPES[dtype]) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=DTYPES[dtype])
    best, runs = best_seconds(lambda: torch.matmul(a, b, out=out), repeats, warmup=2)
    flops = 2 * size ** 3
    return {"matmul_size": size, "dtype": dtype, "device": str(device), "torch_threads": torch.get_num_threads(),
            "runs_gflops": [round(flops / t / 1e9, 2) for t in runs], "peak_gflops": flops / best / 1e9}


# -- (a)-(c) ------------------------------------------------------------------------
def bench_compute(cfg, lanes, n: int) -> float:
    """(a): the blocks of n samples as `synthgen sample` computes them (its compute lanes, started)."""
    from synthgen.sample.plan import plan_shards

    started = time.perf_counter()
    for task in plan_shards(0, n, cfg.shard_size):
        for _ in lanes.run(task.indices, task.shard):
            pass
    return n / (time.perf_counter() - started)


def bench_compute_threads(cfg, prep, n: int) -> float:
    """(a1): the same blocks in this process on torch's threads (how `sample` computed before lanes)."""
    from synthgen.sample.plan import batches
    from synthgen.sample.sampler import compute_batch

    started = time.perf_counter()
    for indices in batches(range(n), cfg.batch_size):
        compute_batch(prep.generator, prep.heads, indices, cfg, shard=0)
    return n / (time.perf_counter() - started)


def bench_naive(prep, n: int, out: Path, seed: int, dtype: str = "float32") -> float:
    """What one would write first: per sample, per domain, a fresh generator pass and a PNG file."""
    from synthgen.anchors.codecs import decode, write_decoded

    started = time.perf_counter()
    with compute_mode(prep.device, dtype):
        for i in range(n):
            for head in prep.heads:
                latents = prep.generator.sample_latents([i], seed, 1.0)
                synthesis = prep.generator.synthesize(latents, taps=head_taps([head]))  # the tap this head reads
                write_decoded(head.spec, decode(head.spec, head.raw(synthesis)), 0, out / head.spec.name, f"{i:09d}")
    return n / (time.perf_counter() - started)


def bench_encode(cfg, prep, n: int, repeats: int) -> float:
    """(e) ms per sample of encoding every field of a sample on one thread: what each
    encode worker spends, beside the device loop, on every sample it writes."""
    from synthgen.sample.encode import EncodeOptions, encode_sample
    from synthgen.sample.sampler import compute_batch

    samples = compute_batch(prep.generator, prep.heads, list(range(n)), cfg, shard=0)
    specs, opts = [h.spec for h in prep.heads], EncodeOptions(cfg.image_format, cfg.quality, cfg.png_level)
    best, _ = best_seconds(lambda: [encode_sample(s, specs, opts) for s in samples], repeats)
    return 1e3 * best / n


def run_measured(argv: list[str], capture: bool = False, poll=None) -> tuple[str, float, int]:
    """Run a Python subprocess that imports the synthgen this process runs: (its stdout if
    `capture`, its peak RSS in MB from wait4, its exit status); `poll(pid)` is called every
    0.25 s while it runs."""
    import synthgen

    root = str(Path(synthgen.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            text=True, env=env)
    text = proc.stdout.read() if capture else ""
    while True:  # wait4 (not Popen.poll, which would reap the child and lose its rusage)
        pid, status, usage = os.wait4(proc.pid, 0 if poll is None else os.WNOHANG)
        if pid:
            return text, usage.ru_maxrss / 1024, status
        poll(proc.pid)
        time.sleep(0.25)


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc; [pid] elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += children.get(out[-1], [])
    return out


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of pid and its descendants in MB: memory shared by forked lanes
    counts once (summed RSS would count it in every process); 0 without /proc."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def peak_rss_mb(args: list[str]) -> tuple[float, float, float]:
    """(peak RSS of the main process in MB, peak PSS of it and its compute lanes in MB, seconds)
    of one `synthgen sample` subprocess."""
    started, pss_readings = time.perf_counter(), [0.0]
    _, mb, status = run_measured(["-m", "synthgen.cli", *args], poll=lambda pid: pss_readings.append(tree_pss_mb(pid)))
    if status != 0:
        raise click.ClickException(f"synthgen sample failed: {' '.join(args)}")
    return mb, max(pss_readings), time.perf_counter() - started


def run_throughput(cfg, prep, n_samples: int, n_naive: int, repeats: int, tmp: Path, results: dict) -> None:
    from synthgen.sample.sampler import compute_procs, open_lanes, sample_dataset

    results["compute_procs"] = procs = compute_procs(cfg, prep)
    click.echo(f"compute lanes: {procs} ({'one thread each' if prep.device.type == 'cpu' else prep.device})")
    bench_compute_threads(cfg, prep, min(cfg.batch_size, n_samples))  # warm-up
    a_runs, a1_runs, b_runs = [], [], []
    for r in range(repeats):
        with open_lanes(cfg, prep, procs) as lanes:  # started outside the timing: (b) pays for its own start
            bench_compute(cfg, lanes, min(cfg.batch_size, n_samples))
            a_runs.append(bench_compute(cfg, lanes, n_samples))
        if prep.device.type == "cpu":  # on a GPU the lanes are this process: (a1) would repeat (a)
            a1_runs.append(bench_compute_threads(cfg, prep, n_samples))
        run_cfg = dataclasses.replace(cfg, out_dir=tmp / f"out{r}")
        started = time.perf_counter()
        sample_dataset(run_cfg, "bench", prepared=prep)
        b_runs.append(n_samples / (time.perf_counter() - started))
        a1 = f", (a1) {a1_runs[-1]:.2f} on {torch.get_num_threads()} torch threads in this process" if a1_runs else ""
        click.echo(f"run {r + 1}: (a) {a_runs[-1]:.2f} samples/s{a1}, (b) {b_runs[-1]:.2f}")  # a timed-out run still shows these
    results["a_runs"], results["a1_runs"], results["b_runs"] = a_runs, a1_runs, b_runs
    results["a_compute_samples_per_s"] = max(a_runs)
    if a1_runs:
        results["a1_compute_threads_samples_per_s"] = max(a1_runs)
    results["b_end_to_end_samples_per_s"] = max(b_runs)
    results["c_naive_samples_per_s"] = bench_naive(prep, n_naive, tmp / "naive", cfg.seed, cfg.dtype)
    results["e_encode_ms_per_sample"] = bench_encode(cfg, prep, min(64, n_samples), repeats)
    results["b_over_a"] = results["b_end_to_end_samples_per_s"] / results["a_compute_samples_per_s"]
    results["b_over_c"] = results["b_end_to_end_samples_per_s"] / results["c_naive_samples_per_s"]
    click.echo(json.dumps(results, indent=1))


# -- (f) FLOPs and the roofline -----------------------------------------------------
def count_flops(fn: Callable[[], object]) -> tuple[int, object]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops(), out


def head_taps(heads) -> tuple[str, ...]:
    from synthgen.anchors.anchor import anchor_taps

    return anchor_taps([h.anchor for h in heads])


def profile_flops(cfg, prep) -> dict:
    """FLOPs per sample (matmuls and convolutions, as FlopCounterMode counts them) on one compute block."""
    from synthgen.sample.plan import COMPUTE_BLOCK

    gen, block = prep.generator, list(range(COMPUTE_BLOCK))
    with compute_mode(prep.device, cfg.dtype):
        mapping, latents = count_flops(lambda: gen.sample_latents(block, cfg.seed, cfg.truncation_psi))
        synth, synthesis = count_flops(lambda: gen.synthesize(latents, taps=head_taps(prep.heads)))
        heads = {h.spec.name: count_flops(lambda h=h: h.raw(synthesis))[0] / COMPUTE_BLOCK for h in prep.heads}
    out = {"block": COMPUTE_BLOCK, "mapping_per_sample": mapping / COMPUTE_BLOCK,
           "generator_per_sample": synth / COMPUTE_BLOCK, "heads_per_sample": heads}
    out["total_per_sample"] = out["mapping_per_sample"] + out["generator_per_sample"] + sum(heads.values())
    return out


def fmt_flops(flops: float) -> str:
    for scale, unit in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} FLOP"


def echo_roofline(flops: dict, peak: float | None, results: dict) -> None:
    click.echo(f"FLOPs per sample (block of {flops['block']}): mapping {fmt_flops(flops['mapping_per_sample'])}, "
               f"generator synthesize {fmt_flops(flops['generator_per_sample'])}, "
               + ", ".join(f"head {k} {fmt_flops(v)}" for k, v in flops["heads_per_sample"].items())
               + f"; total {fmt_flops(flops['total_per_sample'])}")
    if peak is None or not flops["total_per_sample"]:
        return
    roof = peak * 1e9 / flops["total_per_sample"]
    flops["roofline_samples_per_s"] = roof
    line = f"roofline {roof:.2f} samples/s ({peak:.1f} GFLOP/s / {fmt_flops(flops['total_per_sample'])})"
    for key, label in (("a_compute_samples_per_s", "(a) compute"),
                       ("a1_compute_threads_samples_per_s", "(a1) compute on threads"),
                       ("b_end_to_end_samples_per_s", "(b) end to end"),
                       ("c_naive_samples_per_s", "(c) naive")):
        if key in results:
            flops[key.split("_samples")[0] + "_over_roofline"] = results[key] / roof
            line += f"; {label} {results[key]:.2f} = {results[key] / roof:.3f} of it"
    click.echo(line)


# -- (t) the parts alone ------------------------------------------------------------
def time_parts(cfg, prep, g_batches: list[int], head_batches: list[int], repeats: int) -> dict:
    """Samples/s (best of repeats) of synthesize alone per batch, and of each head.raw alone per batch."""
    gen, taps = prep.generator, head_taps(prep.heads)
    out: dict = {"generator": {}, "heads": {h.spec.name: {} for h in prep.heads}}
    with compute_mode(prep.device, cfg.dtype):
        for b in sorted(set(g_batches) | set(head_batches)):
            latents = gen.sample_latents(list(range(b)), cfg.seed, cfg.truncation_psi)
            if b in g_batches:
                best, runs = best_seconds(lambda: gen.synthesize(latents, taps=taps), repeats)
                out["generator"][b] = {"samples_per_s": b / best, "best_s": best, "runs_s": runs}
                click.echo(f"G synthesize batch {b}: {b / best:.2f} samples/s "
                           f"(best of {len(runs)}, {best * 1e3:.1f} ms)")
            if b in head_batches:
                synthesis = gen.synthesize(latents, taps=taps)
                for h in prep.heads:
                    best, runs = best_seconds(lambda h=h: h.raw(synthesis), repeats)
                    out["heads"][h.spec.name][b] = {"samples_per_s": b / best, "best_s": best, "runs_s": runs}
                    click.echo(f"head {h.spec.name} batch {b}: {b / best:.2f} samples/s ({best * 1e3:.2f} ms)")
    g = out["generator"]
    if 1 in g and len(g) > 1:
        top = max(g)
        out[f"g_batch{top}_over_batch1"] = g[top]["samples_per_s"] / g[1]["samples_per_s"]
        click.echo(f"G batch {top} / batch 1: {out[f'g_batch{top}_over_batch1']:.2f}x samples/s")
    return out


# -- (r) real sizes, one subprocess per (preset, batch) ---------------------------------
def run_real_config(params: dict) -> None:
    """In a fresh process: load the world, compute `n` samples at batch `batch`, print one JSON line."""
    from synthgen.sample.plan import SampleConfig, batches
    from synthgen.sample.sampler import compute_batch, compute_block, prepare

    if params["threads"]:
        torch.set_num_threads(params["threads"])
    b, n = params["batch"], params["n"]
    cfg = SampleConfig(out_dir=Path(params["out"]), generator=params["generator"], anchors_dir=params["anchors"],
                       domains=tuple(params["domains"]), n_samples=n, shard_size=n, batch_size=b, workers=0,
                       device=params.get("device", "cpu"), dtype=params.get("dtype", "float32"), show_progress=False)
    prep = prepare(cfg, "bench")
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if params["sampler"]:  # synthgen sample's own path: aligned blocks of COMPUTE_BLOCK whatever the batch
        steps = list(batches(range(n), b))
        step = lambda idx: compute_batch(prep.generator, prep.heads, idx, cfg, shard=0)  # noqa: E731
    else:  # one pass of exactly `batch` samples
        steps = [list(range(s, s + b)) for s in range(0, n, b)]
        step = lambda idx: compute_block(prep.generator, prep.heads, idx, cfg, shard=0)  # noqa: E731
    seconds = []
    for idx in steps:
        synchronize()
        started = time.perf_counter()
        step(idx)  # returns decoded host arrays: the GPU's work is done
        seconds.append(time.perf_counter() - started)
    out = {"samples": n, "steps_s": seconds, "samples_per_s": n / sum(seconds), "rss_after_load_mb": loaded,
           "resolution": int(prep.generator.resolution), "torch_threads": torch.get_num_threads(),
           "device": str(prep.device), "dtype": cfg.dtype}
    if prep.device.type == "cuda":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated(prep.device) / 2 ** 20
    if len(seconds) > 1:
        out["samples_per_s_after_first"] = (n - len(steps[0])) / sum(seconds[1:])
    print(json.dumps(out), flush=True)


def run_child(params: dict, malloc: str) -> tuple[dict, float, int]:
    """(the child's JSON, its peak RSS in MB from wait4, exit status)."""
    text, mb, status = run_measured([str(Path(__file__).resolve()), "--malloc", malloc,
                                     "--real-child", json.dumps(params)], capture=True)
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines and status == 0 else {}), mb, status


def run_real_size(tmp: Path, presets: list[str], batch_list: list[int], n_per: int, domains: str, threads: int,
                  sampler: bool, malloc: str, device: str = "cpu", dtype: str = "float32") -> dict:
    from synthgen.generators.presets import PRESETS

    names = [d for d in domains.split(",") if d]
    out: dict = {"domains": names, "path": "sampler compute_batch" if sampler else "one pass per batch",
                 "device": device, "dtype": dtype, "presets": {}}
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise click.BadParameter(f"unknown preset(s) {', '.join(unknown)}; choose from {sorted(PRESETS)}",
                                 param_hint="--real-presets")
    for preset in presets:
        gen_path, anchors = build_world(tmp / f"real_{preset}", preset, names)
        rows = out["presets"][preset] = {}
        for b in batch_list:
            n = math.ceil((n_per or 2 * b) / b) * b  # whole batches
            params = {"generator": str(gen_path), "anchors": str(anchors), "domains": names, "batch": b, "n": n,
                      "threads": threads, "sampler": sampler, "out": str(tmp / f"real_out_{preset}_{b}"),
                      "device": device, "dtype": dtype}
            started = time.perf_counter()
            child, mb, status = run_child(params, malloc)
            row = {"status": status, "peak_rss_mb": round(mb, 1), "wall_s": round(time.perf_counter() - started, 1),
                   **child}
            rows[b] = row
            if status != 0:
                click.echo(f"real size {preset} batch {b}: FAILED (status {status}, peak RSS {mb:.0f} MB)")
                continue
            extra = f", {row['samples_per_s_after_first']:.3f} after the first step" \
                if "samples_per_s_after_first" in row else ""
            gpu = f", GPU peak {row['gpu_peak_mb']:.0f} MB" if "gpu_peak_mb" in row else ""
            click.echo(f"real size {preset} batch {b}: {row['samples_per_s']:.3f} samples/s compute only "
                       f"({n} samples{extra}), peak RSS {mb:.0f} MB ({row['rss_after_load_mb']:.0f} MB after "
                       f"loading){gpu}, {row['wall_s']:.1f}s")
        ok = {b: r for b, r in rows.items() if r.get("samples_per_s")}
        if 1 in ok and len(ok) > 1:
            top = max(ok)
            rows[f"batch{top}_over_batch1"] = ok[top]["samples_per_s"] / ok[1]["samples_per_s"]
            click.echo(f"real size {preset}: batch {top} / batch 1 = {rows[f'batch{top}_over_batch1']:.2f}x samples/s")
    return out


@click.command()
@click.option("--preset", default="toyfaces64", show_default=True,
              help="StyleGAN2 preset of the generator (--world random only).")
@click.option("--world", default="random", show_default=True,
              help="`random`: a random-weight generator of --preset and untrained anchors; or a folder holding "
                   "generator.safetensors and <domain>.safetensors anchors (e.g. domains, the shipped world), "
                   "used as is (--preset ignored).")
@click.option("--domains", default="rgb,seg,sketch", show_default=True, help="Domains to write.")
@click.option("--n", "n_samples", type=int, default=512, show_default=True,
              help="Samples for (a) and (b); 0 skips (a)-(c), the FLOP count and the part timings.")
@click.option("--n-naive", type=int, default=64, show_default=True, help="Samples for the naive baseline (c).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Batch size of (a) and (b).")
@click.option("--workers", type=int, default=2, show_default=True, help="Encode threads of (b).")
@click.option("--png-level", type=int, default=1, show_default=True, help="PNG zlib level of (b).")
@click.option("--threads", type=int, default=0, show_default=True, help="torch threads (0: torch's default).")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="(a) and (b) run alternately this many times; the best of each is kept (shared CPUs are noisy). "
                   "Also the repeats of each part timing.")
@click.option("--probe-size", type=int, default=2048, show_default=True, help="Side of the fp32 matmul probe.")
@click.option("--probe-repeats", type=int, default=5, show_default=True,
              help="Timed matmuls of the probe (after 2 warm-ups), the best is the roofline peak; 0 skips the probe.")
@click.option("--g-batches", default="1,8,32", show_default=True,
              help="Batches at which the generator alone (synthesize) is timed; empty skips.")
@click.option("--head-batches", default="8,32", show_default=True,
              help="Batches at which each head alone (head.raw) is timed; empty skips.")
@click.option("--rss-n", default="", show_default=True, help="Comma-separated --n values for (d), e.g. 10000,100000.")
@click.option("--rss-preset", default="tiny", show_default=True, help="Generator preset for (d).")
@click.option("--rss-domains", default="rgb", show_default=True, help="Domains for (d).")
@click.option("--real-size", is_flag=True,
              help="(r): compute-only samples/s and peak RSS (and GPU memory with --device cuda) of --real-presets "
                   "(random weights, default tap, anchors of --real-domains) at each of --real-batches, each in a "
                   "fresh subprocess.")
@click.option("--real-presets", default="ffhq256,ffhq1024", show_default=True,
              help="Presets of (r); any StyleGAN2 preset name (tiny for a quick check).")
@click.option("--real-batches", default="1,8,32", show_default=True, help="Batches of (r).")
@click.option("--real-n", type=int, default=0, show_default=True,
              help="Samples per (r) configuration; 0: 2 x batch. Rounded up to whole batches.")
@click.option("--real-domains", default=REAL_DOMAINS, show_default=True, help="Domains of (r).")
@click.option("--real-sampler", is_flag=True,
              help="(r) through the sampler's compute_batch (aligned blocks of 8, so batch 1 computes 8) "
                   "instead of one generator pass of exactly the batch.")
@click.option("--malloc", type=click.Choice(["keep", "glibc"]), default="keep", show_default=True,
              help="keep: freed large blocks stay in the heap, as every synthgen command sets it "
                   "(synthgen/allocator.py); glibc: the C library's defaults, to measure what that costs.")
@click.option("--real-child", default=None, hidden=True, help="Internal: one (r) configuration, as JSON.")
@click.option("--device", default="cpu", show_default=True,
              help="Where every part runs: cpu, cuda or cuda:N (the probe then multiplies on that GPU).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Compute dtype of generator and heads (autocast, as `synthgen sample --dtype`) and of the probe.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the numbers here.")
def main(preset, world, domains, n_samples, n_naive, batch_size, workers, png_level, threads, repeats, probe_size,
         probe_repeats, g_batches, head_batches, rss_n, rss_preset, rss_domains, real_size, real_presets, real_batches,
         real_n, real_domains, real_sampler, malloc, real_child, device, dtype, json_out) -> None:
    """Measure compute-only, end-to-end and naive sampling throughput, FLOPs against a matmul roofline,
    the generator and heads alone, and peak RSS."""
    if malloc == "keep":
        keep_freed_memory()
    if real_child is not None:
        return run_real_config(json.loads(real_child))
    if threads:
        torch.set_num_threads(threads)
    names = [d for d in domains.split(",") if d]
    results: dict = {"preset": preset if world == "random" else None, "world": world, "domains": names,
                     "batch_size": batch_size, "workers": workers, "device": device, "dtype": dtype,
                     "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    peak = None
    if probe_repeats:
        results["probe"] = probe = matmul_peak(probe_size, probe_repeats, device, dtype)
        peak = probe["peak_gflops"]
        click.echo(f"roofline peak: {peak:.1f} GFLOP/s ({probe_size}x{probe_size} {dtype} matmul on {device}, best of "
                   f"{probe_repeats}, {probe['torch_threads']} torch threads; runs {probe['runs_gflops']})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if n_samples:
            from synthgen.sample.plan import SampleConfig
            from synthgen.sample.sampler import prepare

            gen_path, anchors = world_files(tmp, world, preset, names)
            cfg = SampleConfig(out_dir=tmp / "out", generator=str(gen_path), anchors_dir=str(anchors),
                               domains=tuple(names), n_samples=n_samples, shard_size=min(1000, n_samples),
                               batch_size=batch_size, workers=workers, png_level=png_level, device=device,
                               dtype=dtype, show_progress=False)
            prep = prepare(cfg, "bench")
            results["generator"] = {"path": str(gen_path), "anchors": str(anchors), **prep.generator.describe()}
            run_throughput(cfg, prep, n_samples, n_naive, repeats, tmp, results)
            results["flops"] = profile_flops(cfg, prep)
            echo_roofline(results["flops"], peak, results)
            results["timings"] = timings = time_parts(cfg, prep, parse_ints(g_batches), parse_ints(head_batches),
                                                      repeats)
            g_alone = timings["generator"].get(batch_size)
            if g_alone:  # what the GPU target compares: the pipeline against G's own pace
                results["b_over_generator_only"] = results["b_end_to_end_samples_per_s"] / g_alone["samples_per_s"]
                click.echo(f"(b) end to end / generator only at batch {batch_size}: "
                           f"{results['b_over_generator_only']:.2f}")
            del prep
        if rss_n:
            rss_names = [d for d in rss_domains.split(",") if d]
            gen_rss, anchors_rss = build_world(tmp / "rss_world", rss_preset, rss_names)
            results["rss"] = {}
            for n in [int(v) for v in rss_n.split(",")]:
                mb, pss, seconds = peak_rss_mb([
                    "sample", "--generator", str(gen_rss), "--anchors", str(anchors_rss), "--domains", rss_domains,
                    "--num-samples", str(n), "--out", str(tmp / f"rss{n}"), "--device", device, "--dtype", dtype, "--no-progress",
                    "--batch-size", str(batch_size), "--workers", str(workers),
                ])
                results["rss"][n] = {"peak_rss_mb": round(mb, 1), "peak_tree_pss_mb": round(pss, 1),
                                     "seconds": round(seconds, 1)}
                click.echo(f"--n {n}: peak RSS {mb:.0f} MB (main process), peak PSS with the compute lanes "
                           f"{pss:.0f} MB, in {seconds:.0f}s")
        if real_size:
            presets = [p for p in real_presets.split(",") if p]
            results["real_size"] = run_real_size(tmp, presets, parse_ints(real_batches), real_n, real_domains,
                                                 threads, real_sampler, malloc, device, dtype)
    if json_out:
        json_out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
