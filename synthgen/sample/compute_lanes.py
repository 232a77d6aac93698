"""Where `synthgen sample` computes its blocks on a CPU: each block on one thread, blocks side by
side in separate processes ("lanes").

Why: a float kernel may round differently when it is split over another number of threads (the
shipped world: 27 of 2,000 files differed between 1 and 2 threads), so with every block on one
thread a sample's bytes no longer depend on the machine's core count, `OMP_NUM_THREADS` or the
number of lanes: one lane in this process or eight give the same shards (tested). And a block's
kernels are small (the heads' per-pixel products over tiles of 2,048 pixels, the generator's
convolutions at 4-64 px): split over threads they scale unevenly (2 AMD EPYC cores: 1.3-1.8x one
thread, run to run), while lanes computing different blocks scale with the cores (2.0x).
Whole `sample` processes on those 2 cores ran as fast as with threads (docs/sampling.md,
"Benchmark").

On a GPU the blocks stay in this process on the device, as before.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from synthgen.errors import UserError
from synthgen.sample.encode import SampleArrays
from synthgen.sample.plan import COMPUTE_BLOCK, SampleConfig, blocks, step_size

# What one lane holds besides the imports (about 0.7 GB) and the models: a block's maps, which
# grow with the side (measured peak RSS: 1.1 GB per process at 64 px, 9.3 GB at 1024 px).
LANE_BASE_BYTES = 1_200_000_000
LANE_BYTES_PER_PIXEL = COMPUTE_BLOCK * 1024
# Linux forks the lanes: they start in a fraction of a second with the loaded models (shared
# until written), where a spawned lane imports torch and loads the world again (about 3.5 s
# here). Forking is safe because the lanes start before this process starts its encode and
# writer threads, and they run torch on one thread (no OpenMP team), as DataLoader workers
# do. macOS and Windows spawn (their system libraries are not fork-safe).
LANE_START = "fork" if sys.platform.startswith("linux") else "spawn"


class ComputeLaneError(UserError):
    """A lane process died or could not load the world; the message says what to do."""


def auto_lanes(resolution: int, threads: int | None = None, available: int | None = None) -> int:
    """Lanes for --compute-procs auto: one per torch thread this process would use (its cores,
    or OMP_NUM_THREADS where set: torchrun sets 1 for each of its processes), as many as the
    available memory holds."""
    lanes = max(1, torch.get_num_threads() if threads is None else threads)
    available = available_memory() if available is None else available
    if available:
        per_lane = LANE_BASE_BYTES + LANE_BYTES_PER_PIXEL * resolution * resolution
        lanes = min(lanes, max(1, available // per_lane))
    return lanes


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes; None where there is none (macOS, Windows)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to n for the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ComputeLanes:
    """Computes a shard's blocks in order: in this process (on a GPU, or one CPU lane) or in
    `procs` lane processes, with up to `depth` blocks in flight.

    compute(generator, heads, block, cfg, shard) -> the block's samples (sampler.compute_block);
    load(cfg) -> (generator, heads, generator fingerprint) as the main process loaded them
    (sampler.load_world), which a spawned lane calls; both module-level functions, so a spawned lane imports them by name.
    """

    def __init__(self, cfg: SampleConfig, prep: Any, procs: int, compute: Callable, load: Callable):
        self.cfg = cfg
        self.prep = prep
        self.compute = compute
        self.load = load
        self.on_cpu = prep.device.type == "cpu"
        self.procs = procs if self.on_cpu else 1
        self.depth = max(2 * self.procs, step_size(cfg.batch_size) // COMPUTE_BLOCK)
        self._executor: ProcessPoolExecutor | None = None
        self._threads = contextlib.ExitStack()

    def __enter__(self) -> "ComputeLanes":
        if self.on_cpu:
            self._threads.enter_context(torch_threads(1))
        if self.procs > 1:
            expected = {}
            if LANE_START == "fork":  # the lanes inherit the loaded models: nothing to check
                _lane.update(generator=self.prep.generator, heads=self.prep.heads)
            else:  # a spawned lane loads the files again and checks they are the ones loaded here
                expected = {"generator": self.prep.card["config"]["generator_fingerprint"],
                            **{h.spec.name: h.fingerprint for h in self.prep.heads}}
            try:
                self._executor = ProcessPoolExecutor(
                    self.procs, mp_context=get_context(LANE_START), initializer=_start_lane,
                    initargs=(self.cfg, self.compute, self.load, expected, os.getpid()))
                self._executor.submit(_lane_ready).result()  # a forking pool starts every lane here, on first use
            except BrokenProcessPool:
                self.__exit__()
                raise self._died("while starting") from None
            except BaseException:
                self.__exit__()
                raise
            finally:
                _lane.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._threads.close()

    def run(self, indices: Sequence[int], shard: int) -> Iterator[list[SampleArrays]]:
        """The samples of `indices` (one shard's), block by block in index order."""
        wanted = set(int(i) for i in indices)
        if self._executor is None:
            for block in blocks(indices):
                yield _keep(self.compute(self.prep.generator, self.prep.heads, block, self.cfg, shard), wanted)
            return
        pending: deque[Future] = deque()
        try:
            for block in blocks(indices):
                pending.append(self._executor.submit(_lane_block, block, shard))
                if len(pending) >= self.depth:
                    yield _keep(pending.popleft().result(), wanted)
            while pending:
                yield _keep(pending.popleft().result(), wanted)
        except BrokenProcessPool:
            raise self._died(f"while computing shard {shard}") from None

    def _died(self, when: str) -> ComputeLaneError:
        return ComputeLaneError(
            f"a compute process died {when} (the system stops a process that runs out of memory): rerun the same "
            f"command to resume (finished shards are kept), with --compute-procs lower than {self.procs}")


def _keep(samples: list[SampleArrays], wanted: set[int]) -> list[SampleArrays]:
    return [s for s in samples if s.index in wanted]


# -- inside a lane process ----------------------------------------------------------
_lane: dict = {}


def _start_lane(cfg: SampleConfig, compute: Callable, load: Callable, expected: dict, parent: int) -> None:
    """One thread; the main process's models (forked) or the same files loaded again (spawned).
    An error is kept and raised by the first block, so the main process reports its one line."""
    from synthgen.allocator import keep_freed_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it stops the lanes
    _die_with_parent(parent)
    keep_freed_memory()
    torch.set_num_threads(1)
    _lane.update(cfg=cfg, compute=compute)
    if "generator" in _lane:  # forked: already loaded and checked
        return
    try:
        generator, heads, fingerprint = load(cfg)
        found = {"generator": fingerprint, **{h.spec.name: h.fingerprint for h in heads}}
        changed = [name for name in expected if found.get(name) != expected[name]]
        if changed:
            raise ComputeLaneError(f"the {', '.join(changed)} file changed on disk after sampling started: "
                                   "rerun the command (finished shards are kept)")
        _lane.update(generator=generator, heads=heads)
    except Exception as exc:  # noqa: BLE001 - carried to the main process by the first block
        _lane["error"] = exc


def _die_with_parent(parent: int) -> None:
    """A lane exits when the main process does, even by `kill -9`: a forked lane holds both ends
    of its task pipe, so it would never see the pipe close and would wait forever (Linux:
    PR_SET_PDEATHSIG; elsewhere the spawned lanes see their pipe close)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the main process died before the call: nobody will ask for blocks
        os._exit(1)


def _lane_ready() -> None:
    if "error" in _lane:
        raise _lane["error"]


def _lane_block(block: list[int], shard: int) -> list[SampleArrays]:
    _lane_ready()
    return _lane["compute"](_lane["generator"], _lane["heads"], block, _lane["cfg"], shard)


__all__ = ["ComputeLaneError", "ComputeLanes", "auto_lanes", "available_memory", "torch_threads"]
