"""``parsimon games``: solve / compile / bench (engine) and the PSRO / evolution commands.

The engine's modules import numpy only (OpenSpiel and torch load inside the commands). Other modules of
this package add their commands by defining ``register(app)`` in a module listed in ``_EXTRA`` (e.g.
``parsimon.games.psro_cli``), so this file stays small. ``solve``, ``psro`` and ``evolve`` are
:mod:`parsimon.run` runs; every command prints text, or JSON with ``--json``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from parsimon.cliutil import choices, config_option, emit, json_option, out_option, resolve_config
from parsimon.games.backend import BACKENDS
from parsimon.games.cliopts import game_argument, max_nodes_option, plot_curves, split_games
from parsimon.games.engine import MAX_NODES
from parsimon.games.rules import ALGORITHMS
from parsimon.games.solve import SolveConfig

__all__ = ["COMMANDS", "app"]

_split_games = split_games  # the earlier name

app = typer.Typer(help="Game solving: compiled CFR engine (" + ", ".join(ALGORITHMS) + "), PSRO and the "
                  "evolution loop, on OpenSpiel games. Full benchmarks: python benchmarks/games_bench.py, "
                  "python benchmarks/games_psro_bench.py.", no_args_is_help=True)

AlgoName = choices(ALGORITHMS)
BackendName = choices(BACKENDS)
_S = SolveConfig(game="")


@app.command()
def solve(
    game: str = game_argument(),
    algo: AlgoName = typer.Option(None, "--algo", help=f"CFR variant (default {_S.algo})."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1,
                                   help=f"CFR iterations (default {_S.iterations})."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Evaluate every k iterations (default n/100)."),
    backend: BackendName = typer.Option(None, "--backend", help=f"Array library (default {_S.backend})."),
    device: str = typer.Option(None, "--device", help="torch device (cpu, cuda); default cuda if available."),
    max_nodes: int = max_nodes_option(),
    out: Path = out_option("games solve"),
    config: Path = config_option(),
    as_json: bool = json_option(),
) -> None:
    """Run a CFR-family algorithm (deterministic: no seed); the run folder gets the exploitability curve
    (result.json, events.jsonl, metrics.json) and its plot (figures/exploitability.png)."""
    from parsimon.games.engine import compile_game
    from parsimon.games.solve import solve as _solve
    from parsimon.run import start_run

    cfg = resolve_config(SolveConfig(game=game), config, {"algo": algo, "iterations": iterations,
                                                          "eval_every": eval_every, "backend": backend,
                                                          "device": device, "max_nodes": max_nodes})
    with start_run("games solve", cfg, out_dir=out) as run:  # checks the folder before any work
        cg = compile_game(cfg.game, max_nodes=cfg.max_nodes)
        res = _solve(cg, cfg.algo, cfg.iterations, eval_every=cfg.eval_every, backend=cfg.backend,
                     device=cfg.device, run=run)
        run.write_json("result.json", res.to_dict())
        run.set_metrics(final_exploitability=res.final_exploitability, iterations=res.iterations,
                        ms_per_iteration=res.seconds_per_iteration * 1e3, infosets=cg.num_infosets,
                        histories=cg.num_nodes, compile_seconds=res.compile_seconds)
        plot_curves({res.algo: res.exploitability}, run.figure("exploitability.png"), res.game)
    emit({"game": res.game, "algo": res.algo, "iterations": res.iterations,
          "final_exploitability": res.final_exploitability, "ms_per_iteration": res.seconds_per_iteration * 1e3,
          "run": str(run.dir)}, as_json)


@app.command("compile")
def compile_cmd(
    game: str = game_argument(),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompile even if cached (and do not write)."),
    max_nodes: int = max_nodes_option(),
    as_json: bool = json_option(),
) -> None:
    """Compile a game to arrays (cached) and print its size, compile time and memory."""
    from parsimon.games.engine import compile_game

    cg = compile_game(game, cache=not no_cache, max_nodes=max_nodes or MAX_NODES)
    emit(cg.summary(), as_json)


@app.command()
def bench(
    games: str = typer.Option("kuhn_poker,leduc_poker", "--games", help="Comma-separated OpenSpiel game strings."),
    algo: AlgoName = typer.Option("cfr+", "--algo", help="CFR variant (OpenSpiel is timed for cfr and cfr+)."),
    iterations: int = typer.Option(20, "--iterations", "-n", min=1, help="Timed iterations per game."),
    backend: BackendName = typer.Option("numpy", "--backend", help="Array library of our engine."),
    openspiel: bool = typer.Option(True, "--openspiel/--no-openspiel", help="Also time OpenSpiel's C++ solver."),
    as_json: bool = json_option(),
) -> None:
    """Time ms/iteration of our engine (and OpenSpiel C++ for cfr/cfr+) on a few games."""
    import time

    from parsimon.games.cfr import CFRDriver
    from parsimon.games.engine import compile_game

    rows = {}
    for g in split_games(games):
        cg = compile_game(g)
        drv = CFRDriver(cg, algo, backend=backend)
        drv.iteration()
        t0 = time.perf_counter()
        drv.run(iterations)
        ours = (time.perf_counter() - t0) / iterations
        row = {"infosets": cg.num_infosets, "ours_ms_per_iteration": ours * 1e3}
        if openspiel and algo in ("cfr", "cfr+"):
            import pyspiel

            s = (pyspiel.CFRSolver if algo == "cfr" else pyspiel.CFRPlusSolver)(cg.game)
            s.evaluate_and_update_policy()
            k = max(1, min(iterations, 5))
            t0 = time.perf_counter()
            for _ in range(k):
                s.evaluate_and_update_policy()
            cpp = (time.perf_counter() - t0) / k
            row.update(openspiel_cpp_ms_per_iteration=cpp * 1e3, speedup_vs_openspiel_cpp=cpp / ours)
        rows[g] = row
    emit(rows, as_json)


_EXTRA = ("parsimon.games.psro_cli", "parsimon.games.evolve_cli")
for _name in _EXTRA:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _mod.register(app)

COMMANDS: dict[str, typer.Typer] = {"games": app}
