"""``parsimon gui``: evaluate GUI policies, list suites, tasks and policies, serve MCP tools, cross-check.

Only light modules are imported here; browsers, models and Ray start inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from parsimon.cliutil import (
    choices,
    config_option,
    out_option,
    ray_option,
    resolve_config,
    resume_option,
    seed_option,
)
from parsimon.errors import ConfigError
from parsimon.gui.agent import APPROVALS
from parsimon.gui.registry import POLICIES, SUITES
from parsimon.gui.world_model.cli import (
    SEARCH_DONE_CHECK_OPTION,
    SEARCH_K_OPTION,
    SEARCH_MARGIN_OPTION,
    SEARCH_MODE_OPTION,
    SEARCH_SCORER_OPTION,
    SEARCH_STOP_OPTION,
    WORLD_MODEL_OPTION,
    ScorerName,
    SearchMode,
    StopRule,
    WorldModelName,
    search_settings,
)
from parsimon.gui.world_model.cli import app as wm_app

__all__ = ["COMMANDS", "app"]

app = typer.Typer(help="GUI agents (GUI-Owl-1.5 protocol) and the Computer-Using World Model (`gui wm`): evaluation on MiniWoB++, our apps (desktop browser, "
                  "phone) and an X desktop; MCP tools; BrowserGym cross-check.", no_args_is_help=True)
app.add_typer(wm_app, name="wm")
COMMANDS = {"gui": app}

SuiteName = choices(SUITES)
PolicyName = choices(POLICIES)
Approval = choices(APPROVALS)


@app.command("eval")
def eval_cmd(
    suite: SuiteName = typer.Option(..., "--suite", help=SUITES.help("Task suite.")),
    tasks: str = typer.Option(None, "--tasks", metavar="LIST",
                              help="Comma-separated task names or groups: 'all', MiniWoB 'dom' / 'visual' / 'rule', "
                                   "an app prefix ('todo', 'L3'); default: the suite's default tasks."),
    seeds: str = typer.Option(None, "--seeds", metavar="RANGE", help="Episode seeds, e.g. 0-9 or 1,3,5 (default 0-9)."),
    policy: PolicyName = typer.Option(None, "--policy", help=POLICIES.help("Policy (default rule).")),
    roles: bool = typer.Option(None, "--roles/--no-roles", help="Wrap the policy in the Mobile-Agent roles "
                               "(manager, reflector, notetaker); off by default."),
    approve: Approval = typer.Option(None, "--approve", help="Irreversible actions and interact: ask a person "
                                     "(refused when none can answer), deny, or auto-approve (recorded)."),
    max_steps: int = typer.Option(None, "--max-steps", min=0, help="Decisions per episode (0 = the task's limit)."),
    transitions: bool = typer.Option(None, "--transitions/--no-transitions",
                                     help="Write the (state, action, next state) log under OUT/transitions."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for guiowl / axtree-json."),
    model: str = typer.Option(None, "--model", help="Model name for guiowl / axtree-json."),
    api_key: str = typer.Option(None, "--api-key", help="Bearer token for the endpoint (or $PARSIMON_LLM_API_KEY)."),
    trajectory: Path = typer.Option(None, "--trajectory", help="steps.jsonl of an earlier run, for --policy replay."),
    world_model: WorldModelName = WORLD_MODEL_OPTION,
    search_k: int = SEARCH_K_OPTION,
    search_mode: SearchMode = SEARCH_MODE_OPTION,
    search_scorer: ScorerName = SEARCH_SCORER_OPTION,
    search_margin: float = SEARCH_MARGIN_OPTION,
    search_stop: StopRule = SEARCH_STOP_OPTION,
    search_done_check: float | None = SEARCH_DONE_CHECK_OPTION,
    out: Path = out_option("gui eval"),
    seed: int = seed_option(),
    resume: bool = resume_option(),
    ray: str = ray_option(),
    config: Path = config_option(),
) -> None:
    """Run POLICY on SUITE's tasks and seeds; write the run folder (success with 95% CIs, steps, invalid
    actions, time per step, plots)."""
    from parsimon.gui.evaluate import EvalConfig, evaluate, parse_seeds

    kwargs = {k: v for k, v in (("base_url", base_url), ("model", model), ("api_key", api_key)) if v}
    if trajectory is not None:
        if not trajectory.is_file():
            raise ConfigError(f"`--trajectory` {trajectory}: no such file")
        kwargs["trajectory"] = str(trajectory)
    given = {"suite": suite, "tasks": tuple(t.strip() for t in tasks.split(",")) if tasks else None,
             "seeds": parse_seeds(seeds) if seeds else None, "policy": policy, "roles": roles, "approve": approve,
             "max_steps": max_steps, "transitions": transitions,
             "policy_kwargs": json.dumps(kwargs) if kwargs else None,
             "search": search_settings(world_model, search_k, search_mode, search_scorer, search_margin,
                                               search_stop, search_done_check) or None}
    cfg = resolve_config(EvalConfig(), config, given)
    res = evaluate(cfg, out_dir=out, resume=resume, ray=ray, seed=seed)
    lo, hi = res.success_ci
    typer.echo(f"{cfg.suite}/{cfg.policy}{'+roles' if cfg.roles else ''}: success {res.success_rate:.1%} "
               f"[{lo:.1%}, {hi:.1%}] over {res.episodes} episodes; {res.mean_steps:.1f} steps; invalid actions "
               f"{res.invalid_rate:.1%}; {1000 * res.seconds_per_step:.0f} ms/step")
    typer.echo(f"wrote {res.run_dir}")


@app.command("tasks")
def tasks_cmd(
    suite: SuiteName = typer.Option(..., "--suite", help=SUITES.help("Task suite.")),
    group: str = typer.Option(None, "--group", help="MiniWoB: dom, visual or rule; apps: an app or L<n> prefix."),
) -> None:
    """List a suite's tasks (one per line)."""
    from parsimon.gui.evaluate import resolve_tasks

    for name in resolve_tasks(suite, group or "all"):
        typer.echo(name)


