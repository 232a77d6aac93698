"""Loading a checkpoint's tensors into a module, with every mismatch told in one line.

Shared by the readers of every format (native.py, readers/, biggan/frozen.py); it imports
none of them.
"""
from __future__ import annotations

from pathlib import Path

import torch

from synthgen.generators.errors import CheckpointError


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """load_state_dict, with missing/unexpected/mis-shaped keys reported in one line."""
    own = module.state_dict()
    check_keys(own, state, path)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def check_keys(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path) -> None:
    """CheckpointError naming missing, unexpected and mis-shaped keys (in the file's own names)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if wrong:
        k = wrong[0]
        problems.append(f"shape mismatch for {len(wrong)} keys, e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    if problems:
        raise CheckpointError(path, "; ".join(problems))


def _few(keys: list[str], n: int = 3) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
