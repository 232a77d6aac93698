"""Errors a user of the benchmarks can cause; the CLI shows their one-line message.

Kept free of torch so that `synthgen eval --help` stays fast.
"""


class PairsError(Exception):
    """A pairs folder or shard set that cannot be read as (rgb, seg) pairs."""


class SegmenterFileError(Exception):
    """A segmenter file that is missing or is not a synthgen segmenter."""


class FeatureSpaceError(Exception):
    """A backbone name or weights file that cannot give features."""


class TranslationEvalError(Exception):
    """Pairs, anchors or options that cannot be evaluated; the message says which and why."""


class LabelAccuracyError(Exception):
    """A dataset whose labels cannot be checked against the renderer's ground truth."""


class ConsistencyError(Exception):
    """A dataset or judge that cannot be compared: missing domains, different classes, no file."""