@app.command("list")
def list_cmd() -> None:
    """The suites and policies."""
    typer.echo("suites:")
    for name, text in SUITES.describe().items():
        typer.echo(f"  {name:10s} {text}")
    typer.echo("policies:")
    for name, text in POLICIES.describe().items():
        typer.echo(f"  {name:12s} {text}")


@app.command("mcp-serve")
def mcp_serve(
    approve: Approval = typer.Option("deny", "--approve", help="Irreversible actions: ask, deny or auto-approve."),
) -> None:
    """Serve the environments as MCP tools on stdio (start_task, observe, click, type_text, ...)."""
    from parsimon.gui.mcp_server import main

    main(["--approve", approve])


@app.command("crosscheck")
def crosscheck_cmd(
    tasks: str = typer.Option("click-button,enter-text,click-checkboxes,click-link,login-user", "--tasks",
                              help="MiniWoB tasks (comma-separated)."),
    seeds: str = typer.Option("0-1", "--seeds", help="Episode seeds, e.g. 0-2."),
    policy: PolicyName = typer.Option("rule", "--policy", help="The policy whose inputs are replayed."),
    out: Path = typer.Option(None, "--out", help="Write the rows as JSON here."),
) -> None:
    """Same inputs, same pages, same Chromium: our raw rewards beside BrowserGym's."""
    from parsimon.gui.evaluate import parse_seeds
    from parsimon.gui.peers import crosscheck

    rows = crosscheck([t.strip() for t in tasks.split(",") if t.strip()], list(parse_seeds(seeds)), policy=policy)
    for r in rows:
        typer.echo(f"{r['task']:22s} seed {r['seed']}: ours {r['ours_raw_reward']:+.2f}  browsergym "
                   f"{r['browsergym_raw_reward'] if r['browsergym_raw_reward'] is not None else 'n/a'}  "
                   f"{'agree' if r['agree'] else 'DIFFER'} {r['note']}")
    agree = sum(r["agree"] for r in rows)
    typer.echo(f"{agree}/{len(rows)} episodes agree")
    if out is not None:
        out.write_text(json.dumps(rows, indent=1))
