"""``parsimon cta``: evaluate policies, plan optimal actions, list environments/policies/priors.

Only light modules are imported here; the environments load inside the commands.
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
from parsimon.cta.registry import BUILTIN_ENVS
from parsimon.errors import ConfigError

__all__ = ["COMMANDS", "app"]

app = typer.Typer(help="Calibrate-Then-Act: cost-aware exploration environments, optimal planners, LLM agents, "
                  "evaluation.", no_args_is_help=True)
COMMANDS = {"cta": app}


EnvName = choices(tuple(BUILTIN_ENVS))


@app.command("eval")
def eval_cmd(
    env: EnvName = typer.Option(None, "--env", help="Environment (required here or as `env` in --config)."),
    policy: str = typer.Option(None, "--policy", help="Policy of the environment, e.g. oracle, cta-planner, "
                               "llm-cta (`parsimon cta list` lists each environment's; required here or in "
                               "--config)."),
    tasks: Path = typer.Option(None, "--tasks", metavar="FILE", help="Task file: our JSON Lines (from `parsimon "
                               "cta generate`) or the paper's released JSON. Default: generated tasks."),
    n: int = typer.Option(None, "--n", min=1, help="Number of tasks: that many generated (default 100), or the "
                          "task file's first N."),
    prior: str = typer.Option(None, "--prior", help="Prior source (`parsimon cta list` lists each environment's: "
                              "true, estimated, released, noisy, uniform, adversarial); default: the "
                              "environment's."),
    seed: int = seed_option(None),
    base_url: str = typer.Option(None, "--base-url", help="LLM endpoint for llm-* policies (default: "
                                 "$PARSIMON_LLM_BASE_URL, else the local model server)."),
    model: str = typer.Option(None, "--model", help="LLM model name for llm-* policies."),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="LLM completion budget per turn of llm-* "
                                   "policies (default: the agent's)."),
    ray: str = ray_option(),
    data_root: Path = typer.Option(None, "--data-root", metavar="DIR", help="FILEREADING: folder holding the "
                                   "task_csv_<id>/ folders of the paper's released task file (default: beside it)."),
    out: Path = out_option("cta eval"),
    resume: bool = resume_option(),
    config: Path = config_option(),
) -> None:
    """Run POLICY on tasks of ENV as a run: OUT/config.json, metrics.json, result.json, trajectories.jsonl."""
    from parsimon.cta.evaluate import EvalConfig, evaluate_config
    from parsimon.cta.registry import policy_entry
    from parsimon.run import default_out

    cfg = resolve_config(EvalConfig(), config, {
        "env": env, "policy": policy, "tasks": None if tasks is None else str(tasks), "n": n, "prior": prior,
        "seed": seed, "base_url": base_url, "model": model, "max_tokens": max_tokens, "ray": ray,
        "data_root": None if data_root is None else str(data_root)})
    if not cfg.env or not cfg.policy:
        missing = "--env" if not cfg.env else "--policy"
        raise ConfigError(f"`{missing}` is required (on the command line or in --config)")
    if resume and out is None:
        raise ConfigError("`--resume` needs `--out`, the run folder to continue")
    if policy_entry(cfg.env, cfg.policy).needs_llm:
        _check_llm_endpoint(cfg.base_url, cfg.model)
    out = out if out is not None else default_out("cta eval")
    m = evaluate_config(cfg, out_dir=out, resume=resume)
    typer.echo(m.line())
    for g, d in m.per_rho.items():
        typer.echo(f"  {g}: n={d['n']} mean_reward={d['mean_reward']:.4f}")
    typer.echo(f"wrote {out / 'metrics.json'}")


def _check_llm_endpoint(base_url: str | None, model: str | None) -> None:
    """A local endpoint that does not answer is an error before any work (a remote one is tried as given)."""
    from parsimon.llm import LLMConfig, is_serving

    url = LLMConfig.resolve(base_url, model).base_url
    if url.startswith(("http://127.0.0.1", "http://localhost")) and not is_serving(url):
        raise ConfigError(f"no LLM endpoint answers at {url}: start the local model with `parsimon llm serve` "
                          "or pass --base-url")


@app.command("generate")
def generate_cmd(
    env: EnvName = typer.Option(..., "--env", help="Environment whose tasks to generate."),
    n: int = typer.Option(100, "--n", min=1, help="Number of tasks."),
    out: Path = typer.Option(..., "--out", metavar="FILE", help="Task file to write (JSON Lines), for "
                             "`parsimon cta eval --tasks FILE`."),
    seed: int = seed_option(),
) -> None:
    """Generate N seeded tasks of ENV into a task file (for `cta eval --tasks`)."""
    from parsimon.cta.registry import get_env

    spec = get_env(env)
    if spec.save is None:
        raise ConfigError(f"`--env` {env} has no task-file writer; `parsimon cta eval --env {env} --n N` "
                          "generates its tasks itself")
    spec.save(spec.generate(n, seed), out)
    typer.echo(f"wrote {n} {env} tasks to {out}")


@app.command("plan")
def plan_cmd(
    priors: str = typer.Option(None, "--priors", help="Pandora priors, e.g. 'A=0.3,B=0.45,C=0.25'."),
    gamma: float = typer.Option(None, "--gamma", min=0.0, max=1.0, help="Pandora / QA discount factor."),
    k_da: float = typer.Option(None, "--k-da", min=0.0, max=1.0, help="QA: P(correct) answering directly."),
    p_ret: float = typer.Option(None, "--p-ret", min=0.0, max=1.0, help="QA: P(correct) after retrieval."),
    exact: bool = typer.Option(False, "--exact", help="Pandora: exact fractions (ties commit)."),
) -> None:
    """The optimal action for given priors: Pandora (--priors --gamma) or QA (--k-da --p-ret --gamma)."""
    if gamma is None:
        raise typer.BadParameter("--gamma is required", param_hint="--gamma")
    if priors is not None:
        from parsimon.cta.pandora import closed_form_value, optimal_plan

        try:
            pr = {k.strip(): float(v) for k, v in (kv.split("=") for kv in priors.split(","))}
        except ValueError as exc:
            raise typer.BadParameter("use LABEL=P pairs separated by commas, e.g. A=0.3,B=0.7",
                                     param_hint="--priors") from exc
        try:
            value, action = optimal_plan(pr, gamma, exact=exact)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--priors") from exc
        typer.echo(json.dumps({"first_action": action, "value": value,
                               "closed_form_value": closed_form_value(pr, gamma)[0]}))
    elif k_da is not None and p_ret is not None:
        from parsimon.cta.qa.env import optimal_decision

        typer.echo(json.dumps({"action": optimal_decision(k_da, p_ret, gamma),
                               "value_answer": k_da, "value_retrieve": p_ret * gamma}))
    else:
        raise typer.BadParameter("give --priors (Pandora) or --k-da and --p-ret (QA)")


@app.command("list")
def list_cmd() -> None:
    """Environments, their policies and prior sources."""
    from parsimon.cta.registry import get_env, list_envs

    for name in list_envs():
        spec = get_env(name)
        typer.echo(f"{name}: {spec.describe}")
        typer.echo(f"  priors: {', '.join(spec.priors.names())} (default {spec.default_prior})")
        for pname, entry in spec.policies.items():
            typer.echo(f"  {pname:24s} {entry.description}")
