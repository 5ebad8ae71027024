"""Every `parsimon` command explains itself: walk every subcommand's options and `--help`.

Fails on an option or argument without a description, a command without a docstring, and an option whose
help lists its choices by hand ("one of a, b") instead of taking them from a registry (a ``Literal`` or
``Enum`` type, which ``--help`` shows as ``<a|b>`` and the parser checks).
"""

from __future__ import annotations

import enum
import re
import typing

import pytest
import typer
from typer.testing import CliRunner

from parsimon.cli import app

_HAND_LISTED = re.compile(r"\b(one of|choose from|choices?:)\s", re.I)


def _leaves(command, path):
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in sorted(subs.items()):
            yield from _leaves(sub, [*path, name])
    else:
        yield path, command


ROOT = typer.main.get_command(app)
LEAVES = list(_leaves(ROOT, []))


def _is_choice(annotation) -> bool:
    if typing.get_origin(annotation) is typing.Literal:
        return True
    if typing.get_origin(annotation) in (list, typing.Union):
        return any(_is_choice(a) for a in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


@pytest.mark.parametrize("path, command", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_option_is_described_and_choices_come_from_a_registry(path, command):
    assert (command.help or "").strip(), f"`parsimon {' '.join(path)}` has no description"
    for param in command.params:
        name = "/".join(getattr(param, "opts", []) or [param.name])
        help_text = (getattr(param, "help", None) or "").strip()
        assert help_text, f"`parsimon {' '.join(path)}` {name} has no description"
        annotation = param.type_descriptor.annotation
        if _HAND_LISTED.search(help_text):
            assert _is_choice(annotation), (
                f"`parsimon {' '.join(path)}` {name} lists its choices in the help text; type it with "
                f"parsimon.cliutil.choices(REGISTRY) instead: {help_text!r}")


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_help_renders(path):
    res = CliRunner().invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_every_group_has_help():
    for name, sub in ROOT.commands.items():
        assert (sub.help or "").strip(), f"`parsimon {name}` has no description"
