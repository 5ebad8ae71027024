"""The data flywheel's collection side: run policies on tasks with the transition log on, into a store.

:func:`run_episodes` plays (task, seed, policy) episodes on one browser per suite through the governed
agent loop (:func:`parsimon.gui.agent.run_episode`) and logs every step to a
:class:`~parsimon.gui.transitions.TransitionRecorder`. :func:`collect` does that as a
:mod:`parsimon.run` run whose transitions land in a store folder, so ``parsimon gui wm train`` sees
them next time. Any ``parsimon gui eval --transitions`` run feeds the store the same way.

Irreversible actions are approved automatically here (``approve="auto"``, recorded as such in the
proof-of-action log): the apps are local pages whose state lives in a throw-away browser context, and
a world model that never sees a payment cannot learn what one does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["CollectConfig", "collect", "run_episodes"]


@dataclass(frozen=True)
class CollectConfig:
    """What one collection runs."""

    suite: str = "miniwob"  # a name in parsimon.gui.registry.SUITES
    tasks: tuple[str, ...] = ()  # empty: the suite's default tasks
    seeds: tuple[int, ...] = tuple(range(100, 103))  # disjoint from the evaluation seeds 0-9
    policies: tuple[str, ...] = ("rule", "proposal", "random")  # names in POLICIES (no model needed)
    max_steps: int = 0  # decisions per episode; 0: the task's own limit

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("`seeds` must not be empty")
        if not self.policies:
            raise ConfigError("`policies` must not be empty")
        if self.max_steps < 0:
            raise ConfigError(f"`max_steps` must be >= 0, got {self.max_steps}")


def run_episodes(suite_name: str, episodes: Iterable[tuple[str, int, Any]], *, recorder: Any = None,
                 max_steps: int | None = None, approve: str = "auto",
                 on_episode: Callable[[Any], None] | None = None, env: Any = None) -> list[Any]:
    """Run ``(task, seed, policy)`` episodes on one environment; return their
    :class:`~parsimon.gui.agent.EpisodeResult` objects.

    Args:
        suite_name: The suite (one environment serves all its tasks).
        episodes: ``(task name, seed, policy object)`` triples.
        recorder: A transition recorder (None: no log).
        max_steps: Decisions per episode (None: the task's limit).
        approve: ``auto``, ``deny`` or ``ask`` for irreversible actions.
        on_episode: Called with each result as it finishes.
        env: An environment to reuse (None: the suite's, closed at the end).
    """
    from parsimon.governance import get_audit_log
    from parsimon.gui.agent import run_episode
    from parsimon.gui.registry import SUITES

    suite = SUITES.get(suite_name)()
    own = env is None
    env = env if env is not None else suite.make_env()
    out = []
    try:
        audit = get_audit_log()
        for name, seed, policy in episodes:
            res = run_episode(env, policy, suite.task(name), seed, approve=approve, audit=audit, recorder=recorder,
                              max_steps=max_steps)
            out.append(res)
            if on_episode is not None:
                on_episode(res)
    finally:
        if own:
            env.close()
    return out


def collect(cfg: CollectConfig, store: str | os.PathLike | None = None, *, out_dir: str | os.PathLike | None = None,
            seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run ``cfg`` as a run and log its transitions into ``store`` (default the store in ``$PARSIMON_HOME``).

    Returns:
        ``{"transitions": n, "episodes": n, "success_rate": {policy: rate}, "store": path, "run_dir": path}``.
    """
    from parsimon.gui.evaluate import make_policy, resolve_tasks
    from parsimon.gui.registry import POLICIES
    from parsimon.gui.transitions import TransitionRecorder
    from parsimon.gui.world_model.store import TransitionStore, default_store
    from parsimon.run import default_out, start_run

    tasks = resolve_tasks(cfg.suite, cfg.tasks)
    store_root = Path(store) if store is not None else default_store()
    out = Path(out_dir) if out_dir is not None else default_out("gui wm collect")
    with start_run("gui wm collect", cfg, out_dir=out, seed=seed, progress=progress) as run:
        folder = TransitionStore(store_root).run_dir(f"{cfg.suite}-{run.id}")
        recorder = TransitionRecorder(folder)
        policies = {name: make_policy(name, {"seed": seed} if getattr(POLICIES.get(name), "seeded", False) else {})
                    for name in cfg.policies}
        wins: dict[str, list[float]] = {name: [] for name in cfg.policies}
        plan = [(t, s, p) for t in tasks for s in cfg.seeds for p in cfg.policies]
        with run.progress(f"collect {cfg.suite}", total=len(plan)) as bar:
            def done(res: Any) -> None:
                bar.advance(1)

            eps = [(t, s, policies[p]) for t, s, p in plan]
            results = run_episodes(cfg.suite, eps, recorder=recorder, max_steps=cfg.max_steps or None,
                                   on_episode=done)
        for (_, _, p), res in zip(plan, results, strict=True):
            wins[p].append(float(res.success))
        for pol in policies.values():
            pol.close()
        n = len(TransitionStore(folder))
        rates = {p: (sum(v) / len(v) if v else 0.0) for p, v in wins.items()}
        run.set_metrics(transitions=n, episodes=len(results), **{f"success/{p}": r for p, r in rates.items()})
        return {"transitions": n, "episodes": len(results), "success_rate": rates, "store": str(folder),
                "run_dir": str(run.dir)}
