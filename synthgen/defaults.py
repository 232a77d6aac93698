"""A dataclass field's default, so that a CLI option states it once: where the config is defined."""
from __future__ import annotations

import dataclasses
from typing import Any


def default_of(config_class: type, name: str) -> Any:
    """The default of field `name` of dataclass `config_class` (calling its default_factory)."""
    field = config_class.__dataclass_fields__[name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    if field.default is dataclasses.MISSING:
        raise KeyError(f"{config_class.__name__}.{name} has no default")
    return field.default
