"""JSON round trip of the network config dataclasses stored in anchor metadata."""
from __future__ import annotations

from dataclasses import asdict
from typing import ClassVar


class JsonConfig:
    """Mixin for config dataclasses: tuple fields become JSON lists and come back as tuples."""

    tuple_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in self.tuple_fields:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict):
        # Fields missing from an older file take the dataclass defaults.
        return cls(**{k: tuple(v) if k in cls.tuple_fields else v for k, v in d.items()})
