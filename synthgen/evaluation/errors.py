"""Errors a user of the benchmarks can cause; the CLI shows their one-line message.

Every one is an EvaluationError (a ValueError and a synthgen.errors.UserError, like the
project's other input errors), so `synthgen eval` shows these as one line and lets
anything else (a bug) show its traceback.
Kept free of torch so that `synthgen eval --help` stays fast.
"""

from synthgen.errors import UserError


class EvaluationError(ValueError, UserError):
    """Inputs or options an evaluation cannot use; the message names the file or option and the fix."""


class PairsError(EvaluationError):
    """A pairs folder or shard set that cannot be read as (rgb, seg) pairs."""


class SegmenterFileError(EvaluationError):
    """A segmenter file that is missing or is not a synthgen segmenter."""


class FeatureSpaceError(EvaluationError):
    """A backbone name or weights file that cannot give features."""


class TranslationEvalError(EvaluationError):
    """Pairs, anchors or options that cannot be evaluated; the message says which and why."""


class LabelAccuracyError(EvaluationError):
    """A dataset whose labels cannot be checked against the renderer's ground truth."""


class ConsistencyError(EvaluationError):
    """A dataset or judge that cannot be compared: missing domains, different classes, no file."""
