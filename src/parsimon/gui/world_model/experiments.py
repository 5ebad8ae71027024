"""The search experiments behind the benchmark and the report: the same episodes under several searches.

:func:`search_table` plays every (task, seed) episode of a suite once per :class:`SearchSpec` (the
proposal policy alone, or wrapped in a search with a world model, K and a mode) on one browser, and
returns per spec: success with a 95% bootstrap interval, steps, irreversible actions executed (and how
many the instruction did not ask for), and the seconds of each step (decide + act + observe) and of
each decision. :func:`derived` turns the table into the search metrics: lift over the proposal policy,
share of the oracle's lift, regret against the oracle, success gain at equal K (world model vs none),
steps saved.

:func:`offline_match` is CUWM's own protocol on logged expert steps: propose K, imagine, pick, and
compare the pick with the expert's action (function, arguments, target within 25 px or inside the
box); its candidate coverage is the share of steps where any of the K candidates matches, and, measured
with the oracle, the share where any candidate really leads to the page the expert's action led to.

:func:`filmstrip` plays one episode with the learned model in render mode and keeps, per step, the
screen before, the imagined screen after the chosen action, and the real one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["APPS_SEARCH_TASKS", "MINIWOB_SEARCH_TASKS", "SearchSpec", "derived", "filmstrip", "offline_match",
           "search_table", "searched_round"]

# The MiniWoB task list of the search experiments: the DOM tasks whose expert (rule-policy) actions were
# all among the proposal policy's top-5 candidates on the collection seeds 100-101 (candidate coverage 1
# there), so that a search over those candidates can in principle solve them. Chosen once from the
# coverage measurement, before any search was run on the evaluation seeds.
MINIWOB_SEARCH_TASKS = (
    "buy-ticket", "click-button", "click-button-sequence", "click-checkboxes", "click-checkboxes-transfer",
    "click-collapsible", "click-collapsible-2", "click-collapsible-2-nodelay", "click-collapsible-nodelay",
    "click-dialog", "click-dialog-2", "click-link", "click-menu", "click-menu-2", "click-option", "click-scroll-list",
    "click-tab-2", "click-tab-2-easy", "click-tab-2-medium", "click-test", "click-test-2", "click-test-transfer",
    "enter-password", "enter-text", "enter-text-dynamic", "form-sequence-2", "form-sequence-3", "generate-number",
    "login-user", "odd-or-even", "unicode-test")
# The apps task list: the one- and two-operation slots 0 and 1 of every app (settings starts at two).
APPS_SEARCH_TASKS = tuple(f"{app}-L{n}-{k}" for app in ("todo", "inbox", "settings", "table", "checkout")
                          for n in (1, 2) for k in (0, 1) if not (app == "settings" and n == 1))


@dataclass(frozen=True)
class SearchSpec:
    """One row of the success table: the proposal policy alone (``world_model`` None, ``k`` 1) or searched."""

    label: str
    world_model: str | None = None
    k: int = 1
    mode: str = "none"
    seeds: tuple[int, ...] | None = None  # a subset of the table's seeds (the oracle is slow); None: all
    margin: float | None = None  # SearchConfig.margin (None: its default)
    stop: str | None = None  # SearchConfig.stop (None: its default)
    done_check: float | None = 0.0  # SearchConfig.done_check (0: off, as in the rows that name no check; None:
    # its default, on whenever the value function has a done model)


def _policy(spec: SearchSpec, value: Any, learned_path: str, env: Any, store: Any) -> Any:
    from parsimon.gui.policies.proposal import ProposalPolicy
    from parsimon.gui.world_model.search import SearchConfig, SearchPolicy, make_world_model

    if spec.k == 1 and spec.world_model is None:
        return ProposalPolicy()
    wm = None
    if spec.mode != "none":
        wm = make_world_model(spec.world_model, learned_path) if spec.world_model != "oracle" else \
            make_world_model("oracle", screenshots="render" in spec.mode)
    scorer = {k: v for k, v in (("margin", spec.margin), ("stop", spec.stop), ("done_check", spec.done_check))
              if v is not None}
    cfg = SearchConfig(world_model=spec.world_model or "learned", k=spec.k, mode=spec.mode, **scorer)
    return SearchPolicy(ProposalPolicy(), wm, cfg, value=value, session=lambda: env.session, store=store)


def search_table(suite: str, tasks: list[str], seeds: list[int], specs: list[SearchSpec], *, value: Any,
                 learned_path: str = "", store: Any = None, max_steps: int | None = None, progress: Any = None,
                 ci_resamples: int = 1000, recorder: Any = None) -> dict[str, dict[str, Any]]:
    """Play each spec on every (task, seed) of ``suite`` (see the module docstring); ``recorder``: a
    :class:`~parsimon.gui.transitions.TransitionRecorder` that logs every step (a searched round of the
    flywheel), None for none."""
    from parsimon.gui.evaluate import bootstrap_ci
    from parsimon.gui.registry import SUITES
    from parsimon.gui.world_model.collect import run_episodes

    env = SUITES.get(suite)().make_env()
    out: dict[str, dict[str, Any]] = {}
    try:
        for spec in specs:
            policy = _policy(spec, value, learned_path, env, store)
            try:
                def tick(_res: Any) -> None:
                    if progress is not None:
                        progress.advance(1)

                res = run_episodes(suite, [(t, s, policy) for t in tasks for s in (spec.seeds or seeds)], env=env,
                                   max_steps=max_steps, approve="auto", on_episode=tick, recorder=recorder)
            finally:
                log = list(getattr(policy, "log", []))
                policy.close()
            succ = [float(r.success) for r in res]
            step_s = [rec.seconds for r in res for rec in r.records if rec.action is not None]
            decide_s = [rec.decide_s for r in res for rec in r.records if rec.action is not None]
            irr = [(r, rec) for r in res for rec in r.records if rec.escalation is not None]
            asked = sum(1 for r, _ in irr if "pay" in r.goal.lower())
            per_task: dict[str, list[float]] = {}
            for r in res:
                per_task.setdefault(r.task.split("/", 1)[1], []).append(float(r.success))
            lo, hi = bootstrap_ci(succ, ci_resamples)
            out[spec.label] = {
                "world_model": spec.world_model, "k": spec.k, "mode": spec.mode, "episodes": len(res),
                "success_rate": statistics.fmean(succ) if succ else 0.0, "ci_low": lo, "ci_high": hi,
                "mean_steps": statistics.fmean([r.steps for r in res]) if res else 0.0,
                "mean_steps_solved": statistics.fmean([r.steps for r in res if r.success]) if any(succ) else 0.0,
                "irreversible_executed": len(irr), "irreversible_unrequested": len(irr) - asked,
                "irreversible_avoided": sum(x.get("irreversible_avoided", 0) for x in log),
                "step_s_median": statistics.median(step_s) if step_s else 0.0,
                "decide_s_median": statistics.median(decide_s) if decide_s else 0.0,
                "imagine_s_median": statistics.median([x["imagine_s"] for x in log]) if log else 0.0,
                "per_task": {t: statistics.fmean(v) for t, v in sorted(per_task.items())},
                "outcomes": {f"{r.task}#{r.seed}": int(r.success) for r in res},
                "steps": {f"{r.task}#{r.seed}": r.steps for r in res}}
    finally:
        env.close()
    return out


def searched_round(folder: Any, seeds: list[int], *, value: Any, learned_path: str,
                   tasks: dict[str, tuple[str, ...]] | None = None, log: Any = print) -> list[Any]:
    """One searched round of the flywheel: the learned text search (K=5) plays each suite's task list
    (``tasks``: suite -> tasks; default the two search lists) on ``seeds`` with every step logged into
    ``folder/<suite>``; returns the round's transitions (for ``ValueFunction.fit(done_transitions=...)``)."""
    from pathlib import Path

    from parsimon.gui.transitions import TransitionRecorder
    from parsimon.gui.world_model.store import TransitionStore

    folder = Path(folder)
    for suite, names in (tasks or {"miniwob": MINIWOB_SEARCH_TASKS, "apps": APPS_SEARCH_TASKS}).items():
        table = search_table(suite, list(names), list(seeds), [SearchSpec("learned text K=5", "learned", 5, "text")],
                             value=value, learned_path=learned_path, max_steps=10 if suite == "miniwob" else 12,
                             recorder=TransitionRecorder(folder / suite))
        log(f"searched round, {suite} seeds {list(seeds)}: success {table['learned text K=5']['success_rate']:.3f}")
    return list(TransitionStore(folder).transitions())


