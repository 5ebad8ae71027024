"""``parsimon games psro``: PSRO with a chosen train / eval meta-solver (light at import)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]

SOLVER_HELP = "uniform, nash (2-player zero-sum), prd, rm, alpharank, shor, shor-eval"


def psro_cmd(
    game: str = typer.Argument(..., help="OpenSpiel game string, e.g. 'kuhn_poker(players=3)'."),
    train_solver: str = typer.Option("shor", "--train-solver", help=f"Meta-solver for best responses: {SOLVER_HELP}."),
    eval_solver: str = typer.Option("shor-eval", "--eval-solver", help=f"Meta-solver that is evaluated: {SOLVER_HELP}."),
    iterations: int = typer.Option(100, "--iterations", "-n", min=1, help="PSRO iterations."),
    solver_scale: float = typer.Option(1.0, "--solver-scale", min=1e-4,
                                       help="Scale the inner iterations of shor/shor-eval/prd/rm (1 = paper defaults)."),
    out: Path = typer.Option(Path("games_out"), "--out", help="Folder for the curve JSON and PNG."),
) -> None:
    """Run PSRO (exact payoffs, exact tie-uniform best responses); write the curve to --out."""
    from parsimon.errors import ParsimonError
    from parsimon.games.cli import _compile, _plot, _slug
    from parsimon.games.meta_solvers import SOLVERS
    from parsimon.games.psro import psro

    for opt, name in (("--train-solver", train_solver), ("--eval-solver", eval_solver)):
        if name.lower().replace("_", "-") not in SOLVERS:
            raise typer.BadParameter(f"unknown meta-solver {name!r}; accepted values: {', '.join(SOLVERS)}",
                                     param_hint=opt)
    kw = {}
    for role, name in (("train_kwargs", train_solver), ("eval_kwargs", eval_solver)):
        key = name.lower().replace("_", "-")
        if solver_scale != 1.0 and key in ("shor", "shor-eval"):
            kw[role] = {"iteration_scale": solver_scale}
        elif solver_scale != 1.0 and key in ("prd", "rm"):
            kw[role] = {"iterations": max(1, int(100_000 * solver_scale))}
    cg = _compile(game)
    try:
        res = psro(cg, train_solver, eval_solver, iterations, progress=True, **kw)
    except ParsimonError as exc:
        raise typer.BadParameter(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    stem = f"psro_{_slug(game)}_{_slug(res.train_solver)}_{_slug(res.eval_solver)}"
    data = res.to_json()
    data["solver_scale"] = solver_scale
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1))
    _plot({f"{res.train_solver}/{res.eval_solver}": res.exploitability}, out / f"{stem}.png", f"PSRO {game}")
    typer.echo(f"PSRO {res.train_solver}/{res.eval_solver} on {res.game}: exploitability {res.final():.6g} after "
               f"{iterations} iterations in {res.seconds:.1f} s; wrote {out / stem}.json/.png")


def register(app: typer.Typer) -> None:
    app.command("psro")(psro_cmd)
