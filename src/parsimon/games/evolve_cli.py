"""``parsimon games evolve``: the evolution loop from a seed program (light at import)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]


def evolve_cmd(
    seed: str = typer.Option("cfr_plus", "--seed", help="Seed program: cfr_plus (the paper's) or cfr, or a .py path."),
    games: list[str] = typer.Option(["kuhn_poker(players=3),leduc_poker"], "--games",
                                    help="Comma-separated OpenSpiel games (commas inside parentheses are kept)."),
    generations: int = typer.Option(5, "--generations", "-g", min=0),
    islands: int = typer.Option(2, "--islands", min=1),
    children: int = typer.Option(1, "--children", min=1, help="Children per island per generation."),
    iterations: int = typer.Option(200, "--iterations", "-n", min=1, help="CFR iterations per evaluation (paper: 1000)."),
    time_s: float = typer.Option(300.0, "--time-limit", min=0.1, help="Wall-clock seconds per candidate."),
    memory_mb: int = typer.Option(1024, "--memory-mb", min=16, help="Extra address space per candidate (MiB)."),
    cascade: float = typer.Option(10.0, "--cascade-factor", help="Stop a candidate whose exploitability on a cheap "
                                  "game exceeds this multiple of the seed's (0 disables)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel sandboxed evaluations."),
    ray: bool = typer.Option(False, "--ray", help="Evaluate on Ray (needs `pip install parsimon[ray]`)."),
    offline: bool = typer.Option(False, "--offline", help="Deterministic offline mutator instead of the LLM."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: PARSIMON_LLM_* settings)."),
    model: str = typer.Option(None, "--model", help="LLM model name."),
    rng_seed: int = typer.Option(0, "--rng-seed"),
    out: Path = typer.Option(Path("games_evolve"), "--out", help="Run folder (checkpoint, lineage, best program)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
) -> None:
    """Evolve a CFR program: sample parents by a random metric, mutate, evaluate in a sandbox, keep the valid."""
    from parsimon.errors import ParsimonError
    from parsimon.games.cli import _split_games
    from parsimon.games.evolve import EvolveConfig, LLMMutator, OfflineMutator, evolve

    game_list = [g for item in games for g in _split_games(item)]
    if not game_list:
        raise typer.BadParameter("name at least one game", param_hint="--games")
    seed_src = seed
    p = Path(seed)
    if seed.endswith(".py"):
        if not p.exists():
            raise typer.BadParameter(f"no such file {seed}", param_hint="--seed")
        seed_src = p.read_text()
    try:
        cfg = EvolveConfig(seed=seed_src, games=game_list, generations=generations, islands=islands,
                           children_per_island=children, iterations=iterations, time_s=time_s,
                           memory_mb=memory_mb, cascade_factor=cascade or None, workers=workers, use_ray=ray,
                           rng_seed=rng_seed)
        cfg.seed_source()
        mutator = OfflineMutator() if offline else LLMMutator(base_url=base_url, model=model)
        res = evolve(cfg, mutator, out_dir=out, resume=resume, progress=True)
    except ParsimonError as exc:
        raise typer.BadParameter(str(exc)) from None
    summary = {"seed_fitness": res.seed_fitness, "best_fitness": res.best_fitness,
               "seed_mean": res.seed_mean, "best_mean": res.best_mean, "children": len(res.lineage),
               "valid_children": sum(r["status"] == "ok" for r in res.lineage), "out": str(out)}
    typer.echo(json.dumps(summary, indent=1))


def register(app: typer.Typer) -> None:
    app.command("evolve")(evolve_cmd)
