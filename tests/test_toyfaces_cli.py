import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from synthgen.celebamask import PALETTE
from synthgen.cli import main
from synthgen.toyfaces import render, seed_to_z

DOCS = Path(__file__).resolve().parents[1] / "docs" / "toyfaces.md"


def _run(*args):
    return CliRunner().invoke(main, ["toyfaces", "render", *args])


def test_render_writes_every_domain_and_a_preview(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["toyfaces", "render", "--n", "3", "--size", "32", "--seed", "4",
                                  "--out", "d", "--start-index", "99998", "--preview", "p.png"])
    assert result.exit_code == 0, result.output
    names = ["099998", "099999", "100000"]  # widened past 5 digits for index 100000
    for sub, ext in (("rgb", "png"), ("seg", "png"), ("sketch", "png"), ("landmark", "png"),
                     ("landmark", "npy")):
        assert sorted(p.stem for p in Path("d", sub).glob(f"*.{ext}")) == names
    truth = render(seed_to_z(4, [100000])[0], 32)
    seg = Image.open("d/seg/100000.png")
    assert seg.mode == "P" and seg.getpalette()[:6] == [*PALETTE[0], *PALETTE[1]]
    np.testing.assert_array_equal(np.array(seg), truth["seg"])
    np.testing.assert_array_equal(np.array(Image.open("d/rgb/100000.png")), truth["rgb"])
    assert Image.open("d/sketch/100000.png").mode == "L"
    np.testing.assert_array_equal(np.load("d/landmark/100000.npy"), truth["landmark"])
    sheet = Image.open("p.png")
    assert sheet.size == (4 * 128, 3 * 128)


def test_domain_subset_and_workers_give_the_same_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    one = runner.invoke(main, ["toyfaces", "render", "--n", "5", "--size", "32", "--out", "a",
                               "--domains", "seg,rgb", "--workers", "1"])
    # 130 faces are three chunks of 64: two processes really run
    two = runner.invoke(main, ["toyfaces", "render", "--n", "130", "--size", "32", "--out", "b",
                               "--domains", "seg,rgb", "--workers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert sorted(p.name for p in Path("a").iterdir()) == ["rgb", "seg"]
    for path in Path("a").rglob("*.png"):
        assert path.read_bytes() == (Path("b") / path.relative_to("a")).read_bytes()


def test_render_uses_the_cores_it_may_run_on_by_default():
    from synthgen.devices import available_cpus
    from synthgen.toyfaces.cli import render as render_command

    workers = next(p for p in render_command.params if p.name == "workers")
    assert workers.default == available_cpus()
    assert "the cores this process may use" in " ".join(_run("--help").output.split())


def test_bad_arguments_are_usage_errors():
    for args, fragment in ((["--size", "300"], "--size"), (["--domains", "rgb,depth"], "depth"),
                           (["--n", "0"], "--n"), (["--domains", ","], "domain")):
        base = ["--out", "x"] + ([] if "--n" in args else ["--n", "1"])
        result = _run(*base, *args)
        assert result.exit_code == 2, result.output
        assert fragment in result.output
        assert "Traceback" not in result.output


def test_every_render_option_is_documented():
    help_text = _run("--help").output
    text = DOCS.read_text()
    for option in re.findall(r"(--[a-z-]+)", help_text):
        assert f"`{option}" in text, option
