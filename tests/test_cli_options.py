"""The option types the commands share: comma-separated names."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from synthgen.cli_options import NameList


def _command(names_type: NameList):
    @click.command()
    @click.option("--domains", type=names_type, default="rgb", show_default=True)
    def show(domains):
        click.echo(repr(domains))

    return show


def test_names_keep_their_order_without_spaces_empties_or_repeats():
    result = CliRunner().invoke(_command(NameList()), ["--domains", " seg, rgb,,seg ,sketch"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == repr(("seg", "rgb", "sketch"))
    assert CliRunner().invoke(_command(NameList()), []).output.strip() == repr(("rgb",))


@pytest.mark.parametrize("value, fragment", [(",", "name at least one, e.g. rgb,seg"), (" ", "name at least one"),
                                             ("rgb,depth", "unknown depth; choose from rgb,seg")])
def test_an_empty_list_or_an_unknown_name_is_a_usage_error(value, fragment):
    result = CliRunner().invoke(_command(NameList(choices=("rgb", "seg"))), ["--domains", value])
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_names_outside_known_choices_pass_when_there_are_none():
    assert NameList().convert("hair,rgb", None, None) == ("hair", "rgb")  # a user's own domain names
    assert NameList().convert(("seg",), None, None) == ("seg",)  # a tuple default is taken as it is
    assert NameList().convert(("seg", " seg", "rgb"), None, None) == ("seg", "rgb")  # and cleaned like text
