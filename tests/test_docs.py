"""Every command and option a user can type is documented, and the README opens with the
two commands that work on a fresh machine."""
import re
from pathlib import Path

import click
import pytest

from synthgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), (*path, name))


COMMANDS = list(walk(main, ("synthgen",)))


@pytest.mark.parametrize("path,command", COMMANDS[1:], ids=[" ".join(p) for p, _ in COMMANDS[1:]])
def test_command_and_options_documented(path, command):
    assert " ".join(path) in DOCS, f"`{' '.join(path)}` is not in README.md or docs/"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert longest in DOCS, f"{' '.join(path)} {longest} is not documented"
            assert param.help, f"{' '.join(path)} {longest} has no --help text"


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert lines == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
