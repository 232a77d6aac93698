"""Options every command declares the same way: input paths and --device.

InputPath: a click path option whose bad path is one line naming it (exit 1), not a usage error.

click.Path(exists=True) answers a missing file with click's three-line usage error and
exit 2, as if the command line were malformed. A missing or wrong-kind path is a bad
input, not a usage error: InputPath checks the same things and reports them as one
`Error: '--data': Path 'x' does not exist: check the path` line with exit 1.
"""
from __future__ import annotations

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


__all__ = ["InputPath", "device_option"]
