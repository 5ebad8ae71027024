"""``parsimon gui wm``: collect transitions, train the learned world model and value function, evaluate.

Also the three options ``parsimon gui eval`` takes for test-time search (:data:`WORLD_MODEL_OPTION`,
:data:`SEARCH_K_OPTION`, :data:`SEARCH_MODE_OPTION`) and :func:`search_settings`, which turns them into
the evaluation's ``search`` setting. Only light modules are imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from parsimon.cliutil import choices, config_option, out_option, resolve_config, seed_option
from parsimon.gui.world_model.registry import WORLD_MODELS
from parsimon.gui.world_model.search import SCORERS, STOPS
from parsimon.gui.world_model.value import MODES

__all__ = ["SEARCH_DONE_CHECK_OPTION", "SEARCH_K_OPTION", "SEARCH_MARGIN_OPTION", "SEARCH_MODE_OPTION", "SEARCH_SCORER_OPTION", "SEARCH_STOP_OPTION",
           "WORLD_MODEL_OPTION", "ScorerName", "SearchMode", "StopRule", "WorldModelName", "app", "search_settings"]

app = typer.Typer(help="Computer-Using World Model: collect transitions (the data flywheel), train the learned "
                  "world model and the value function, evaluate world models on held-out tasks.",
                  no_args_is_help=True)

WorldModelName = choices(WORLD_MODELS)
SearchMode = choices(MODES)
ScorerName = choices(SCORERS)

WORLD_MODEL_OPTION = typer.Option(None, "--world-model", help="Search before acting with this world model "
                                  "(needs a policy that proposes candidates, e.g. --policy proposal). Default: no "
                                  "search.")
SEARCH_K_OPTION = typer.Option(5, "--search-k", min=1, help="Candidates imagined per step (CUWM: 5).")
SEARCH_MODE_OPTION = typer.Option("text", "--search-mode", help="What the scorer sees of each imagined outcome: "
                                  "none, text (the delta), render (the imagined screenshot), text+render.")
SEARCH_SCORER_OPTION = typer.Option("value", "--search-scorer", help="value (learned from outcomes; train it with "
                                    "`parsimon gui wm train`) or judge (the policy as judge, an LLM endpoint).")

SEARCH_MARGIN_OPTION = typer.Option(0.15, "--search-margin", min=0.0, help="How much more another candidate must "
                                    "score than the policy's first choice to replace it.")
StopRule = choices(STOPS)
SEARCH_STOP_OPTION = typer.Option("scored", "--search-stop", help="A stop the policy ranks first: scored like "
                                  "the other candidates (scored), by the value function's done model, the chance "
                                  "the task is done now (done), or taken as is (policy).")
SEARCH_DONE_CHECK_OPTION = typer.Option(None, "--search-done-check", min=0.0, max=1.0, metavar="P",
                                        help="Stop as soon as the value function's done model gives the task at "
                                        "least this chance of being done now (0: off; default: 0.5, chosen on "
                                        "the development seeds, whenever the value function has a done model).",
                                        show_default=False)


def search_settings(world_model: str | None, k: int, mode: str, scorer: str = "value", margin: float = 0.15,
                    stop: str = "scored", done_check: float | None = None) -> str:
    """The ``search`` setting of ``parsimon gui eval`` ("" without a world model)."""
    if not world_model:
        return ""
    settings = {"world_model": world_model, "k": k, "mode": mode, "scorer": scorer, "margin": margin}
    if stop != "scored":
        settings["stop"] = stop
    if done_check is not None:
        settings["done_check"] = done_check
    return json.dumps(settings, sort_keys=True)


def _seeds(text: str | None) -> tuple[int, ...] | None:
    from parsimon.gui.evaluate import parse_seeds

    return None if text is None else parse_seeds(text)


def _split(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(s.strip() for s in text.split(",") if s.strip())


StoreOption = typer.Option(None, "--store", metavar="DIR", help="Transition store folder, searched recursively for "
                           "transitions.jsonl (repeatable; run folders of `gui eval --transitions` count). Default: "
                           "$PARSIMON_HOME/gui/transitions.")


@app.command("collect")
def collect_cmd(
    suite: str = typer.Option(None, "--suite", help="Suite: miniwob, apps, mobile."),
    tasks: str = typer.Option(None, "--tasks", help="Tasks: names, a group (dom, rule) or an app prefix; default: "
                              "the suite's."),
    seeds: str = typer.Option(None, "--seeds", help="Episode seeds, e.g. 100-102 (default 100-102, apart from the "
                              "evaluation seeds 0-9)."),
    policies: str = typer.Option(None, "--policies", help="Policies that play, comma-separated (default "
                                 "rule,proposal,random)."),
    max_steps: int = typer.Option(None, "--max-steps", min=0, help="Decisions per episode (0: the task's limit)."),
    store: Path = typer.Option(None, "--store", metavar="DIR", help="Store folder the transitions go to (default "
                               "$PARSIMON_HOME/gui/transitions)."),
    seed: int = seed_option(),
    out: Path = out_option("gui wm collect"),
    config: Path = config_option(),
) -> None:
    """Play policies on tasks with the transition log on, adding to the store (the data flywheel)."""
    from parsimon.gui.world_model.collect import CollectConfig, collect

    cfg = resolve_config(CollectConfig(), config, {"suite": suite, "tasks": _split(tasks), "seeds": _seeds(seeds),
                                                   "policies": _split(policies), "max_steps": max_steps})
    res = collect(cfg, store, out_dir=out, seed=seed)
    typer.echo(f"{res['transitions']} transitions from {res['episodes']} episodes into {res['store']}")
    for p, r in res["success_rate"].items():
        typer.echo(f"  {p}: success {r:.1%}")


@app.command("train")
def train_cmd(
    store: list[Path] = StoreOption,
    model_dir: Path = typer.Option(None, "--model-dir", metavar="DIR", help="Where learned.pkl and value.pkl go "
                                   "(default $PARSIMON_HOME/gui/world_model, where search looks)."),
    value: bool = typer.Option(True, "--value/--no-value", help="Also fit the value function the search scores "
                               "with."),
    searched: list[Path] = typer.Option(None, "--searched", metavar="DIR", help="A store of the search's own "
                                        "episodes (repeatable): its transitions teach the value function's done "
                                        "model (whether the task is done now) and nothing else."),
    seed: int = seed_option(),
    out: Path = out_option("gui wm train"),
) -> None:
    """Retrain the learned world model (and the value function) on every transition in the store."""
    from parsimon.gui.world_model.train import train

    for d in searched or []:
        if not d.is_dir():
            raise typer.BadParameter(f"no such folder: {d}", param_hint="--searched")
    res = train([str(s) for s in store or []], model_dir=model_dir, value=value, out_dir=out, seed=seed,
                searched=[str(d) for d in searched or []])
    typer.echo(f"learned world model: {res['transitions']} transitions, {res['effects']} effects -> {res['model']}")
    if res.get("value"):
        typer.echo(f"value function: {res['value_rows']} rows -> {res['value']}")


@app.command("eval")
def eval_cmd(
    store: list[Path] = StoreOption,
    models: str = typer.Option(None, "--models", help=f"World models to score, comma-separated, from "
                               f"{WORLD_MODELS.names()} (default rule,learned; the learned one is fit on the "
                               "training tasks here)."),
    test_fraction: float = typer.Option(None, "--test-fraction", min=0.01, max=0.99, help="Share of tasks held "
                                        "out (default 0.3)."),
    render_samples: int = typer.Option(None, "--render-samples", min=0, help="Held-out transitions rendered per "
                                       "model for render fidelity (default 40; 0: none)."),
    oracle_samples: int = typer.Option(None, "--oracle-samples", min=0, help="Held-out transitions the oracle "
                                       "replays when --models names it (default 0)."),
    curve: str = typer.Option(None, "--curve", help="Training sizes of the learning curve, e.g. 50,100,400 (''"
                              " for none)."),
    seed: int = seed_option(),
    out: Path = out_option("gui wm eval"),
    config: Path = config_option(),
) -> None:
    """Score world models on held-out tasks: delta F1, exact match, calibration, render fidelity, learning curve."""
    from parsimon.gui.world_model.evaluate import WMEvalConfig, evaluate_world_models

    sizes = None if curve is None else tuple(int(x) for x in curve.split(",") if x.strip())
    cfg = resolve_config(WMEvalConfig(), config, {
        "store": tuple(str(s) for s in store) if store else None, "models": _split(models),
        "test_fraction": test_fraction, "render_samples": render_samples, "oracle_samples": oracle_samples,
        "curve": sizes})
    res = evaluate_world_models(cfg, out_dir=out, seed=seed)
    typer.echo(f"{res['train']} training and {res['test']} held-out transitions ({len(res['test_tasks'])} tasks)")
    for name, r in res["models"].items():
        typer.echo(f"  {name}: delta F1 {r['f1']:.3f}, exact {r['exact_real']:.3f} (real changes), "
                   f"no-op accuracy {r['noop_accuracy']:.3f}" + (f", ECE {r['ece']:.3f}" if "ece" in r else ""))
        for where, b in (r.get("by_store") or {}).items():
            typer.echo(f"    {where or '(elsewhere)'}: delta F1 {b['f1']:.3f} on {b['n']} transitions")
    for name, r in (res.get("render") or {}).items():
        if isinstance(r, dict) and "ssim_mean" in r:
            typer.echo(f"  render {name}: SSIM {r['ssim_mean']:.3f}, {r['identical']:.0%} pixel-identical")
    typer.echo(f"wrote {Path(res['run_dir']) / 'results.json'}")
