"""``parsimon games``: solve / compile / bench (engine) and the PSRO / evolution commands.

Only light imports here; the engine, OpenSpiel and torch are imported inside the commands. Other
modules of this package add their commands by defining ``register(app)`` in a module listed in
``_EXTRA`` (e.g. ``parsimon.games.psro_cli``), so this file stays small.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import typer

__all__ = ["COMMANDS", "app"]

app = typer.Typer(help="Game solving: compiled CFR engine (cfr, cfr+, lcfr, dcfr, pcfr+, pdcfr+, vad-cfr, "
                  "aod-cfr), PSRO and the evolution loop, on OpenSpiel games.", no_args_is_help=True)


@app.command()
def solve(
    game: str = typer.Argument(..., help="OpenSpiel game string, e.g. 'leduc_poker' or 'kuhn_poker(players=3)'."),
    algo: str = typer.Option("cfr+", "--algo", help="cfr, cfr+, lcfr, dcfr, pcfr+, pdcfr+, vad-cfr, aod-cfr."),
    iterations: int = typer.Option(1000, "--iterations", "-n", min=1, help="CFR iterations."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Evaluate every k iterations (default n/100)."),
    backend: str = typer.Option("numpy", "--backend", help="numpy or torch."),
    device: str = typer.Option(None, "--device", help="torch device (cpu, cuda); default cuda if available."),
    out: Path = typer.Option(Path("games_out"), "--out", help="Folder for the curve JSON and PNG."),
) -> None:
    """Run a CFR-family algorithm; write exploitability curve JSON + PNG into --out."""
    from parsimon.games.rules import make_rule
    from parsimon.games.solve import solve as _solve

    try:
        make_rule(algo)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--algo") from None
    if backend not in ("numpy", "torch"):
        raise typer.BadParameter(f"choose numpy or torch, got {backend!r}", param_hint="--backend")
    cg = _compile(game)
    res = _solve(cg, algo, iterations, eval_every=eval_every, backend=backend, device=device, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_slug(game)}_{res.algo}"
    (out / f"{stem}.json").write_text(json.dumps(res.to_json(), indent=1))
    _plot({res.algo: res.exploitability}, out / f"{stem}.png", f"{game}")
    typer.echo(f"{res.algo} on {res.game}: exploitability {res.final_exploitability:.6g} after {iterations} "
               f"iterations, {res.seconds_per_iteration * 1e3:.3f} ms/iteration; wrote {out / stem}.json/.png")


@app.command("compile")
def compile_cmd(
    game: str = typer.Argument(..., help="OpenSpiel game string."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompile even if cached (and do not write)."),
) -> None:
    """Compile a game to arrays (cached) and print its size, compile time and memory."""
    cg = _compile(game, cache=not no_cache)
    typer.echo(json.dumps(cg.summary(), indent=1))


@app.command()
def bench(
    games: str = typer.Option("kuhn_poker,leduc_poker", "--games", help="Comma-separated OpenSpiel game strings."),
    algo: str = typer.Option("cfr+", "--algo"),
    iterations: int = typer.Option(20, "--iterations", "-n", min=1),
    backend: str = typer.Option("numpy", "--backend"),
    openspiel: bool = typer.Option(True, "--openspiel/--no-openspiel", help="Also time OpenSpiel's C++ solver."),
) -> None:
    """Time ms/iteration of our engine (and OpenSpiel C++ for cfr/cfr+) on a few games."""
    import time

    from parsimon.games.cfr import CFRDriver

    for g in [x.strip() for x in _split_games(games)]:
        cg = _compile(g)
        drv = CFRDriver(cg, algo, backend=backend)
        drv.iteration()
        t0 = time.perf_counter()
        drv.run(iterations)
        ours = (time.perf_counter() - t0) / iterations
        line = f"{g}: {cg.num_infosets} infosets, ours {ours * 1e3:.3f} ms/it"
        if openspiel and algo in ("cfr", "cfr+"):
            import pyspiel

            s = (pyspiel.CFRSolver if algo == "cfr" else pyspiel.CFRPlusSolver)(cg.game)
            s.evaluate_and_update_policy()
            k = max(1, min(iterations, 5))
            t0 = time.perf_counter()
            for _ in range(k):
                s.evaluate_and_update_policy()
            cpp = (time.perf_counter() - t0) / k
            line += f", OpenSpiel C++ {cpp * 1e3:.3f} ms/it ({cpp / ours:.1f}x)"
        typer.echo(line)


def _compile(game: str, cache: bool = True):
    """Compile with errors turned into a clean usage message."""
    from parsimon.errors import ParsimonError
    from parsimon.games.engine import compile_game

    try:
        return compile_game(game, cache=cache)
    except (ParsimonError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="GAME") from None


def _split_games(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        out.append(cur)
    return out


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s).strip("_")[:80]


def _plot(curves: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, pts in curves.items():
        xs = [p[0] for p in pts]
        ys = [max(p[1], 1e-17) for p in pts]
        ax.plot(xs, ys, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("exploitability")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
