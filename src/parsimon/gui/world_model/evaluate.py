"""``parsimon gui wm eval``: how well each world model predicts held-out transitions.

One :mod:`parsimon.run` run:

1. read the store; hold out the transitions of a share of the *tasks* (:func:`split_by_task`), so the
   scores are on tasks no model was fit on;
2. fit the learned model on the rest (and, for the learning curve, on growing prefixes of it: the
   flywheel adding transitions in the order runs logged them);
3. score every world model on the held-out transitions (:func:`score_models`): delta precision, recall,
   F1 and exact match on real changes, no-op accuracy, confidence calibration, seconds per prediction;
   a "no change" baseline (the trivial model) alongside;
4. render a sample of predictions and score them against the real next screenshots on the task area
   (SSIM, PSNR, mismatching pixels), with the true next DOM rendered as the renderer's own ceiling;
5. the oracle replays a sample of held-out transitions (it needs the browser and each episode's
   earlier actions, which the store has).

Outputs: ``results.json`` (everything), ``metrics.json`` (headline numbers), ``figures/learning_curve.png``,
``figures/calibration.png``.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["NoChangeModel", "WMEvalConfig", "evaluate_world_models", "learning_curve", "render_scores",
           "score_models", "split_by_task"]


@dataclass(frozen=True)
class WMEvalConfig:
    """What one world-model evaluation runs."""

    store: tuple[str, ...] = ()  # folders holding transitions.jsonl files (empty: the default store)
    models: tuple[str, ...] = ("rule", "learned")  # world models scored (names in WORLD_MODELS; oracle: sampled)
    test_fraction: float = 0.3  # share of tasks held out
    split_seed: int = 0  # which tasks are held out
    render_samples: int = 40  # held-out transitions rendered per model (0: no rendering)
    oracle_samples: int = 0  # held-out transitions the oracle replays (0: none; it needs the browser)
    curve: tuple[int, ...] = (25, 50, 100, 200, 400, 800)  # training sizes of the learning curve (empty: none)
    max_train: int = 0  # cap on training transitions (0: all)

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"`test_fraction` must lie in (0, 1), got {self.test_fraction}")
        for name in ("render_samples", "oracle_samples", "max_train"):
            if getattr(self, name) < 0:
                raise ConfigError(f"`{name}` must be >= 0, got {getattr(self, name)}")
        if any(n < 1 for n in self.curve):
            raise ConfigError(f"`curve` sizes must be >= 1, got {list(self.curve)}")
        if "oracle" in self.models and not self.oracle_samples:
            raise ConfigError("`models` names the oracle but `oracle_samples` is 0; give the number of held-out "
                              "transitions it should replay")


class NoChangeModel:
    """The trivial world model: every action changes nothing (the baseline a model has to beat)."""

    name = "no-change"

    def predict(self, obs: Any, action: Any, context: Any = None) -> Any:  # noqa: D102
        from parsimon.gui.world_model.base import Prediction
        from parsimon.gui.world_model.delta import Delta

        return Prediction(action, Delta([]), 0.5, self.name)

    def predict_many(self, obs: Any, actions: list, context: Any = None) -> list:  # noqa: D102
        return [self.predict(obs, a) for a in actions]


def held_out(task: str, fraction: float, seed: int = 0) -> bool:
    """Whether ``task`` is in the held-out share (a hash of the name: stable across runs and machines)."""
    return zlib.crc32(f"{seed}:{task}".encode()) % 10_000 < fraction * 10_000


def split_by_task(transitions: Iterable[Any], fraction: float, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """``(train, test)``: the transitions of held-out tasks go to ``test``."""
    train, test = [], []
    for t in transitions:
        (test if held_out(t.task, fraction, seed) else train).append(t)
    return train, test


def store_of(transition: Any, roots: list[Path]) -> str:
    """The store folder of ``roots`` that holds ``transition``'s log ("" when none does)."""
    source = Path(transition.source).resolve()
    return next((str(r) for r in roots if source.is_relative_to(r.resolve())), "")


