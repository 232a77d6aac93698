"""The `synthgen` command line: a click group whose commands load lazily.

Each command lives in the module that owns its job (see COMMANDS) so that
`synthgen --help` does not import torch, and each module stays a thin layer of
option parsing over one plain Python function.
"""
from __future__ import annotations

import importlib
import importlib.util

import click

from synthgen import __version__
from synthgen.allocator import keep_freed_memory

# command name -> "module:attribute" of a click.Command
COMMANDS = {
    "toyfaces": "synthgen.toyfaces.cli:toyfaces",
    "convert": "synthgen.generators.cli:convert",
    "info": "synthgen.generators.cli:info",
    "fit": "synthgen.anchors.cli:fit",
    "translate": "synthgen.anchors.cli:translate",
    "sample": "synthgen.sample.cli:sample",
    "verify": "synthgen.sample.cli:verify",
    "preview": "synthgen.sample.cli:preview",
    "eval": "synthgen.evaluation.cli:eval_group",
}
# group name -> {subcommand: "module:attribute"} added from packages above the group's own: the
# built-in world's generator training lives in synthgen.builtin, which stands on toyfaces, but
# users reach it as `synthgen toyfaces train-generator`.
SUBCOMMANDS = {
    "toyfaces": {"train-generator": "synthgen.builtin.cli:train_generator_command"},
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._importable(name))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # command not part of this installation
            raise
        command = getattr(module, attr)
        for sub, target in SUBCOMMANDS.get(name, {}).items():
            if sub not in command.commands:
                sub_module, sub_attr = target.split(":")
                command.add_command(getattr(importlib.import_module(sub_module), sub_attr), sub)
        return command

    @staticmethod
    def _importable(name: str) -> bool:
        module_name = COMMANDS[name].split(":")[0]
        try:
            return importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:  # its parent package is absent
            return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synthgen")
def main() -> None:
    """Aligned multi-domain synthetic datasets from a frozen GAN.

    Anchor domains to a frozen generator (`fit`), translate between them
    (`translate`), and write aligned datasets as WebDataset shards (`sample`).
    """
    keep_freed_memory()  # every command runs generator passes (synthgen/allocator.py)


if __name__ == "__main__":
    main()
