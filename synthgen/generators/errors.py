"""The one exception a user's checkpoint can cause."""
from __future__ import annotations

from synthgen.errors import UserError


class CheckpointError(ValueError, UserError):
    """A checkpoint that cannot be read: the message names the file and what is wrong."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
