"""Playing episodes: one episode (:func:`run_episode`), a task list in this process (:func:`play_local`) or
spread over a Ray cluster (:func:`play_ray`).

Both dispatchers hand every finished episode to one callback, ``on_episode(episode)``, in this process; the
caller logs, charges and writes it there, so the two paths record the same things exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from parsimon.cta.base import CTAEnv, Episode, Policy, StepRecord
from parsimon.cta.registry import EnvSpec, get_env, get_prior, make_policy
from parsimon.errors import ConfigError

__all__ = ["play_local", "play_ray", "play_task", "run_episode"]

EpisodeSink = Callable[[Episode], None]


def run_episode(env: CTAEnv, policy: Policy, task: Any, *, spec: EnvSpec, prior: Any = None,
                seed: int | None = None, on_step: Callable[[StepRecord], None] | None = None) -> Episode:
    """Run one episode of ``policy`` on ``task`` and return it (the prior is passed only to policies
    that use one)."""
    obs, info = env.reset(seed=seed, options={"task": task})
    task = env.task
    policy.reset(spec.public_view(task), prior if policy.uses_prior else None, seed=seed)
    steps: list[StepRecord] = []
    actions: list[str] = []
    reward, done = 0.0, False
    while not done:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        rec = StepRecord(t=info["t"], action=action, observation=obs, reward=reward, valid=info["valid"],
                         costs=info["costs"], error=info["error"])
        steps.append(rec)
        actions.append(info.get("canonical_action") or action.strip())
        if on_step is not None:
            on_step(rec)
        done = terminated or truncated
    optimal = spec.oracle_actions(task)
    return Episode(task_id=env.task_id(task), actions=actions, reward=float(reward), steps=steps,
                   summary=dict(info["episode"]),
                   optimal=None if optimal is None else list(optimal), group=spec.group(task))


def play_task(spec: EnvSpec, env: CTAEnv, policy: Policy, task: Any, *, index: int, prior: str | None,
              seed: int) -> Episode:
    """Episode ``index`` of an evaluation: its prior drawn from ``rng([seed, index])``, seed ``seed + index``,
    the policy's counters during it in ``stats`` and ``summary["matched"]`` set where an optimum exists."""
    task = env.coerce_task(task)
    pr = (get_prior(spec.name, prior, task, np.random.default_rng([seed, index]))
          if prior is not None and policy.uses_prior else None)
    before = dict(policy.stats)
    ep = run_episode(env, policy, task, spec=spec, prior=pr, seed=seed + index)
    ep.index = index
    ep.stats = {k: v - before.get(k, 0) for k, v in policy.stats.items() if v != before.get(k, 0)}
    if ep.optimal is not None:  # compare what the environment says matters (QA: the retrieve decision)
        ep.summary["matched"] = float(spec.match_key(ep.actions) == spec.match_key(ep.optimal))
    return ep


def play_local(spec: EnvSpec, env: CTAEnv, policy: Policy, tasks: Sequence[Any], *, prior: str | None, seed: int,
               skip: set[int], on_episode: EpisodeSink, offset: int = 0) -> None:
    """Play every task not in ``skip`` (indices ``offset + i``) in this process."""
    for i, task in enumerate(tasks):
        if offset + i not in skip:
            on_episode(play_task(spec, env, policy, task, index=offset + i, prior=prior, seed=seed))


def _ray_chunk(env_name: str, policy_name: str, policy_kwargs: dict, tasks: list, prior: str | None,
               seed: int, offset: int, skip: list[int] | None = None) -> list[Episode]:
    """What one Ray worker runs: its own environment and policy over a slice of the tasks."""
    spec = get_env(env_name)
    out: list[Episode] = []
    play_local(spec, spec.make(), make_policy(env_name, policy_name, **policy_kwargs), tasks, prior=prior,
               seed=seed, skip=set(skip or ()), on_episode=out.append, offset=offset)
    return out


def _ray_init(address: str) -> Any:
    from parsimon.errors import require

    ray = require("ray", "ray", "distributed CTA evaluation")
    if not ray.is_initialized():
        try:
            ray.init(address=address, ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"could not start or reach a Ray cluster at `ray`={address!r}: {exc}. Use 'local' for "
                              "a local instance, 'auto' to join a running cluster (`ray start --head`), or "
                              "an address such as ray://host:10001") from None
    return ray


def play_ray(address: str, spec: EnvSpec, policy_name: str, policy_kwargs: dict, tasks: Sequence[Any], *,
             prior: str | None, seed: int, skip: set[int], on_episode: EpisodeSink, chunks: int = 8) -> None:
    """Play the tasks not in ``skip`` on Ray in ``chunks`` slices; ``on_episode`` runs here as slices finish."""
    ray = _ray_init(address)
    remote = ray.remote(_ray_chunk)
    bounds = np.linspace(0, len(tasks), max(1, min(chunks, len(tasks))) + 1).astype(int)
    pending = [remote.remote(spec.name, policy_name, policy_kwargs, list(tasks[a:b]), prior, seed, int(a),
                             sorted(i for i in skip if a <= i < b))
               for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ep in ray.get(ready[0]):
            on_episode(ep)
