"""``parsimon games evolve``: the evolution loop from a starting program, as a :mod:`parsimon.run` run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from parsimon.cliutil import (
    config_option,
    emit,
    json_option,
    out_option,
    ray_option,
    resolve_config,
    resume_option,
    seed_option,
)
from parsimon.errors import ConfigError
from parsimon.games.cliopts import split_games
from parsimon.games.evolve.loop import EvolveConfig
from parsimon.games.evolve.seeds import SEEDS

__all__ = ["register"]

_C = EvolveConfig()


def evolve_cmd(
    program: str = typer.Option(None, "--program", help=f"Starting program: {' or '.join(sorted(SEEDS))} "
                                f"(cfr_plus is the paper's), or a .py file (default {_C.program})."),
    games: list[str] = typer.Option(None, "--games", help="Comma-separated OpenSpiel games (commas inside "
                                    f"parentheses are kept; repeatable). Default: {','.join(_C.games)}."),
    generations: int = typer.Option(None, "--generations", "-g", min=0,
                                    help=f"Generations in total (default {_C.generations})."),
    islands: int = typer.Option(None, "--islands", min=1, help=f"Islands of the database (default {_C.islands})."),
    children: int = typer.Option(None, "--children", min=1,
                                 help=f"Children per island per generation (default {_C.children_per_island})."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1,
                                   help=f"CFR iterations per evaluation (default {_C.iterations}; paper: 1000)."),
    time_s: float = typer.Option(None, "--time-limit", min=0.1,
                                 help=f"Wall-clock seconds per candidate (default {_C.time_s:g})."),
    memory_mb: int = typer.Option(None, "--memory-mb", min=16,
                                  help=f"Extra address space per candidate in MiB (default {_C.memory_mb})."),
    cascade: float = typer.Option(None, "--cascade-factor", help="Stop a candidate whose exploitability on a cheap "
                                  "game exceeds this multiple of the starting program's (0 disables; default "
                                  f"{_C.cascade_factor:g})."),
    workers: int = typer.Option(None, "--workers", min=1,
                                help=f"Parallel sandboxed evaluations (default {_C.workers})."),
    ray: str = ray_option(),
    offline: bool = typer.Option(False, "--offline", help="Deterministic offline mutator instead of the LLM."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: PARSIMON_LLM_* settings)."),
    model: str = typer.Option(None, "--model", help="LLM model name."),
    max_tokens: int = typer.Option(2048, "--max-tokens", min=1, help="Upper bound on tokens of one LLM reply."),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="LLM sampling temperature."),
    llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1.0,
                                      help="Seconds for one LLM request (a slow local model needs minutes)."),
    seed: int = seed_option(None),
    out: Path = out_option("games evolve"),
    resume: bool = resume_option(),
    config: Path = config_option(),
    as_json: bool = json_option(),
    rng_seed: int = typer.Option(None, "--rng-seed", hidden=True, help="Renamed --seed."),
) -> None:
    """Evolve a CFR program: sample parents by a random metric, mutate, evaluate in a sandbox, keep the valid.

    The run folder holds lineage.jsonl, best.py, the checkpoint and the run files; --resume continues an
    interrupted run with the same settings.
    """
    if rng_seed is not None:
        raise ConfigError(f"`--rng-seed` was renamed `--seed` (the random seed; the starting program is "
                          f"`--program`): use --seed {rng_seed}")
    game_list = [g for item in games for g in split_games(item)] if games else None
    if games is not None and not game_list:
        raise ConfigError("`--games` must name at least one game")
    if program is not None and program.endswith(".py"):
        path = Path(program)
        if not path.is_file():
            raise ConfigError(f"`--program` {program}: no such file")
        program = path.read_text()
    values = {"program": program, "games": game_list, "generations": generations, "islands": islands,
              "children_per_island": children, "iterations": iterations, "time_s": time_s, "memory_mb": memory_mb,
              "cascade_factor": cascade or None, "workers": workers, "seed": seed}
    if ray is not None:
        values.update(use_ray=True, ray_address=ray)
    cfg = resolve_config(EvolveConfig(), config, values)
    if cascade == 0:  # 0 disables the cascade (None in the config)
        cfg = dataclasses.replace(cfg, cascade_factor=None)
    cfg.program_source()  # an unknown program name is an error before the run starts
    from parsimon.games.evolve import LLMMutator, OfflineMutator, evolve
    from parsimon.run import start_run

    mutator = OfflineMutator() if offline else LLMMutator(
        base_url=base_url, model=model, max_tokens=max_tokens, temperature=temperature, timeout=llm_timeout)
    program_id = cfg.program if "\n" not in cfg.program else f"source sha256:{cfg.identity()['program']}"
    mutator_id = {"kind": "offline"} if offline else {"kind": "llm", "base_url": base_url, "model": model,
                                                      "max_tokens": max_tokens, "temperature": temperature}
    run_config = {**dataclasses.asdict(cfg), "program": program_id, "mutator": mutator_id}
    with start_run("games evolve", run_config, out_dir=out, seed=cfg.seed, resume=resume) as run:
        res = evolve(cfg, mutator, run=run)
    emit({**res.summary(), "out": str(run.dir)}, as_json)


def register(app: typer.Typer) -> None:
    """Add ``evolve`` to the ``games`` group."""
    app.command("evolve")(evolve_cmd)
