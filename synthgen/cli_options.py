"""Options every command declares the same way: input paths, --device and comma-separated names.

InputPath: a click path option whose bad path is one line naming it (exit 1), not a usage error.

click.Path(exists=True) answers a missing file with click's three-line usage error and
exit 2, as if the command line were malformed. A missing or wrong-kind path is a bad
input, not a usage error: InputPath checks the same things and reports them as one
`Error: '--data': Path 'x' does not exist: check the path` line with exit 1.
"""
from __future__ import annotations

from collections.abc import Sequence

import click

from synthgen.devices import DEVICES


class InputPath(click.Path):
    """click.Path(exists=True, ...) whose failed checks raise a one-line ClickException."""

    def __init__(self, **kwargs):
        super().__init__(exists=True, **kwargs)

    def fail(self, message: str, param: click.Parameter | None = None, ctx: click.Context | None = None):
        where = param.get_error_hint(ctx) if param is not None and ctx is not None else "path"
        raise click.ClickException(f"{where}: {message.rstrip('.')}: check the path")


def device_option(help: str = "Where to run: auto (CUDA when visible), cpu, cuda.", default: str | None = "auto"):
    """The --device option of the commands that train or translate (resolved by devices.resolve_device).

    default None: the command fills it in itself (a resumed run keeps its stored device).
    """
    return click.option("--device", type=click.Choice(DEVICES), default=default, show_default=default is not None,
                        help=help)


class NameList(click.ParamType):
    """A comma-separated list of names (domains, classes) -> a tuple in the order given.

    Spaces and empty items are dropped and a name given twice is kept once (it means the same
    thing twice). A list with no name, or with a name outside `choices` when those are known,
    is refused: a command never runs on nothing and reports success.
    """

    name = "names"

    def __init__(self, choices: Sequence[str] | None = None, example: str = "rgb,seg"):
        self.choices = tuple(choices) if choices is not None else None
        self.example = example

    def convert(self, value, param, ctx) -> tuple[str, ...]:
        items = value if isinstance(value, tuple) else str(value).split(",")  # a tuple: a default or a Python caller
        names = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
        if not names:
            self.fail(f"name at least one, e.g. {self.example}", param, ctx)
        unknown = [v for v in names if self.choices is not None and v not in self.choices]
        if unknown:
            self.fail(f"unknown {', '.join(unknown)}; choose from {','.join(self.choices)}", param, ctx)
        return names


__all__ = ["InputPath", "NameList", "device_option"]