def derived(table: dict[str, dict[str, Any]], base: str = "proposal", learned: str = "learned text K=5",
            oracle: str = "oracle text K=5", none_at_k: str = "none K=5", resamples: int = 2000) -> dict[str, Any]:
    """Lift, share of the oracle's lift, regret, success gain at equal K and steps saved (see the module
    docstring), each on the episodes the compared rows share (the oracle may have run on fewer).

    The lifts and the gain at equal K come with a paired 95% bootstrap interval (``..._ci95``: ``[low,
    high]``, ``resamples`` resamples of the shared episodes' differences): both rows played the same
    episodes, so the interval of the difference is narrower than the two rows' own intervals suggest."""
    from parsimon.gui.evaluate import bootstrap_ci

    def sr(label: str, keys: set[str]) -> float:
        o = table[label]["outcomes"]
        return statistics.fmean(o[k] for k in keys) if keys else float("nan")

    def common(*labels: str) -> set[str]:
        keys = [set(table[x]["outcomes"]) for x in labels]
        return set.intersection(*keys) if keys else set()

    def ci(a: str, b: str, keys: set[str]) -> list[float] | None:
        """The paired interval of sr(a) - sr(b) over ``keys``."""
        if not keys:
            return None
        oa, ob = table[a]["outcomes"], table[b]["outcomes"]
        return list(bootstrap_ci([oa[k] - ob[k] for k in sorted(keys)], resamples=resamples))

    out: dict[str, Any] = {}
    if base in table and learned in table:
        keys = common(base, learned)
        out["lift_learned"] = sr(learned, keys) - sr(base, keys)
        out["lift_learned_ci95"] = ci(learned, base, keys)
        out["steps_saved_per_episode"] = (statistics.fmean(table[base]["steps"][k] for k in keys)
                                          - statistics.fmean(table[learned]["steps"][k] for k in keys))
    if base in table and oracle in table:
        keys = common(base, oracle, *([learned] if learned in table else []))
        out["episodes_with_oracle"] = len(keys)
        out["lift_oracle"] = sr(oracle, keys) - sr(base, keys)
        out["lift_oracle_ci95"] = ci(oracle, base, keys)
        if learned in table:
            lift = sr(learned, keys) - sr(base, keys)
            out["lift_learned_on_oracle_episodes"] = lift
            out["regret_vs_oracle"] = sr(oracle, keys) - sr(learned, keys)
            out["share_of_oracle_lift"] = lift / out["lift_oracle"] if out["lift_oracle"] > 0 else None
    if none_at_k in table and learned in table:
        keys = common(none_at_k, learned)
        out["gain_at_equal_k"] = sr(learned, keys) - sr(none_at_k, keys)
        out["gain_at_equal_k_ci95"] = ci(learned, none_at_k, keys)
    return out


