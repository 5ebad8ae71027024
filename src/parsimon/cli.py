"""The ``parsimon`` command. Each subpackage registers its commands from its own ``cli.py``.

A subpackage's ``cli.py`` defines ``COMMANDS: dict[str, typer.Typer]`` (command group name → Typer
app). It must import only light modules at import time (no torch, no OpenSpiel), so that
``parsimon --help`` stays fast; heavy imports go inside the command functions.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from parsimon import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    help="Parsimon: efficiency-first papers of February 2026 as a library. "
    "Run `parsimon COMMAND --help` for each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SUBPACKAGES = ["governance", "llm", "attention", "latents", "cta", "gui", "games"]


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


@app.command()
def reproduce(
    only: list[str] = typer.Option(
        None, "--only", help="Run only this subpackage's reproduction (repeatable), e.g. --only games."
    ),
    full: bool = typer.Option(False, "--full", help="Run the larger settings (and GPU ones if a GPU exists)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default reports/<UTC timestamp>)."),
    seed: int = typer.Option(0, "--seed", help="Seed every reproduction starts from."),
) -> None:
    """Run each paper's quick reproduction and write an HTML report (reports/<timestamp>/index.html)."""
    from rich.console import Console

    from parsimon.progress import standard_progress
    from parsimon.report.runner import SUBPACKAGES, run_reproduce

    if only:
        bad = sorted(set(only) - set(SUBPACKAGES))
        if bad:
            raise typer.BadParameter(f"unknown subpackage(s) {bad}; choose from {SUBPACKAGES}", param_hint="--only")
    console = Console(stderr=True)
    with standard_progress(console=console) as progress:
        path = run_reproduce(only, full=full, out=out, seed=seed, progress=progress, console=console)
    typer.echo(f"report written to {path.resolve()}")


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
