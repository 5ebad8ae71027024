"""``parsimon gui``: evaluate GUI agents on the suites (with optional world-model search), and ``gui wm``.

Only light modules are imported here; browsers and models start inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from parsimon.cliutil import config_option, out_option, ray_option, resolve_config, resume_option, seed_option
from parsimon.gui.world_model.cli import (
    SEARCH_K_OPTION,
    SEARCH_MODE_OPTION,
    SEARCH_SCORER_OPTION,
    WORLD_MODEL_OPTION,
    ScorerName,
    SearchMode,
    WorldModelName,
    search_settings,
)
from parsimon.gui.world_model.cli import app as wm_app

__all__ = ["COMMANDS", "app"]

app = typer.Typer(help="GUI agents in the GUI-Owl-1.5 protocol and the Computer-Using World Model.",
                  no_args_is_help=True)
app.add_typer(wm_app, name="wm")
COMMANDS = {"gui": app}


@app.command("eval")
def eval_cmd(
    suite: str = typer.Option(None, "--suite", help="Suite: miniwob, apps, mobile, desktop (default miniwob)."),
    tasks: str = typer.Option(None, "--tasks", help="Tasks: names, a MiniWoB group (dom, visual, rule) or an apps "
                              "prefix; default: the suite's."),
    seeds: str = typer.Option(None, "--seeds", help="Episode seeds, e.g. 0-9 or 1,3,5 (default 0-9)."),
    policy: str = typer.Option(None, "--policy", help="Policy (default rule): rule, proposal, random, replay, "
                               "guiowl, axtree-json."),
    approve: str = typer.Option(None, "--approve", help="Irreversible actions: ask, deny or auto (default ask)."),
    transitions: bool = typer.Option(None, "--transitions/--no-transitions", help="Log (state, action, next "
                                     "state) under OUT/transitions for `gui wm train --store`."),
    world_model: WorldModelName = WORLD_MODEL_OPTION,
    search_k: int = SEARCH_K_OPTION,
    search_mode: SearchMode = SEARCH_MODE_OPTION,
    search_scorer: ScorerName = SEARCH_SCORER_OPTION,
    ray: str = ray_option(),
    seed: int = seed_option(),
    out: Path = out_option("gui eval"),
    resume: bool = resume_option(),
    config: Path = config_option(),
) -> None:
    """Run a policy on a suite's tasks and seeds as one governed run (success with 95% intervals)."""
    from parsimon.gui.evaluate import EvalConfig, evaluate, parse_seeds

    cfg = resolve_config(EvalConfig(), config, {
        "suite": suite, "tasks": tuple(t for t in tasks.split(",") if t) if tasks else None,
        "seeds": parse_seeds(seeds) if seeds else None, "policy": policy, "approve": approve,
        "transitions": transitions,
        "search": search_settings(world_model, search_k, search_mode, search_scorer) or None})
    res = evaluate(cfg, out_dir=out, resume=resume, ray=ray, seed=seed)
    typer.echo(f"success {res.success_rate:.1%} (95% CI {res.success_ci[0]:.1%}-{res.success_ci[1]:.1%}) over "
               f"{res.episodes} episodes; {res.mean_steps:.2f} steps each; wrote {res.run_dir}")
