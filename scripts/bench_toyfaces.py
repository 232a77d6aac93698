"""Throughput of the ToyFaces renderer: samples/s at 64 and 256 px, all four domains.

    .venv/bin/python scripts/bench_toyfaces.py [--n 2000] [--workers 2]

Prints wall-clock samples/s of one process and of a `render_pool` with --workers
processes, and the CPU seconds per sample of the single process (less sensitive to
other load on the machine).
"""
from __future__ import annotations

import argparse
import time

from synthgen.toyfaces import render, render_pool, seed_to_z


def bench(size: int, n: int, workers: int) -> None:
    zs = seed_to_z(0, range(n))
    render(zs[0], size)  # warm the per-size caches
    wall, cpu = time.perf_counter(), time.process_time()
    for z in zs:
        render(z, size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{size:>4} px  1 process : {n / wall:8.1f} samples/s  ({1000 * cpu / n:.2f} ms CPU/sample)")
    start = time.perf_counter()
    count = sum(len(chunk["rgb"]) for chunk in render_pool(zs, size, workers=workers, chunk_size=64))
    wall = time.perf_counter() - start
    print(f"{size:>4} px  {workers} processes: {count / wall:8.1f} samples/s  (pool start-up included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="samples at 64 px (256 px uses n/10)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the pool run")
    args = parser.parse_args()
    bench(64, args.n, args.workers)
    bench(256, max(args.n // 10, 20), args.workers)


if __name__ == "__main__":
    main()
