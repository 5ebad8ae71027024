"""The paper's metrics over a set of episodes: mean reward, optimal-policy match rate, per-group breakdowns.

:func:`aggregate` turns finished :class:`~parsimon.cta.base.Episode` objects into :class:`Metrics`, the
result of :func:`parsimon.cta.evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from parsimon.cta.base import Episode
from parsimon.run import Result, config_to_dict, flatten_metrics

__all__ = ["Metrics", "aggregate", "json_ready", "summarise"]


@dataclass
class Metrics(Result):
    """The result of :func:`parsimon.cta.evaluate`; ``final`` is the mean reward.

    Attributes:
        env / policy / prior: what was run.
        n_tasks: number of episodes.
        mean_reward: average reward.
        match_rate: share of episodes whose actions equal the optimal policy's (None where no optimal
            policy is defined for the environment).
        per_rho: the same numbers per group (ρ for FILEREADING, γ bins for QA), keyed by the group value.
        summary: averages of every numeric episode-summary entry (turns, accuracy, U, C, retrieved ...).
        policy_stats: the policy's counters (parse failures, LLM calls, tokens ...), totals.
        seconds: wall seconds of the evaluation (this call; a resumed run counts only its own part).
        episodes: the episodes themselves (not in ``to_dict()``; see ``trajectories.jsonl``).
    """

    FINAL: ClassVar[str] = "mean_reward"

    env: str
    policy: str
    prior: str | None
    n_tasks: int
    mean_reward: float
    match_rate: float | None
    per_rho: dict[Any, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    policy_stats: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    episodes: list[Episode] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field but the episodes, JSON-ready (group keys as strings, NaN as None)."""
        return json_ready(config_to_dict({f.name: getattr(self, f.name) for f in fields(self) if f.name != "episodes"}))

    def flat(self) -> dict[str, Any]:
        """:meth:`to_dict` flattened with ``/`` (``per_rho/0.5/mean_reward``), as the run's ``metrics.json``."""
        return flatten_metrics(self.to_dict())

    def line(self) -> str:
        """One summary line: ``n=.. mean_reward=.. match_rate=..`` and the policy's counters."""
        mr = "n/a" if self.match_rate is None else f"{self.match_rate:.3f}"
        stats = " ".join(f"{k}={v:g}" for k, v in sorted(self.policy_stats.items()))
        return (f"{self.env}/{self.policy} prior={self.prior}: n={self.n_tasks} mean_reward={self.mean_reward:.4f} "
                f"match_rate={mr}" + (f" {stats}" if stats else ""))


def json_ready(x: Any) -> Any:
    """``x`` with NaN/inf as None, NumPy scalars as Python numbers, dict keys as strings, tuples as lists."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, np.generic):
        return json_ready(x.item())
    return x


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def summarise(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Averages over episodes: ``n``, ``mean_reward``, ``match_rate`` and every numeric summary entry."""
    out: dict[str, Any] = {"n": len(episodes), "mean_reward": _mean([e.reward for e in episodes])}
    matches = [float(e.summary["matched"]) for e in episodes if e.summary.get("matched") is not None]
    out["match_rate"] = _mean(matches) if matches else None
    keys: list[str] = []
    for e in episodes:
        for k, v in e.summary.items():
            if k not in keys and k not in ("reward", "matched") and isinstance(v, (int, float, bool)):
                keys.append(k)
    for k in keys:
        vals = [float(e.summary[k]) for e in episodes if isinstance(e.summary.get(k), (int, float, bool))]
        out[k] = _mean(vals)
    return out


def aggregate(episodes: Sequence[Episode], *, env: str, policy: str, prior: str | None,
              seconds: float = 0.0) -> Metrics:
    """:class:`Metrics` of ``episodes`` (sorted by their index), per group and overall."""
    episodes = sorted(episodes, key=lambda e: e.index)
    stats: dict[str, float] = {}
    for e in episodes:
        for k, v in e.stats.items():
            stats[k] = stats.get(k, 0) + v
    groups: dict[Any, list[Episode]] = {}
    for e in episodes:
        if e.group is not None:
            groups.setdefault(e.group, []).append(e)
    per = {g: summarise(groups[g]) for g in sorted(groups, key=lambda x: (str(type(x)), x))}
    overall = summarise(episodes)
    summary = {k: v for k, v in overall.items() if k not in ("n", "mean_reward", "match_rate")}
    return Metrics(env=env, policy=policy, prior=prior, n_tasks=len(episodes), mean_reward=overall["mean_reward"],
                   match_rate=overall["match_rate"], per_rho=per, summary=summary, policy_stats=stats,
                   seconds=seconds, episodes=list(episodes))
