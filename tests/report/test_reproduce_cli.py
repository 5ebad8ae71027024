"""`parsimon reproduce` on the command line: --only choices from the runner's list, a missing section is an error."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.report import runner

cli = CliRunner()


def test_help_lists_the_only_values_from_the_runner():
    r = cli.invoke(app, ["reproduce", "--help"], env={"COLUMNS": "240"})
    assert r.exit_code == 0
    flat = re.sub(r"[\s│]", "", r.output)
    assert "|".join(runner.SUBPACKAGES) in flat


def test_only_a_section_not_installed_fails_on_the_terminal(tmp_path, monkeypatch):
    # issue 16 item 7: `--only latents` (not present) exited 0 with an empty report
    real = runner._find
    monkeypatch.setattr(runner, "_find", lambda name: None if name == "latents" else real(name))
    r = cli.invoke(app, ["reproduce", "--only", "latents", "--out", str(tmp_path / "rep")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "error: `--only` latents: not in this installation" in r.output and "governance" in r.output
    assert not (tmp_path / "rep").exists()
    r = cli.invoke(app, ["reproduce", "--only", "nope"])
    assert r.exit_code == 2 and "nope" in r.output and "governance" in r.output