def offline_match(episodes: list[list[Any]], models: dict[str, Any], value: Any, *, k: int = 5,
                  modes: tuple[str, ...] = ("none", "text"), oracle_steps: int = 0) -> dict[str, Any]:
    """CUWM's single-step action match on logged expert episodes (see the module docstring).

    Candidates are handled as in :class:`~parsimon.gui.world_model.search.SearchPolicy` (a terminal
    candidate is taken when the proposal ranks it first and dropped otherwise).

    Args:
        episodes: Expert episodes (lists of :class:`~parsimon.gui.world_model.store.Transition`).
        models: World models by name. ``"oracle"`` replays every candidate of ``oracle_steps`` steps
            (evenly spread) and also gives the oracle's coverage: the share of those steps where some
            candidate really leads to the page the expert's action led to.
        value: The value function that picks.
        k: Candidates per step.
        modes: ``none`` and/or ``text`` (the offline protocol does not render here).
        oracle_steps: How many steps the oracle replays (it costs a reset and a replay per candidate).
    """
    import numpy as np

    from parsimon.gui.policies.proposal import propose
    from parsimon.gui.registry import SUITES
    from parsimon.gui.world_model.base import Context
    from parsimon.gui.world_model.delta import PageState, apply
    from parsimon.gui.world_model.metrics import action_match, observable
    from parsimon.gui.world_model.value import Trail, value_features

    total = sum(len(ep) for ep in episodes)
    oracle_at = set(np.linspace(0, total - 1, oracle_steps).astype(int).tolist()) if oracle_steps and total else set()
    rows: dict[str, list[bool]] = {}
    covered: list[bool] = []
    oracle_covered: list[bool] = []
    top1: list[bool] = []
    step_no = -1
    for ep in episodes:
        history: list[Any] = []
        trail = Trail()
        for t in ep:
            step_no += 1
            trail.see(t.state)
            cands = propose(t.state, history, k + 1)
            if cands and not cands[0].action.terminal:
                cands = [c for c in cands if not c.action.terminal]
            cands = cands[:k]
            if not cands:
                history.append(t.action)
                trail.took(t.state, t.action)
                continue
            covered.append(any(action_match(c.action, t.action, t.state) for c in cands))
            top1.append(action_match(cands[0].action, t.action, t.state))
            for name, model in [(None, None)] + list(models.items()):
                if name == "oracle" and step_no not in oracle_at:
                    continue
                for mode in modes:
                    if (model is None) != (mode == "none"):
                        continue
                    preds = [None] * len(cands)
                    if model is not None and not cands[0].action.terminal:
                        ctx = None
                        if name == "oracle":
                            suite, _, task = t.task.partition("/")
                            ctx = Context(task=SUITES.get(suite)().task(task), seed=t.seed, history=tuple(history))
                        preds = model.predict_many(t.state, [c.action for c in cands], ctx)
                        if name == "oracle":
                            before = PageState.from_observation(t.state)
                            goal = observable(PageState.from_observation(t.next_state)).canonical()
                            oracle_covered.append(any(
                                observable(apply(before, p.delta, strict=False)).canonical() == goal for p in preds))
                    if cands[0].action.terminal or len(cands) == 1:
                        best = 0
                    else:
                        feats = [value_features(mode, t.state, c.action, score=c.score, rank=i, k=k, history=history,
                                                delta=p.delta if p else None, confidence=p.confidence if p else 1.0,
                                                trail=trail)
                                 for i, (c, p) in enumerate(zip(cands, preds, strict=True))]
                        scores = value.score(mode, feats)
                        best = max(range(len(cands)), key=lambda i: (scores[i], -i))
                    label = f"{name or 'no world model'} ({mode})"
                    rows.setdefault(label, []).append(action_match(cands[best].action, t.action, t.state))
                    if name == "oracle":
                        rows.setdefault("proposal top-1 on the oracle's steps", []).append(top1[-1])
            history.append(t.action)
            trail.took(t.state, t.action)
    n = len(covered)
    out: dict[str, Any] = {"steps": n, "coverage": sum(covered) / n if n else float("nan"),
                           "proposal_top1": sum(top1) / n if n else float("nan")}
    out.update({label: sum(v) / len(v) for label, v in rows.items() if v})
    if oracle_covered:
        out["oracle_steps"] = len(oracle_covered)
        out["coverage_oracle"] = sum(oracle_covered) / len(oracle_covered)
    return out


