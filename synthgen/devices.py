"""Where a job runs: the --device choice shared by every command that trains or translates."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device that is not available here; the message says what to pass instead."""


def resolve_device(name: str) -> "torch.device":
    """'auto' is CUDA when one is visible, else the CPU; 'cuda' without one is an error, not a silent CPU run."""
    import torch  # here, so that CLI modules can import DEVICES without loading torch

    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}: choose from {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is visible here; use --device cpu (or auto)")
    return torch.device(name)
