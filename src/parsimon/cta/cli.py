"""``parsimon cta``: evaluate policies, plan optimal actions, list environments/policies/priors.

Only light modules are imported here; the environments load inside the commands.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
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
from parsimon.llm.structured import OUTPUT_MODES

__all__ = ["COMMANDS", "app"]

OutputMode = choices(OUTPUT_MODES)

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
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="LLM completion budget per turn (default: 64 "
                                   "for pandora and qa, 384 for filereading; 512, and 1024 for filereading, with the "
                                   "-thinking policies)."),
    output: OutputMode = typer.Option("constrained", "--output", help="LLM policies: constrained (JSON replies "
                                      "constrained to the action space where the endpoint supports it, else parsed "
                                      "and re-asked once) or free (the paper's free text)."),
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
        "output": output, "data_root": None if data_root is None else str(data_root)})
    if not cfg.env or not cfg.policy:
        missing = "--env" if not cfg.env else "--policy"
        raise ConfigError(f"`{missing}` is required (on the command line or in --config)")
    if resume and out is None:
        raise ConfigError("`--resume` needs `--out`, the run folder to continue")
    out = out if out is not None else default_out("cta eval")
    uses_llm = policy_entry(cfg.env, cfg.policy).needs_llm
    with ExitStack() as stack:
        extra = {}
        if uses_llm:  # the default local endpoint starts the local model when nothing answers; others must answer
            from parsimon.llm.endpoint import ensure_endpoint

            extra["base_url"] = stack.enter_context(ensure_endpoint(cfg.base_url, cfg.model)).base_url
        m = evaluate_config(cfg, out_dir=out, resume=resume, policy_kwargs=extra)
    typer.echo(m.line() + (_llm_summary(cfg, m.policy_stats) if uses_llm else ""))
    for g, d in m.per_rho.items():
        typer.echo(f"  {g}: n={d['n']} mean_reward={d['mean_reward']:.4f}")
    typer.echo(f"wrote {out / 'metrics.json'}")
    calls, errors = m.policy_stats.get("llm_calls", 0), m.policy_stats.get("llm_errors", 0)
    if uses_llm and calls and errors == calls:
        from parsimon.errors import LLMError

        raise LLMError(f"every one of the {int(calls)} LLM calls failed (see {out / 'trajectories.jsonl'}); the "
                       "run is not a result")


def _llm_summary(cfg, stats: dict) -> str:
    """`` parse_failures=P/N max_tokens=T output=... (modes)`` for the summary line of an LLM policy."""
    from parsimon.cta.registry import make_policy

    kwargs = {k: v for k, v in cfg.llm_kwargs().items() if k != "base_url"}
    cap = getattr(make_policy(cfg.env, cfg.policy, **kwargs), "max_tokens", "?")
    calls = int(stats.get("llm_calls", 0))
    modes = ", ".join(f"{k[len('replies_'):].replace('_', '-')} {int(v)}" for k, v in sorted(stats.items())
                      if k.startswith("replies_"))
    return (f" parse_failures={int(stats.get('parse_failures', 0))}/{calls} llm_errors={int(stats.get('llm_errors', 0))}"
            f" max_tokens={cap} output={cfg.output}" + (f" ({modes})" if modes else ""))


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
