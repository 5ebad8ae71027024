"""The ``parsimon`` command. Each subpackage registers its commands from its own ``cli.py``.

A subpackage's ``cli.py`` defines ``COMMANDS: dict[str, typer.Typer]`` (command group name → Typer
app). It must import only light modules at import time (no torch, no OpenSpiel), so that
``parsimon --help`` stays fast; heavy imports go inside the command functions.
"""

from __future__ import annotations

import enum
import importlib
from pathlib import Path

import typer
from typer.core import TyperGroup

from parsimon import __version__
from parsimon.errors import ParsimonError
from parsimon.report.runner import SUBPACKAGES

__all__ = ["app", "main"]


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; the caller raises the returned exit (status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _quiet_flags(command, _seen=None) -> None:
    """Flags take no value: show none in ``--help`` (typer would print ``<bool>``, which invites
    ``--json true``, an error)."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and not getattr(param, "metavar", None):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _quiet_flags(sub)


class _Group(TyperGroup):
    """The root group: every command's ParsimonError (and an OS error on a path the user gave) becomes one
    line on stderr, ``error: ...``, and exit status 2 — never a traceback."""

    def main(self, *args, **kwargs):  # noqa: D102 - click's hook
        _quiet_flags(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx):  # noqa: D102 - click's hook
        try:
            return super().invoke(ctx)
        except ParsimonError as exc:
            raise _fail(str(exc)) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            raise _fail(f"{exc.strerror or exc}{where}") from None


app = typer.Typer(
    cls=_Group,
    help="Parsimon: efficiency-first papers of February 2026 as a library. "
    "Run `parsimon COMMAND --help` for each command. Environment variables: PARSIMON_HOME (state), "
    "PARSIMON_LLM_BASE_URL / _MODEL / _API_KEY (the model endpoint), PARSIMON_PROGRESS_INTERVAL "
    "(seconds between progress lines without a terminal); see the README's table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SUBPACKAGES = ["governance", "llm", "attention", "latents", "cta", "gui", "games", "gateway"]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"parsimon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Parsimon command line."""


# The `--only` choices: the runner's list (one source), as an Enum because typer takes no list of Literal.
_Section = enum.Enum("_Section", {name: name for name in SUBPACKAGES}, type=str)


@app.command()
def reproduce(
    only: list[_Section] = typer.Option(
        None, "--only", help="Run only this subpackage's reproduction (repeatable), e.g. --only games; one not "
        "in this installation is an error."
    ),
    full: bool = typer.Option(False, "--full", help="Run the larger settings (and GPU ones if a GPU exists)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default reports/<UTC timestamp>); one run "
                             "folder per section inside (`parsimon runs list OUT`)."),
    seed: int = typer.Option(0, "--seed", help="Seed every reproduction starts from."),
) -> None:
    """Run each paper's quick reproduction and write an HTML report (reports/<timestamp>/index.html)."""
    from rich.console import Console

    from parsimon.progress import standard_progress
    from parsimon.report.runner import run_reproduce

    console = Console(stderr=True)
    names = [o.value for o in only] if only else None
    with standard_progress(console=console) as progress:
        path = run_reproduce(names, full=full, out=out, seed=seed, progress=progress, console=console)
    typer.echo(f"report written to {path.resolve()}")


runs_app = typer.Typer(help="The runs under a folder: status, metrics, spend and audit verification.",
                       no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    root: Path = typer.Argument(Path("runs"), help="Folder to search for run folders (recursively)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the runs under ROOT with status, headline metrics, spend (from the ledger) and audit status."""
    from parsimon.runs import list_runs, render_runs

    rows = list_runs(root)
    if json_out:
        import json

        typer.echo(json.dumps(rows, indent=1, default=str))
    else:
        render_runs(rows)


@runs_app.command("show")
def runs_show(
    run: str = typer.Argument(..., help="A run folder, or a run id found under --root."),
    root: Path = typer.Option(Path("runs"), "--root", help="Where to look for a run given by id."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show one run: config, status, metrics, spend by component and its audit records' status."""
    from parsimon.runs import render_run, show_run

    info = show_run(run, root=root)
    if json_out:
        import json

        typer.echo(json.dumps(info, indent=1, default=str))
    else:
        render_run(info)


def _register() -> None:
    for name in _SUBPACKAGES:
        try:
            mod = importlib.import_module(f"parsimon.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name in (f"parsimon.{name}", f"parsimon.{name}.cli"):
                continue
            raise
        for group, sub in getattr(mod, "COMMANDS", {}).items():
            app.add_typer(sub, name=group)


_register()


def main() -> None:
    """Entry point of the ``parsimon`` console script."""
    app()


if __name__ == "__main__":
    main()
