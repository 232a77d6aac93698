"""dataset.json, the card of a dataset folder: what made it and how to read it.

`config` holds everything that decides a sample's bytes (generator and anchor
fingerprints, domains, seed, truncation, style mixing, shard size, formats, dtype).
A later run into the same folder must present the same `config` (it may ask for more
samples or a different batch size or worker count): otherwise it is refused, so one
folder never mixes two datasets. `ranges` are the sample index ranges written so far;
`commands` every command line that wrote to the folder.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from synthgen import __version__
from synthgen.atomic_files import atomic_write
from synthgen.dataset.layout import ShardTask, shard_tasks
from synthgen.errors import UserError

CARD_NAME = "dataset.json"
CARD_FORMAT = "synthgen-dataset"
CARD_VERSION = 1


class DatasetMismatchError(UserError):
    """The output folder holds a dataset made with a different config."""


def spec_summary(spec: Any, fields: list[str]) -> dict[str, Any]:
    """The parts of a domain spec a reader of the shards needs."""
    out: dict[str, Any] = {"kind": spec.kind, "fields": fields}
    if spec.kind == "image":
        out["channels"] = int(spec.channels)
    elif spec.kind == "mask":
        out["class_names"] = list(spec.class_names)
        out["palette"] = [list(map(int, c)) for c in spec.palette]
    else:
        out["num_points"] = int(spec.num_points)
    return out


def build_card(
    *,
    config: dict[str, Any],
    start_index: int,
    n_samples: int,
    command: str,
) -> dict[str, Any]:
    return {
        "format": CARD_FORMAT,
        "card_version": CARD_VERSION,
        "synthgen_version": __version__,
        "config": config,
        "ranges": [[start_index, start_index + n_samples]],
        "n_samples": n_samples,
        "command": command,
        "commands": [command],
    }


class CardError(UserError):
    """dataset.json exists but cannot be read: the folder's record of what made it is damaged."""


def read_card(out_dir: Path) -> dict[str, Any] | None:
    """The card of a folder; None where it has none (a new output folder, a folder of
    shards from elsewhere): readers that need a dataset refuse it (reader.open_dataset).
    CardError where dataset.json is there but damaged (not JSON, no config or ranges)."""
    path = Path(out_dir) / CARD_NAME
    if not path.exists():
        return None
    try:
        card = json.loads(path.read_text())
        problem = None if isinstance(card, dict) else "not a JSON object"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if problem is None:
        config, ranges = card.get("config"), card.get("ranges")
        if not (isinstance(config, dict) and isinstance(config.get("shard_size"), int) and isinstance(ranges, list)):
            problem = "no config with a shard_size, or no ranges"
    if problem is not None:
        raise CardError(f"{path} is not a readable dataset card ({problem}): restore it from a copy, "
                        "or start the dataset again with `synthgen sample --overwrite`")
    return card


def expected_tasks(card: dict) -> list[ShardTask]:
    """Every shard the card's index ranges cover, in shard order."""
    size = card["config"]["shard_size"]
    tasks = [t for start, stop in card["ranges"] for t in shard_tasks(start, stop, size)]
    return sorted(tasks, key=lambda t: t.shard)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def check_compatible(existing: dict[str, Any] | None, new: dict[str, Any], out_dir: Path) -> None:
    if existing is None:
        return
    diff = config_differences(existing.get("config", {}), new["config"])
    if diff:
        raise DatasetMismatchError(
            f"{out_dir} holds a dataset made with a different config ({', '.join(diff)} differ): "
            "choose another --out, or pass --overwrite to delete it"
        )


def merge_ranges(ranges: Sequence[Sequence[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, stop in sorted(map(tuple, ranges)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return merged


def extend_card(existing: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The card after this run: the union of index ranges and the history of commands."""
    if existing is None:
        return new
    card = dict(new)
    card["ranges"] = merge_ranges(existing.get("ranges", []) + new["ranges"])
    card["n_samples"] = sum(stop - start for start, stop in card["ranges"])
    commands = list(existing.get("commands", []))
    if not commands or commands[-1] != new["command"]:
        commands.append(new["command"])
    card["commands"] = commands
    return card


def write_card(out_dir: Path, card: dict[str, Any]) -> None:
    path = Path(out_dir) / CARD_NAME
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