def score_models(models: dict[str, Any], test: list[Any], roots: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Delta scores (real changes and no-ops), calibration and seconds per prediction of each model; the
    scores per suite, and per store folder when ``roots`` names more than one."""
    from parsimon.gui.world_model.delta import PageState
    from parsimon.gui.world_model.metrics import calibration, delta_scores, score_prediction, true_delta

    truths = [(PageState.from_observation(t.state), true_delta(PageState.from_observation(t.state),
                                                                PageState.from_observation(t.next_state)))
              for t in test]
    split = roots is not None and len(roots) > 1
    stores = [store_of(t, roots) for t in test] if split else [""] * len(test)
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        scores, conf, secs = [], [], []
        by_suite: dict[str, list] = {}
        by_store: dict[str, list] = {}
        for t, (before, truth), where in zip(test, truths, stores, strict=True):
            t0 = time.perf_counter()
            pred = model.predict(t.state, t.action)
            secs.append(time.perf_counter() - t0)
            s = score_prediction(before, pred.delta, truth)
            scores.append(s)
            conf.append(pred.confidence)
            by_suite.setdefault(t.suite, []).append(s)
            by_store.setdefault(where, []).append(s)
        cal = calibration(conf, [s.exact for s in scores])
        out[name] = {**delta_scores(scores), "ece": cal["ece"], "brier": cal["brier"], "reliability": cal["bins"],
                     "seconds": sum(secs) / max(len(secs), 1),
                     "by_suite": {k: delta_scores(v) for k, v in sorted(by_suite.items())}}
        if split:
            out[name]["by_store"] = {k: delta_scores(by_store[k]) for k in [*map(str, roots), ""] if k in by_store}
    return out


def render_scores(models: dict[str, Any], test: list[Any], samples: int, renderer: Any) -> dict[str, dict[str, Any]]:
    """Render fidelity of each model's predictions on ``samples`` held-out transitions (evenly spread),
    and of the true next DOM (``"true-dom"``: the renderer's own ceiling)."""
    import numpy as np

    from parsimon.gui.world_model.base import target_element
    from parsimon.gui.world_model.delta import PageState, apply
    from parsimon.gui.world_model.metrics import render_fidelity
    from parsimon.gui.world_model.render import task_box

    picked = [t for t in test if t.next_state.screenshot]
    if samples and len(picked) > samples:
        picked = [picked[int(i)] for i in np.linspace(0, len(picked) - 1, samples)]
    rows: dict[str, list[dict[str, float]]] = {"true-dom": []}
    flags: dict[str, int] = {}
    for t in picked:
        el = target_element(t.state, t.action)
        pointer = el.center if el is not None else None
        box = task_box(t.next_state)
        real = t.next_state.screenshot
        truth = renderer.render(PageState.from_observation(t.next_state), t.next_state.size, pointer=pointer)
        rows["true-dom"].append(render_fidelity(truth.png, real, box))
        for f in truth.flags:
            flags[f] = flags.get(f, 0) + 1
        before = PageState.from_observation(t.state)
        for name, model in models.items():
            pred = model.predict(t.state, t.action)
            res = renderer.render(apply(before, pred.delta, strict=False), t.state.size, pointer=pointer,
                                  delta=pred.delta, keyboard_focus=t.action.kind == "key")
            rows.setdefault(name, []).append({**render_fidelity(res.png, real, box), "flagged": float(bool(res.flags))})
    out = {}
    for name, rs in rows.items():
        if not rs:
            continue
        ssim = [r["ssim"] for r in rs]
        finite = [r["psnr"] for r in rs if np.isfinite(r["psnr"])]
        out[name] = {"n": len(rs), "ssim_mean": float(np.mean(ssim)), "ssim_median": float(np.median(ssim)),
                     "identical": float(np.mean([not np.isfinite(r["psnr"]) for r in rs])),
                     "psnr_median": float(np.median(finite)) if finite else float("nan"),
                     "mismatch_mean": float(np.mean([r["mismatch"] for r in rs])),
                     "share_ssim_095": float(np.mean([s >= 0.95 for s in ssim]))}
        flagged = [r for r in rs if r.get("flagged")]
        clean = [r for r in rs if not r.get("flagged")]
        if flagged and clean:
            out[name]["ssim_mean_flagged"] = float(np.mean([r["ssim"] for r in flagged]))
            out[name]["ssim_mean_unflagged"] = float(np.mean([r["ssim"] for r in clean]))
    out["flags"] = flags
    return out


def learning_curve(train: list[Any], test: list[Any], sizes: tuple[int, ...], config: Any = None,
                   progress: Any = None) -> list[dict[str, Any]]:
    """Delta F1 on ``test`` of the learned model fit on the first ``n`` training transitions, for each size."""
    from parsimon.gui.world_model.learned import LearnedWorldModel

    points = []
    for n in sorted({min(n, len(train)) for n in sizes}):
        model = LearnedWorldModel.fit(train[:n], config)
        s = score_models({"learned": model}, test)["learned"]
        points.append({"transitions": n, "f1": s["f1"], "exact_real": s["exact_real"],
                       "noop_accuracy": s["noop_accuracy"], "where_f1": s["where_f1"]})
        if progress is not None:
            progress.advance(1)
    return points


def oracle_scores(test: list[Any], samples: int) -> dict[str, Any]:
    """The oracle on ``samples`` held-out transitions: each replays its episode up to the step, then the action."""
    import numpy as np

    from parsimon.gui.registry import SUITES
    from parsimon.gui.world_model.base import Context
    from parsimon.gui.world_model.delta import PageState
    from parsimon.gui.world_model.metrics import delta_scores, score_prediction, true_delta
    from parsimon.gui.world_model.oracle import OracleWorldModel
    from parsimon.gui.world_model.value import _episodes

    eps = _episodes(test)
    items = [(ep, i) for ep in eps for i in range(len(ep)) if ep[i].suite in ("miniwob", "apps", "mobile")]
    if samples and len(items) > samples:
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, samples)]
    oracle = OracleWorldModel(screenshots=False)
    scores, matches, secs = [], 0, []
    try:
        for ep, i in items:
            t = ep[i]
            suite, _, name = t.task.partition("/")
            ctx = Context(task=SUITES.get(suite)().task(name), seed=t.seed, history=tuple(x.action for x in ep[:i]))
            pred = oracle.predict(t.state, t.action, ctx)
            secs.append(pred.seconds)
            matches += bool(pred.meta.get("replay_matches"))
            before = PageState.from_observation(t.state)
            scores.append(score_prediction(before, pred.delta,
                                           true_delta(before, PageState.from_observation(t.next_state))))
    finally:
        oracle.close()
    return {**delta_scores(scores), "replay_matches": matches / max(len(items), 1),
            "seconds": float(np.mean(secs)) if secs else 0.0}


