"""The world model's share of the GUI report section: tables, figures and claims from fresh runs.

:func:`world_model_part` runs, in the reproduction's folder:

1. a collection (the flywheel's first turn): the rule, proposal and random policies on a few MiniWoB
   tasks and apps on seed 100 (quick) or more tasks and seeds 100-101 (``full``);
2. ``gui wm eval`` on it: held-out tasks, delta accuracy of the no-change, rule and learned models,
   calibration, render fidelity, the learning curve (and oracle replays with ``full``);
3. training on the whole store, then the proposal policy with and without search on evaluation seeds
   (none / text / render / text+render, K 3 and 5 with ``full``; the oracle with ``full``);
4. a filmstrip of one searched episode, real screens beside imagined ones.

:func:`extend_section` appends the part to the GUI section (the one call ``gui/reproduce.py`` makes).
Quick mode takes a few minutes on two cores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Part", "extend_section", "world_model_part"]

QUICK_MINIWOB = ("click-checkboxes", "click-collapsible", "click-tab-2", "enter-text", "login-user", "click-option",
                 "click-dialog", "click-link")
QUICK_APPS = ("todo-L1-0", "inbox-L1-0", "settings-L2-0", "checkout-L1-0")


@dataclass
class Part:
    """Tables, figures and claims for a report section (see :class:`parsimon.report.section.Section`)."""

    summary: str = ""
    claims: list[Any] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)
    not_reproduced: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def extend_section(section: Any, part: Part) -> Any:
    """Append ``part`` to a report :class:`~parsimon.report.section.Section` (summary, claims, tables, figures)."""
    section.summary = (section.summary + " " + part.summary).strip()
    section.claims.extend(part.claims)
    section.tables.extend(part.tables)
    section.figures.extend(part.figures)
    section.not_reproduced.extend(part.not_reproduced)
    section.config["world_model"] = part.config
    return section


def _filmstrip_figure(ctx: Any, frames: list[dict]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    n = max(len(frames), 1)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i, f in enumerate(frames):
        for j, key in enumerate(("before", "imagined", "real")):
            ax = axes[i][j]
            ax.axis("off")
            if f.get(key):
                ax.imshow(Image.open(io.BytesIO(f[key])).convert("RGB"))
            if i == 0:
                ax.set_title({"before": "before", "imagined": "imagined (learned model)", "real": "real"}[key],
                             fontsize=8)
        axes[i][0].text(0, -6, f"step {i + 1}: {f['action']}", fontsize=7)
    return ctx.save_figure(fig, "wm_filmstrip.png", "One episode searched with the learned world model: the screen "
                           "before each step, the imagined screen after the chosen action (its delta drawn with "
                           "scripts off) and the real screen after it.")


def _success_figure(ctx: Any, tables: dict[str, dict]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / max(len(tables), 1)
    for s, (suite, table) in enumerate(tables.items()):
        labels = list(table)
        rates = [table[k]["success_rate"] for k in labels]
        err = [[r - table[k]["ci_low"] for k, r in zip(labels, rates, strict=True)],
               [table[k]["ci_high"] - r for k, r in zip(labels, rates, strict=True)]]
        ax.bar([i + s * width for i in range(len(labels))], rates, width, yerr=err, capsize=2, label=suite)
        ax.set_xticks([i + width * (len(tables) - 1) / 2 for i in range(len(labels))])
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    return ctx.save_figure(fig, "wm_search_success.png", "Success of the proposal policy alone and with test-time "
                           "search (K candidates imagined by a world model and scored by the value function).")


def world_model_part(ctx: Any) -> Part:
    """Run the world-model reproduction (see the module docstring) and return its part of the section."""
    from parsimon.gui.policies.miniwob_rules import RULES
    from parsimon.gui.world_model.collect import CollectConfig, collect
    from parsimon.gui.world_model.evaluate import WMEvalConfig, evaluate_world_models
    from parsimon.gui.world_model.experiments import (
        APPS_SEARCH_TASKS,
        MINIWOB_SEARCH_TASKS,
        SearchSpec,
        derived,
        filmstrip,
        search_table,
    )
    from parsimon.gui.world_model.train import train
    from parsimon.gui.world_model.value import ValueFunction
    from parsimon.report.section import Claim, Figure, Table

    full = bool(ctx.full)
    root = Path(ctx.out_dir) / "world_model"
    store = root / "store"
    mw_collect = tuple(sorted(RULES)) if full else QUICK_MINIWOB
    apps_collect = APPS_SEARCH_TASKS if full else QUICK_APPS
    seeds_collect = (100, 101) if full else (100,)
    part = Part(config={"full": full, "collect_miniwob": list(mw_collect), "collect_apps": list(apps_collect),
                        "collect_seeds": list(seeds_collect)})
    with ctx.progress("world model: collecting transitions", total=2) as bar:
        for suite, tasks in (("miniwob", mw_collect), ("apps", apps_collect)):
            collect(CollectConfig(suite=suite, tasks=tasks, seeds=seeds_collect, max_steps=8), store,
                    out_dir=root / f"collect-{suite}", progress=False)
            bar.advance(1)
    with ctx.progress("world model: accuracy on held-out tasks", total=1) as bar:
        acc = evaluate_world_models(WMEvalConfig(
            store=(str(store),), models=("rule", "learned", "oracle") if full else ("rule", "learned"),
            render_samples=40 if full else 12, oracle_samples=30 if full else 0,
            curve=(25, 50, 100, 200, 400, 800) if full else (20, 60, 200)), out_dir=root / "wm-eval", progress=False)
        bar.advance(1)
    with ctx.progress("world model: training", total=1) as bar:
        trained = train([str(store)], model_dir=root / "models", out_dir=root / "train", progress=False)
        bar.advance(1)
    value = ValueFunction(trained["value"])
    mw_tasks = list(MINIWOB_SEARCH_TASKS) if full else list(QUICK_MINIWOB)
    seeds = [0, 1, 2] if full else [0, 1]
    specs = [SearchSpec("proposal"), SearchSpec("none K=5", None, 5, "none"),
             SearchSpec("learned text K=5", "learned", 5, "text")]
    if full:
        specs += [SearchSpec("none K=3", None, 3, "none"), SearchSpec("learned text K=3", "learned", 3, "text"),
                  SearchSpec("learned render K=5", "learned", 5, "render"),
                  SearchSpec("learned text+render K=5", "learned", 5, "text+render"),
                  SearchSpec("oracle text K=5", "oracle", 5, "text")]
    tables: dict[str, dict] = {}
    with ctx.progress("world model: search", total=len(mw_tasks) * len(seeds) * len(specs)) as bar:
        tables["miniwob"] = search_table("miniwob", mw_tasks, seeds, specs, value=value,
                                         learned_path=trained["model"], max_steps=10, progress=bar)
    if full:
        apps_specs = [SearchSpec("proposal"), SearchSpec("none K=5", None, 5, "none"),
                      SearchSpec("learned text K=5", "learned", 5, "text"),
                      SearchSpec("oracle text K=5", "oracle", 5, "text", seeds=(0,))]
        tables["apps"] = search_table("apps", list(APPS_SEARCH_TASKS), seeds, apps_specs, value=value,
                                      learned_path=trained["model"], max_steps=12)
    frames = filmstrip("miniwob", "click-tab-2", 1, value=value, learned_path=trained["model"], max_steps=4)

    models = acc["models"]
    part.tables.append(Table(
        "World-model accuracy on held-out tasks (delta ops on real changes; no-ops apart)",
        ["model", "precision", "recall", "F1", "exact match", "no-op accuracy", "ECE", "ms / prediction"],
        [[name, r["precision"], r["recall"], r["f1"], r["exact_real"], r["noop_accuracy"], r.get("ece", float("nan")),
          1000 * r["seconds"]] for name, r in models.items()],
        note=f"{acc['train']} training and {acc['test']} held-out transitions; tasks held out: "
             f"{len(acc['test_tasks'])}."))
    render = {k: v for k, v in (acc.get("render") or {}).items() if isinstance(v, dict) and "ssim_mean" in v}
    if render:
        part.tables.append(Table("Render fidelity on the task area (imagined vs real next screen)",
                                 ["drawn from", "n", "SSIM mean", "SSIM >= 0.95", "pixel-identical",
                                  "PSNR median of the others (dB)", "mismatching pixels"],
                                 [[k, v["n"], v["ssim_mean"], v["share_ssim_095"], v["identical"], v["psnr_median"],
                                   v["mismatch_mean"]] for k, v in render.items()],
                                 note="true-dom: the real next DOM drawn by the renderer (its own ceiling)."))
    if acc.get("learning_curve"):
        part.tables.append(Table("Flywheel learning curve (learned model, held-out tasks)",
                                 ["training transitions", "delta F1", "exact match", "no-op accuracy"],
                                 [[p["transitions"], p["f1"], p["exact_real"], p["noop_accuracy"]]
                                  for p in acc["learning_curve"]]))
    for suite, table in tables.items():
        d = derived(table)
        part.tables.append(Table(
            f"Search success, {suite} ({len(next(iter(table.values()))['per_task'])} tasks, seeds {seeds})",
            ["policy", "K", "mode", "success", "95% CI", "mean steps", "irreversible executed", "ms / step"],
            [[k, v["k"], v["mode"], v["success_rate"], f"{v['ci_low']:.2f}-{v['ci_high']:.2f}", v["mean_steps"],
              v["irreversible_executed"], 1000 * v["step_s_median"]] for k, v in table.items()],
            note="; ".join(f"{k} {v:+.3f}" if isinstance(v, float) else
                           f"{k} [{v[0]:+.3f}, {v[1]:+.3f}]" if isinstance(v, list) else f"{k} {v}"
                           for k, v in d.items())))
        part.metrics[suite] = d
    for name in ("learning_curve.png", "calibration.png"):
        p = Path(acc["run_dir"]) / "figures" / name
        if p.is_file():
            part.figures.append(Figure(p, {"learning_curve.png": "Learned world model: delta F1 and exact match on "
                                           "held-out tasks as the flywheel adds transitions.",
                                           "calibration.png": "Calibration: confidence vs exact-match rate."}[name]))
    part.figures.append(_success_figure(ctx, tables))
    part.figures.append(_filmstrip_figure(ctx, frames))
    learned = models.get("learned", {})
    mw = tables["miniwob"]
    lift = mw["learned text K=5"]["success_rate"] - mw["proposal"]["success_rate"]
    part.claims.append(Claim(
        "A world model used for test-time search over 5 candidates improves a frozen agent's choices.",
        "CUWM: +4 to +8 points action match (image mode, four backbones; secondary reports)",
        f"{100 * lift:+.1f} points task success on MiniWoB (learned model, text mode, K=5)",
        reproduced=lift > 0, note="Ours measures multi-step task success of the proposal policy; the paper "
        "measures single-step action match on Office transitions."))
    part.claims.append(Claim("Delta F1 >= 0.9 on held-out tasks (issue target)", "target",
                             f"{learned.get('f1', float('nan')):.3f}", reproduced=learned.get("f1", 0) >= 0.9))
    if render.get("learned"):
        part.claims.append(Claim("Rendered imagined screens: SSIM >= 0.95 (issue target)", "target",
                                 f"{render['learned']['ssim_mean']:.3f} (learned; true DOM "
                                 f"{render.get('true-dom', {}).get('ssim_mean', float('nan')):.3f})",
                                 reproduced=render["learned"]["ssim_mean"] >= 0.95))
    step = mw["learned text K=5"]["step_s_median"]
    part.claims.append(Claim("One search step (observe, propose 5, imagine 5, score, act) under 1 s on CPU",
                             "target", f"{step:.2f} s median", reproduced=step < 1.0))
    part.summary = ("World model (CUWM, arXiv 2602.17365): typed change-only deltas on the frozen DOM, rendered with "
                    "scripts off, used to search before acting; the learned model is a random forest over element "
                    "features fit to the transition store.")
    if not full:
        part.not_reproduced.append("World model (quick mode): no oracle runs, no apps search and K=5 text mode only; "
                                   "`parsimon reproduce --only gui --full` or benchmarks/wm_bench.py run them.")
    part.not_reproduced.append("CUWM's image-editing model (Qwen-Image-Edit) and its Office data are not available "
                               "offline: the visual stage draws the predicted DOM instead of generating pixels.")
    ctx.log_metrics({"world_model": {"f1_learned": learned.get("f1"), "lift_miniwob": lift, "step_s": step}})
    return part
