"""``parsimon cta``: evaluate policies, plan optimal actions, list environments/policies/priors.

Only light modules are imported here; the environments load inside the commands.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import typer

from parsimon.cliutil import choices
from parsimon.errors import ConfigError, DependencyNotInstalled
from parsimon.llm.structured import OUTPUT_MODES

__all__ = ["COMMANDS", "app"]

OutputMode = choices(OUTPUT_MODES)

app = typer.Typer(help="Calibrate-Then-Act: cost-aware exploration environments, optimal planners, LLM agents, "
                  "evaluation.", no_args_is_help=True)
COMMANDS = {"cta": app}


@app.command("eval")
def eval_cmd(
    env: str = typer.Option(..., "--env", help="Environment: pandora, qa, filereading (or a plug-in)."),
    policy: str = typer.Option(..., "--policy", help="Policy name (see `parsimon cta list`)."),
    out: Path = typer.Option(..., "--out", help="Output folder for metrics.json and trajectories.jsonl."),
    tasks: Path = typer.Option(None, "--tasks", help="Task file (our JSONL or the paper's released JSON)."),
    n: int = typer.Option(None, "--n", min=1, help="Number of tasks (generated if no --tasks; else the first N)."),
    prior: str = typer.Option(None, "--prior", help="Prior source: true, estimated, released, noisy, uniform, "
                              "adversarial (default: the environment's)."),
    seed: int = typer.Option(0, "--seed", help="Seed for task generation and prior noise."),
    base_url: str = typer.Option(None, "--base-url", help="LLM endpoint for llm-* policies (default: local)."),
    model: str = typer.Option(None, "--model", help="LLM model name for llm-* policies."),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="LLM completion budget per turn (default: 64 "
                                   "for pandora and qa, 384 for filereading; 512, and 1024 for filereading, with the "
                                   "-thinking policies)."),
    output: OutputMode = typer.Option("constrained", "--output", help="LLM policies: constrained (JSON replies "
                                      "constrained to the action space where the endpoint supports it, else parsed "
                                      "and re-asked once) or free (the paper's free text)."),
    ray: str = typer.Option(None, "--ray", help="Spread the tasks over Ray: local (a local instance), auto (a running cluster) or ray://host:port."),
    data_root: Path = typer.Option(None, "--data-root", help="FILEREADING: folder holding task_csv_<id>/ for the "
                                   "paper's released task files."),
    resume: bool = typer.Option(False, "--resume", help="Keep the episodes already in OUT/trajectories.jsonl."),
) -> None:
    """Run POLICY on tasks of ENV and write OUT/metrics.json (mean_reward, match_rate, n_tasks, per_rho)."""
    from rich.console import Console

    from parsimon.cta.evaluate import evaluate
    from parsimon.cta.registry import get_env
    from parsimon.progress import standard_progress

    try:
        spec = get_env(env)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--env") from exc
    if policy not in spec.policies:
        raise typer.BadParameter(f"unknown policy {policy!r} for {env}; choose from {sorted(spec.policies)}",
                                 param_hint="--policy")
    if prior is not None and prior not in spec.priors:
        raise typer.BadParameter(f"unknown prior {prior!r} for {env}; choose from {sorted(spec.priors)}",
                                 param_hint="--prior")
    if tasks is not None:
        if not tasks.is_file():
            raise typer.BadParameter(f"no such file: {tasks}", param_hint="--tasks")
        task_list = list(spec.load(tasks, data_root=data_root) if data_root is not None else spec.load(tasks))
        if n is not None:
            task_list = task_list[:n]
    else:
        task_list = spec.generate(n or 100, seed)
    kwargs = {}
    uses_llm = spec.policies[policy].needs_llm
    if uses_llm:
        kwargs = {k: v for k, v in (("model", model), ("max_tokens", max_tokens), ("output", output)) if v}
    console = Console(stderr=True)
    with ExitStack() as stack, standard_progress(console=console) as progress:
        if uses_llm:  # the default local endpoint starts the local model when nothing answers; others must answer
            from parsimon.llm.endpoint import ensure_endpoint

            kwargs["base_url"] = stack.enter_context(ensure_endpoint(base_url, model)).base_url
        try:
            m = evaluate(spec.name, policy, task_list, prior=prior if prior is not None else "default", seed=seed,
                         out_dir=out, policy_kwargs=kwargs, ray=ray, progress=progress, resume=resume)
        except (ConfigError, DependencyNotInstalled) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    mr = "n/a" if m.match_rate is None else f"{m.match_rate:.3f}"
    llm_part = _llm_summary(spec.name, policy, kwargs, m.policy_stats) if uses_llm else ""
    typer.echo(f"{env}/{policy} prior={m.prior}: n={m.n_tasks} mean_reward={m.mean_reward:.4f} match_rate={mr}"
               f"{llm_part}")
    for g, d in m.per_rho.items():
        typer.echo(f"  {g}: n={d['n']} mean_reward={d['mean_reward']:.4f}")
    typer.echo(f"wrote {out / 'metrics.json'}")
    calls, errors = m.policy_stats.get("llm_calls", 0), m.policy_stats.get("llm_errors", 0)
    if uses_llm and calls and errors == calls:
        from parsimon.errors import LLMError

        raise LLMError(f"every one of the {int(calls)} LLM calls failed (see {out / 'trajectories.jsonl'}); the "
                       "run is not a result")


def _llm_summary(env: str, policy: str, kwargs: dict, stats: dict) -> str:
    """`` parse_failures=P/N max_tokens=T output=... (modes)`` for the summary line of an LLM policy."""
    from parsimon.cta.registry import make_policy

    cap = getattr(make_policy(env, policy, **{k: v for k, v in kwargs.items() if k != "base_url"}), "max_tokens", "?")
    calls = int(stats.get("llm_calls", 0))
    modes = ", ".join(f"{k[len('replies_'):].replace('_', '-')} {int(v)}" for k, v in sorted(stats.items())
                      if k.startswith("replies_"))
    return (f" parse_failures={int(stats.get('parse_failures', 0))}/{calls} llm_errors={int(stats.get('llm_errors', 0))}"
            f" max_tokens={cap} output={kwargs.get('output', 'constrained')}" + (f" ({modes})" if modes else ""))


@app.command("generate")
def generate_cmd(
    env: str = typer.Option(..., "--env", help="Environment: pandora, qa, filereading (or a plug-in)."),
    n: int = typer.Option(100, "--n", min=1, help="Number of tasks."),
    out: Path = typer.Option(..., "--out", help="Task file to write (JSON Lines)."),
    seed: int = typer.Option(0, "--seed", help="Generation seed."),
) -> None:
    """Generate N seeded tasks of ENV into a task file (for `cta eval --tasks`)."""
    from parsimon.cta.registry import get_env

    try:
        spec = get_env(env)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--env") from exc
    if spec.save is None:
        raise typer.BadParameter(f"environment {env!r} has no task-file writer", param_hint="--env")
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
        typer.echo(f"  priors: {', '.join(sorted(spec.priors))} (default {spec.default_prior})")
        for pname, entry in sorted(spec.policies.items()):
            typer.echo(f"  {pname:24s} {entry.description}")
