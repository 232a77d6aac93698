"""Where a job runs: the --device choice shared by every command that trains or translates."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
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
    return torch.device(name)
