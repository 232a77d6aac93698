"""Frozen backbones behind one interface (base.FrozenGenerator) and their checkpoint readers."""
from synthgen.generators.base import FrozenGenerator, Synthesis
from synthgen.generators.errors import CheckpointError
from synthgen.generators.io import convert, detect_format, frozen_generator, load_generator
from synthgen.generators.native import save_generator

__all__ = [
    "CheckpointError", "FrozenGenerator", "Synthesis", "convert", "detect_format",
    "load_generator", "save_generator",
]
