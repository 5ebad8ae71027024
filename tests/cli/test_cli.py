from __future__ import annotations

from typer.testing import CliRunner

from parsimon import __version__
from parsimon.cli import app


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_help_lists_reproduce():
    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0 and "reproduce" in r.output


def test_every_group_has_help():
    import typer.main

    group = typer.main.get_group(app)
    for name, cmd in group.commands.items():
        r = CliRunner().invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        sub = getattr(cmd, "commands", {})
        for subname in sub:
            r = CliRunner().invoke(app, [name, subname, "--help"])
            assert r.exit_code == 0, (name, subname, r.output)


def test_reproduce_bad_only():
    r = CliRunner().invoke(app, ["reproduce", "--only", "nope"])
    assert r.exit_code != 0
