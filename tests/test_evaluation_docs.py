"""Every option of every `synthgen eval` command is documented in docs/evaluation.md."""
from pathlib import Path

from synthgen.evaluation.cli import eval_group

DOC = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"


def test_every_eval_option_is_documented():
    text = DOC.read_text()
    for name, command in eval_group.commands.items():
        assert f"synthgen eval {name}" in text, name
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}`" in text, f"{name} {opt}"
