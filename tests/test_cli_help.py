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


def _bad_values(command):
    """(option, bad value) pairs the parser must refuse: words for numbers, an unknown name for choices."""
    for param in command.params:
        if param.param_type_name != "option" or param.is_flag or not param.opts:
            continue
        opt = max(param.opts, key=len)
        annotation = param.type_descriptor.annotation
        if annotation in (int, float):
            yield opt, "not-a-number"
        elif _is_choice(annotation):
            yield opt, "no-such-choice"


BAD = [(path, opt, value) for path, command in LEAVES for opt, value in _bad_values(command)]


def _refused_in_one_line(res, what):
    assert res.exit_code == 2, f"{what}: exit {res.exit_code}\n{res.output}"
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{what}: {res.exception!r}"
    assert "Traceback" not in res.output, f"{what}:\n{res.output}"


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_an_unknown_option_is_refused_with_exit_2(path):
    res = CliRunner().invoke(app, [*path, "--no-such-option"])
    _refused_in_one_line(res, f"parsimon {' '.join(path)} --no-such-option")
    assert "no-such-option" in res.output


@pytest.mark.parametrize("path, opt, value", BAD, ids=[f"{' '.join(p)} {o}" for p, o, _ in BAD])
def test_a_bad_option_value_is_refused_naming_the_option(path, opt, value):
    res = CliRunner().invoke(app, [*path, opt, value])
    _refused_in_one_line(res, f"parsimon {' '.join(path)} {opt} {value}")
    assert opt in res.output or opt.lstrip("-") in res.output, res.output


def test_the_sweep_covers_numbers_and_choices():
    assert len(BAD) > 40
    assert {v for _, _, v in BAD} == {"not-a-number", "no-such-choice"}