def filmstrip(suite: str, task: str, seed: int, *, value: Any, learned_path: str = "", max_steps: int = 6) -> list[dict[str, Any]]:
    """One episode searched with the learned model in render mode: per step the screen before, the imagined
    screen after the chosen action, the real one after it, and the action."""
    from parsimon.gui.policies.proposal import ProposalPolicy
    from parsimon.gui.registry import SUITES
    from parsimon.gui.world_model.search import SearchConfig, SearchPolicy, make_world_model

    env = SUITES.get(suite)().make_env()
    frames: list[dict[str, Any]] = []
    policy = SearchPolicy(ProposalPolicy(), make_world_model("learned", learned_path),
                          SearchConfig(k=5, mode="text+render", done_check=0.0), value=value,
                          session=lambda: env.session)
    imagined: dict[str, Any] = {}
    original = policy._imagine

    def keep(obs: Any, actions: list[Any]) -> list[Any]:
        preds = original(obs, actions)
        imagined.clear()
        imagined.update({repr(p.action): p for p in preds if p is not None})
        return preds

    policy._imagine = keep
    try:
        obs, info = env.reset(seed=seed, options={"task": SUITES.get(suite)().task(task)})
        policy.reset(info["goal"], info)
        for _ in range(max_steps):
            decision = policy.act(obs, info)
            action = decision.action
            pred = imagined.get(repr(action))
            nxt, _, term, trunc, info = env.step(action)
            frames.append({"action": action.describe(), "before": obs.screenshot,
                           "imagined": pred.image if pred is not None else None,
                           "summary": pred.delta.summary if pred is not None else "", "real": nxt.screenshot,
                           "goal": obs.goal, "success": bool(info.get("success"))})
            obs = nxt
            if term or trunc:
                break
    finally:
        policy.close()
        env.close()
    return frames
