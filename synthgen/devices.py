"""Where a job runs: the --device choice shared by every command that trains or translates,
and the CPU cores a process may use."""
from __future__ import annotations

import os

from synthgen.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


def available_cpus() -> int:
    """Cores this process may run on: its CPU affinity (what a container or `taskset` grants),
    not the machine's count, which `os.cpu_count()` reports."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


class DeviceError(ValueError, UserError):
    """A device that is not available here; the message says what to pass instead."""


def resolve_device(name) -> "torch.device":
    """'auto' is CUDA when one is visible, else the CPU; 'cuda' (or 'cuda:N', or a torch.device)
    without CUDA is an error, not a silent CPU run."""
    import torch  # here, so that CLI modules can import DEVICES without loading torch

    if isinstance(name, torch.device):
        name = str(name)
    kind = str(name).split(":")[0]
    if kind not in DEVICES or (":" in str(name) and kind != "cuda"):
        raise DeviceError(f"unknown device {name!r}: choose from {', '.join(DEVICES)} (or cuda:N)")
    if kind == "auto":
        name = kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA device is visible here; use --device cpu (or auto)")
    try:
        device = torch.device(name)
    except RuntimeError:  # e.g. "cuda:x"
        raise DeviceError(f"unknown device {name!r}: choose from {', '.join(DEVICES)} (or cuda:N)") from None
    if device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DeviceError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return device
