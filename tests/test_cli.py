from click.testing import CliRunner

from synthgen import __version__
from synthgen.cli import COMMANDS, main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_installed_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in main.list_commands(None):
        assert name in result.output
    assert set(main.list_commands(None)) <= set(COMMANDS)


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_fit_and_sample_option_defaults_are_their_configs_defaults():
    """An option's default is stated once, in the config dataclass the Python API uses."""
    from synthgen.anchors.cli import fit as fit_command
    from synthgen.anchors.fit import FitConfig
    from synthgen.defaults import default_of
    from synthgen.sample.cli import sample as sample_command
    from synthgen.sample.plan import SampleConfig

    checked = 0
    for command, config in ((fit_command, FitConfig), (sample_command, SampleConfig)):
        for param in command.params:
            if param.name not in config.__dataclass_fields__ or param.required or param.name == "out_dir":
                continue
            expected = default_of(config, param.name)
            if param.name in ("regressor_widths", "domains"):  # comma-separated on the command line
                expected = ",".join(map(str, expected))
            default = param.default
            if getattr(param, "is_flag", False) and default not in (True, False) and expected is not None:
                default = False  # a flag given no default is off (None: the fit recipe's value)
            assert default == expected, (command.name, param.name, default, expected)
            checked += 1
    assert checked >= 30
