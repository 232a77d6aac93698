"""The base of the errors a user's input or options can cause.

Each such class derives from `UserError` (keeping its other bases: most are also
`ValueError`s) and carries a one-line message that names the file or option and the fix.
The CLIs show a UserError as that line (exit 1); any other exception is a bug and keeps
its traceback. Free of imports, so that every module (and `--help`) can use it cheaply.
"""
from __future__ import annotations


class UserError(Exception):
    """An input or option that cannot be used; the message is one line: the problem and the fix."""


__all__ = ["UserError"]
