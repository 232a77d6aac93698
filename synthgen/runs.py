"""A training run's folder (`--run-dir`): its settings, its checkpoint and its log of steps.

`synthgen fit` and `synthgen toyfaces train-generator` each keep one:

- `config.json`: the settings of the run, written when it starts;
- `checkpoint.pt`: the training state, tensors and numbers only (read with
  `weights_only=True`), written whole and renamed into place (atomic_files), so a kill
  mid-write leaves the previous checkpoint;
- `stats.jsonl`: one JSON record per step, each with its `step`, appended line-buffered so
  the file can be watched during a run.

Running the same command again resumes from the checkpoint. The records logged after it
are dropped first (`truncate_stats`), so every step is logged once. A run's config
dataclass marks the settings a resumed run may change (`free_on_resume`); the others must
equal what config.json holds (`check_resume`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import torch

from synthgen.atomic_files import atomic_write
from synthgen.errors import UserError

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
STATS = "stats.jsonl"
_FREE = "synthgen.free_on_resume"


class ResumeError(ValueError, UserError):
    """The run folder holds a run with other settings; the message names them."""


def free_on_resume(default: Any) -> Any:
    """A field of a run's config dataclass that a resumed run may change (its length, how it
    logs, where it runs): `steps: int = free_on_resume(3000)`."""
    return dataclasses.field(default=default, metadata={_FREE: True})


def pinned_fields(config_class: type) -> tuple[str, ...]:
    """The fields of a run's config dataclass that a resumed run must share with the run it continues."""
    return tuple(f.name for f in dataclasses.fields(config_class) if not f.metadata.get(_FREE))


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- config.json -------------------------------------------------------------
    def read_config(self) -> dict | None:
        path = self.path / CONFIG
        return json.loads(path.read_text()) if path.is_file() else None

    def write_config(self, settings: dict) -> None:
        (self.path / CONFIG).write_text(json.dumps(settings, indent=1) + "\n")

    def check_resume(self, settings: dict, keys: Iterable[str], upgrade: Callable[[dict], None] | None = None) -> None:
        """ResumeError naming the `keys` whose values in config.json differ from `settings`.

        A folder without config.json passes. `upgrade(old)` fills in, in place, what the
        config.json of a run from before a setting existed lacks: the value such runs had.
        """
        old = self.read_config()
        if old is None:
            return
        if upgrade is not None:
            upgrade(old)
        new = json.loads(json.dumps(settings))  # as config.json holds them (tuples as lists)
        changed = [k for k in keys if old.get(k) != new.get(k)]
        if changed:
            raise ResumeError(f"run folder {self.path} holds a run with different {', '.join(changed)}; "
                              "rerun with the same settings to resume, or pass a new --run-dir")

    # -- checkpoint.pt -----------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def read_checkpoint(self, map_location: str | torch.device = "cpu") -> dict | None:
        if not self.has_checkpoint():
            return None
        return torch.load(self.path / CHECKPOINT, map_location=map_location, weights_only=True)

    def write_checkpoint(self, state: dict) -> None:
        # Saved through the open file, torch names the archive inside it "archive", not after
        # the temporary file: the bytes do not depend on the host or process that wrote them.
        with atomic_write(self.path / CHECKPOINT) as tmp, open(tmp, "wb") as f:
            torch.save(state, f)

    # -- stats.jsonl -------------------------------------------------------------
    def open_stats(self) -> TextIO:
        """stats.jsonl for appending, line-buffered: each record reaches the file when written."""
        return open(self.path / STATS, "a", buffering=1)

    def read_stats(self) -> list[dict]:
        return [json.loads(line) for line in self._stat_lines()]

    def truncate_stats(self, step: int) -> None:
        """Drop the records past `step` (the checkpoint's): the resumed run logs them again."""
        path = self.path / STATS
        if path.is_file():
            kept = [line for line in self._stat_lines() if json.loads(line)["step"] <= step]
            path.write_text("".join(line + "\n" for line in kept))

    def _stat_lines(self) -> list[str]:
        path = self.path / STATS
        return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
