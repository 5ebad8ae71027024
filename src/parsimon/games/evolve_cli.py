"""``parsimon games evolve``: the evolution loop from a seed program (light at import)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import typer

from parsimon.cliutil import choices
from parsimon.llm.structured import OUTPUT_MODES

__all__ = ["register"]

OutputMode = choices(OUTPUT_MODES)


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
    ray: bool = typer.Option(False, "--ray", help="Evaluate on Ray: a local instance with --workers CPUs, or "
                             "the cluster named by $RAY_ADDRESS (needs `pip install parsimon\\[ray]`)."),
    offline: bool = typer.Option(False, "--offline", help="Deterministic offline mutator instead of the LLM."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: PARSIMON_LLM_* settings)."),
    model: str = typer.Option(None, "--model", help="LLM model name."),
    max_tokens: int = typer.Option(2048, "--max-tokens", min=1, help="Upper bound on tokens of one LLM reply."),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="LLM sampling temperature."),
    llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1.0,
                                      help="Seconds for one LLM request (a slow local model needs minutes)."),
    output: OutputMode = typer.Option("constrained", "--output", help="LLM edits: constrained (JSON whose SEARCH "
                                      "is a snippet of the parent, where the endpoint supports it) or free (the "
                                      "paper's SEARCH/REPLACE text)."),
    rng_seed: int = typer.Option(0, "--rng-seed"),
    out: Path = typer.Option(Path("games_evolve"), "--out", help="Run folder (checkpoint, lineage, best program)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
) -> None:
    """Evolve a CFR program: sample parents by a random metric, mutate, evaluate in a sandbox, keep the valid."""
    from collections import Counter

    from parsimon.errors import ConfigError, ParsimonError
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
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    with ExitStack() as stack:
        if offline:
            mutator = OfflineMutator()
        else:  # the default local endpoint starts the local model when nothing answers; others must answer
            from parsimon.llm.endpoint import ensure_endpoint

            ep = stack.enter_context(ensure_endpoint(base_url, model))
            mutator = LLMMutator(base_url=ep.base_url, model=ep.model, max_tokens=max_tokens,
                                 temperature=temperature, timeout=llm_timeout, output=output)
        try:
            res = evolve(cfg, mutator, out_dir=out, resume=resume, progress=True)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        except ParsimonError as exc:  # e.g. a spent budget: the last generation's checkpoint is kept
            typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(1) from None
    statuses = Counter(r["status"] for r in res.lineage)
    stages = Counter(r.get("failed_stage", "?") for r in res.lineage if r["status"] == "mutation_failed")
    usage = [r["llm_usage"] for r in res.lineage if r.get("llm_usage")]
    summary = {"seed_fitness": res.seed_fitness, "best_fitness": res.best_fitness,
               "seed_mean": res.seed_mean, "best_mean": res.best_mean, "children": len(res.lineage),
               "valid_children": statuses.get("ok", 0), "status_counts": dict(statuses),
               "mutation_failures_by_stage": dict(stages),
               "llm_tokens": {"calls": len(usage), "prompt": sum(u["prompt_tokens"] for u in usage),
                              "completion": sum(u["completion_tokens"] for u in usage)},
               "out": str(out)}
    llm_failed = [r for r in res.lineage if r.get("failed_stage") == "llm"]
    all_failed = not offline and res.lineage and len(llm_failed) == len(res.lineage)
    summary["status"] = (f"failed: every one of the {len(llm_failed)} LLM requests failed, last error: "
                         f"{llm_failed[-1].get('error', '')[:200]}" if all_failed else "ok")
    if not offline:
        modes = Counter(u.get("mode", "free") for u in usage)
        summary["llm_output"] = {"requested": output, "modes": dict(modes),
                                 "reasks": sum(u.get("reasks", 0) for u in usage)}
    typer.echo(json.dumps(summary, indent=1))
    if all_failed:
        from parsimon.errors import LLMError

        raise LLMError(f"{summary['status']} (see {out / 'lineage.jsonl'}); the run is not a result")


def register(app: typer.Typer) -> None:
    app.command("evolve")(evolve_cmd)