def _plot(results: dict[str, Any], curve_png: Path, cal_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    pts = results.get("learning_curve") or []
    if pts:
        ax.plot([p["transitions"] for p in pts], [p["f1"] for p in pts], "o-", label="learned: delta F1")
        ax.plot([p["transitions"] for p in pts], [p["exact_real"] for p in pts], "s--", label="learned: exact match")
        rule = results["models"].get("rule")
        if rule:
            ax.axhline(rule["f1"], color="gray", ls=":", label="rule: delta F1")
        ax.set_xscale("log")
    ax.set_xlabel("training transitions (flywheel)")
    ax.set_ylabel("held-out tasks")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(curve_png, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3.2))
    ax.plot([0, 1], [0, 1], color="gray", ls=":")
    for name, r in results["models"].items():
        bins = r.get("reliability") or []
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
                    label=f"{name} (ECE {r['ece']:.2f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("exact-match rate")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(cal_png, dpi=110)
    plt.close(fig)


def evaluate_world_models(cfg: WMEvalConfig, *, out_dir: str | os.PathLike | None = None, seed: int = 0,
                          progress: bool = True, transitions: list[Any] | None = None) -> dict[str, Any]:
    """Run ``cfg`` as a run (see the module docstring); return the results."""
    from parsimon.gui.world_model.learned import LearnedWorldModel
    from parsimon.gui.world_model.registry import WORLD_MODELS
    from parsimon.gui.world_model.store import TransitionStore, default_store
    from parsimon.run import default_out, start_run

    for name in cfg.models:
        WORLD_MODELS.get(name)
    out = Path(out_dir) if out_dir is not None else default_out("gui wm eval")
    with start_run("gui wm eval", cfg, out_dir=out, seed=seed, progress=progress) as run:
        if transitions is None:
            store = TransitionStore([Path(s) for s in cfg.store] or [default_store()])
            with run.step("reading the transition store"):
                transitions = list(store.transitions(screenshots=cfg.render_samples > 0))
        train, test = split_by_task(transitions, cfg.test_fraction, cfg.split_seed)
        if cfg.max_train:
            train = train[: cfg.max_train]
        if not train or not test:
            raise ConfigError(f"the store has {len(transitions)} transitions, {len(train)} for training and "
                              f"{len(test)} held out; collect more (`parsimon gui wm collect`)")
        results: dict[str, Any] = {"train": len(train), "test": len(test),
                                   "train_tasks": sorted({t.task for t in train}),
                                   "test_tasks": sorted({t.task for t in test})}
        models: dict[str, Any] = {"no-change": NoChangeModel()}
        with run.step(f"fitting the learned model on {len(train)} transitions"):
            for name in cfg.models:
                if name == "learned":
                    models[name] = LearnedWorldModel.fit(train)
                elif name != "oracle":
                    models[name] = WORLD_MODELS.get(name)()
        with run.step(f"scoring {len(models)} models on {len(test)} held-out transitions"):
            results["models"] = score_models(models, test, [Path(x) for x in cfg.store])
        if cfg.render_samples:
            from parsimon.gui.world_model.render import Renderer

            renderer = Renderer()
            try:
                with run.step(f"rendering {cfg.render_samples} predictions per model"):
                    results["render"] = render_scores({k: v for k, v in models.items() if k != "no-change"}, test,
                                                      cfg.render_samples, renderer)
            finally:
                renderer.close()
        if "oracle" in cfg.models and cfg.oracle_samples:
            with run.step(f"oracle replays of {cfg.oracle_samples} transitions"):
                results["models"]["oracle"] = oracle_scores(test, cfg.oracle_samples)
        if cfg.curve:
            with run.progress("learning curve", total=len(cfg.curve)) as bar:
                results["learning_curve"] = learning_curve(train, test, cfg.curve, progress=bar)
        for m in (models.get("learned"),):
            if m is not None:
                results["learned_trained_on"] = {k: v for k, v in m.trained_on.items() if k != "effect_counts"}
        run.write_json("results.json", {"config": asdict(cfg), **results})
        flat = {}
        for name, r in results["models"].items():
            for k in ("f1", "precision", "recall", "exact_real", "noop_accuracy", "ece", "seconds"):
                if k in r:
                    flat[f"{name}/{k}"] = r[k]
        for name, r in (results.get("render") or {}).items():
            if isinstance(r, dict) and "ssim_mean" in r:
                flat[f"render/{name}/ssim_mean"] = r["ssim_mean"]
        run.set_metrics(train=len(train), test=len(test), **flat)
        _plot(results, run.figure("learning_curve.png"), run.figure("calibration.png"))
        results["run_dir"] = str(run.dir)
        return results
