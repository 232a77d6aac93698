"""Telling a damaged safetensors file from a foreign one, without loading any tensor.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (each
tensor's dtype, shape and `data_offsets` into the data section) and the data section.
A file cut short by an interrupted copy or download keeps its first bytes, so it still
looks like safetensors; only the sizes show that its end is missing.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path



def damage(path: str | Path) -> str | None:
    """What is structurally wrong with the safetensors file `path`, or None when its header
    and its sizes agree (the file may still be a foreign safetensors file)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            return f"its header claims {n} bytes but only {size - 8} bytes follow"
        raw = f.read(n)
    try:
        header = json.loads(raw)
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "its header is not valid safetensors JSON"
    data = size - 8 - n
    if ends and max(ends) > data:
        return f"its tensors need {max(ends)} data bytes but the file holds {data}"
    return None


def damaged(problem: str) -> str:
    """The one-line message for a file `damage` found fault with."""
    return f"truncated or corrupt safetensors file ({problem}): copy or download it again"


__all__ = ["damage", "damaged"]
