"""``parsimon games psro``: PSRO with a chosen train / eval meta-solver, as a :mod:`parsimon.run` run."""

from __future__ import annotations

from pathlib import Path

import typer

from parsimon.cliutil import choices, config_option, emit, json_option, out_option, resolve_config
from parsimon.games.cliopts import game_argument, max_nodes_option, plot_curves
from parsimon.games.meta_solvers import SOLVERS
from parsimon.games.psro import PSROConfig

__all__ = ["register"]

SolverName = choices(SOLVERS)
_P = PSROConfig(game="")


def psro_cmd(
    game: str = game_argument(),
    train_solver: SolverName = typer.Option(None, "--train-solver", help="Meta-solver the best responses are "
                                            f"trained against (default {_P.train_solver})."),
    eval_solver: SolverName = typer.Option(None, "--eval-solver", help="Meta-solver whose profile is evaluated "
                                           f"(default {_P.eval_solver})."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1,
                                   help=f"PSRO iterations (default {_P.iterations})."),
    solver_scale: float = typer.Option(None, "--solver-scale", min=1e-4, help="Scale the inner iterations of "
                                       "shor/shor-eval/prd/rm (default 1 = the paper's settings)."),
    max_nodes: int = max_nodes_option(),
    out: Path = out_option("games psro"),
    config: Path = config_option(),
    as_json: bool = json_option(),
) -> None:
    """Run PSRO (exact payoffs, exact tie-uniform best responses; deterministic: no seed); the run folder gets
    the curve (result.json, events.jsonl, metrics.json) and its plot (figures/exploitability.png)."""
    from parsimon.games.engine import compile_game
    from parsimon.games.psro import psro
    from parsimon.run import start_run

    cfg = resolve_config(PSROConfig(game=game), config, {
        "train_solver": train_solver, "eval_solver": eval_solver, "iterations": iterations,
        "solver_scale": solver_scale, "max_nodes": max_nodes})
    with start_run("games psro", cfg, out_dir=out) as run:  # checks the folder before any work
        cg = compile_game(cfg.game, max_nodes=cfg.max_nodes)
        res = psro(cg, cfg.train_solver, cfg.eval_solver, cfg.iterations, run=run,
                   train_kwargs=cfg.solver_kwargs(cfg.train_solver), eval_kwargs=cfg.solver_kwargs(cfg.eval_solver))
        run.write_json("result.json", {**res.to_dict(), "solver_scale": cfg.solver_scale})
        run.set_metrics(final_exploitability=res.final_exploitability, iterations=cfg.iterations,
                        seconds=res.seconds, population_sizes="/".join(str(p.shape[0]) for p in res.populations))
        plot_curves({f"{res.train_solver}/{res.eval_solver}": res.exploitability}, run.figure("exploitability.png"),
                    f"PSRO {res.game}", xlabel="PSRO iteration")
    emit({"game": res.game, "train_solver": res.train_solver, "eval_solver": res.eval_solver,
          "iterations": cfg.iterations, "final_exploitability": res.final_exploitability, "seconds": res.seconds,
          "run": str(run.dir)}, as_json)


def register(app: typer.Typer) -> None:
    """Add ``psro`` to the ``games`` group."""
    app.command("psro")(psro_cmd)
