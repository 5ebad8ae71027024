"""Run a policy on a set of tasks and report the paper's metrics.

``evaluate(env, policy, tasks, *, prior=...) -> Metrics``. Every episode's actions go to the
proof-of-action log (``parsimon.governance``), every episode's environment actions to the cost ledger
(component ``cta.<env>``; LLM tokens are charged by the chat client itself), and, with ``out_dir``, the
trajectories to ``out_dir/trajectories.jsonl`` and the metrics to ``out_dir/metrics.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.cta.base import CTAEnv, Episode, Policy, StepRecord
from parsimon.cta.registry import EnvSpec, get_env, get_prior, make_policy

__all__ = ["Metrics", "evaluate", "read_trajectories", "run_episode", "summarise", "write_outputs"]


@dataclass
class Metrics:
    """The result of :func:`evaluate`.

    Attributes:
        env / policy / prior: what was run.
        n_tasks: number of episodes.
        mean_reward: average reward.
        match_rate: share of episodes whose actions equal the optimal policy's (None where no optimal
            policy is defined for the environment).
        per_rho: the same numbers per group (ρ for FILEREADING, γ bins for QA), keyed by the group value.
        summary: averages of every numeric episode-summary entry (turns, accuracy, U, C, retrieved ...).
        policy_stats: the policy's counters (parse failures, LLM calls, tokens ...), totals.
        episodes: the episodes themselves (not written to metrics.json; see trajectories.jsonl).
    """

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
        d = {k: v for k, v in asdict(self).items() if k != "episodes"}
        d["per_rho"] = {str(k): v for k, v in self.per_rho.items()}
        return d


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


def _resolve_env(env: str | EnvSpec | CTAEnv) -> tuple[EnvSpec, CTAEnv | None]:
    if isinstance(env, EnvSpec):
        return env, None
    if isinstance(env, CTAEnv):
        return get_env(env.name), env
    return get_env(env), None


def _resolve_tasks(spec: EnvSpec, tasks: Any, seed: int) -> list:
    if isinstance(tasks, (str, Path)):
        return list(spec.load(tasks))
    if isinstance(tasks, int) and not isinstance(tasks, bool):
        if tasks < 1:
            raise ValueError(f"`tasks` as a count must be >= 1, got {tasks}")
        return list(spec.generate(tasks, seed))
    if tasks is None:
        raise ValueError("`tasks` must be a list of tasks, a count, or a task file path")
    return list(tasks)


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


def _match_fix(spec: EnvSpec, ep: Episode) -> Episode:
    # Compare what the environment says matters (e.g. QA compares only the retrieve decision).
    if ep.optimal is not None:
        ep.summary["matched"] = float(spec.match_key(ep.actions) == spec.match_key(ep.optimal))
    return ep


def _episodes_for(spec: EnvSpec, env: CTAEnv, policy: Policy, tasks: list, prior: str | None,
                  seed: int, offset: int, audit: Any, ledger: Any, advance: Callable[[], None],
                  skip: set[int] | None = None, sink: Callable[[Episode], None] | None = None) -> list[Episode]:
    episodes = []
    for i, task in enumerate(tasks):
        index = offset + i
        if skip and index in skip:
            continue
        task = env.coerce_task(task)
        ep_seed = seed + index
        pr = get_prior(spec.name, prior, task, np.random.default_rng([seed, index])) \
            if (prior is not None and policy.uses_prior) else None
        tid = env.task_id(task)

        def log_step(rec: StepRecord, tid=tid) -> None:
            if audit is not None:
                audit.append(actor=f"cta.agent:{policy.name}", action="env.step", target=f"{spec.name}:{tid}",
                             args={"t": rec.t, "action": rec.action[:500]},
                             outcome="ok" if rec.valid else f"invalid: {rec.error}")

        before = dict(policy.stats)
        t0 = time.perf_counter()
        ep = run_episode(env, policy, task, spec=spec, prior=pr, seed=ep_seed, on_step=log_step)
        ep.index = index
        ep.stats = {k: v - before.get(k, 0) for k, v in policy.stats.items() if v != before.get(k, 0)}
        if ledger is not None:
            ledger.charge(component=f"cta.{spec.name}", actions=len(ep.steps), wall_s=time.perf_counter() - t0,
                          meta={"task_id": tid, "policy": policy.name, "costs": ep.steps[-1].costs if ep.steps else {}})
        ep = _match_fix(spec, ep)
        episodes.append(ep)
        if sink is not None:
            sink(ep)
        advance()
    return episodes


def _ray_chunk(env_name: str, policy_name: str, policy_kwargs: dict, tasks: list, prior: str | None,
               seed: int, offset: int, skip: list[int] | None = None) -> list[Episode]:
    spec = get_env(env_name)
    env = spec.make()
    policy = make_policy(env_name, policy_name, **policy_kwargs)
    return _episodes_for(spec, env, policy, tasks, prior, seed, offset, None, None, lambda: None,
                         skip=set(skip or ()))


def evaluate(env: str | EnvSpec | CTAEnv, policy: str | Policy, tasks: Any, *, prior: str | None = "default",
             seed: int = 0, out_dir: str | Path | None = None, policy_kwargs: dict | None = None,
             audit: bool = True, ledger: bool = True, ray: str | None = None, ray_chunks: int = 8,
             progress: Any = None, resume: bool = False) -> Metrics:
    """Evaluate ``policy`` on ``tasks`` in ``env`` and return :class:`Metrics`.

    Args:
        env: an environment name (``pandora``, ``qa``, ``filereading`` or a plug-in), its spec, or an
            environment instance (its ``name`` picks the spec; the instance is used as is).
        policy: a policy name registered for the environment, or a :class:`Policy`.
        tasks: a list of tasks, a count (that many generated tasks, seeded), or a task-file path.
        prior: the prior source (``true``, ``estimated``, ``released``, ``noisy``, ``uniform``,
            ``adversarial``, as the environment supports); ``"default"`` uses the environment's
            default; None gives every policy ``None``.
        seed: seeds task generation, prior noise and the per-episode seeds.
        out_dir: write ``metrics.json`` and ``trajectories.jsonl`` there.
        policy_kwargs: passed to the policy factory when ``policy`` is a name.
        audit / ledger: log every action to the proof-of-action log / charge the cost ledger.
        ray: a Ray address (``"auto"`` or ``"ray://host:port"``) to spread the tasks over a cluster in
            ``ray_chunks`` chunks (needs ``policy`` as a name; the ``ray`` package must be installed).
        progress: a callable ``progress(done, total)``, or a rich Progress, or None.
        resume: with ``out_dir``, keep the episodes already in ``out_dir/trajectories.jsonl`` (written one
            line per finished episode) and run only the missing tasks, e.g. after an interruption.
    """
    t_start = time.perf_counter()
    spec, env_obj = _resolve_env(env)
    if prior == "default":
        prior = spec.default_prior
    if prior is not None and prior not in spec.priors:
        raise ValueError(f"unknown prior source {prior!r} for env {spec.name!r}; choose from {sorted(spec.priors)}")
    task_list = _resolve_tasks(spec, tasks, seed)
    if not task_list:
        raise ValueError("`tasks` is empty")
    policy_kwargs = dict(policy_kwargs or {})
    if isinstance(policy, str):
        policy_name = policy
        pol = make_policy(spec.name, policy, **policy_kwargs) if ray is None else None
    elif isinstance(policy, Policy):
        if ray is not None:
            raise ValueError("`ray` needs `policy` given by name, so each worker can build its own")
        pol, policy_name = policy, policy.name
    else:
        raise TypeError(f"`policy` must be a policy name or a Policy, got {type(policy).__name__}")

    total = len(task_list)
    done = [0]
    bar = None
    if progress is not None and hasattr(progress, "add_task"):
        bar = progress.add_task(f"cta eval {spec.name}/{policy_name}", total=total)

    def advance() -> None:
        done[0] += 1
        if bar is not None:
            progress.advance(bar)
        elif callable(progress):
            progress(done[0], total)

    done_eps: dict[int, Episode] = {}
    traj = Path(out_dir) / "trajectories.jsonl" if out_dir is not None else None
    if resume:
        if traj is None:
            raise ValueError("`resume` needs `out_dir` (the trajectories to resume from)")
        done_eps = {e.index: e for e in read_trajectories(traj)} if traj.is_file() else {}
        chk = env_obj or spec.make()
        for idx, e in done_eps.items():
            if idx >= total or chk.task_id(chk.coerce_task(task_list[idx])) != e.task_id:
                raise ValueError(f"{traj} does not belong to these tasks (episode {idx} is {e.task_id!r}); "
                                 "use another --out or resume=False")
            advance()
        if traj.is_file():  # rewrite without a torn last line before appending
            _append_trajectories(traj, sorted(done_eps.values(), key=lambda e: e.index), fresh=True)

    if ray is not None:
        from parsimon.errors import require

        ray_mod = require("ray", "ray", "distributed CTA evaluation")
        if not ray_mod.is_initialized():
            try:
                ray_mod.init(address=ray, ignore_reinit_error=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                from parsimon.errors import ConfigError

                raise ConfigError(f"could not start or reach a Ray cluster at ray={ray!r}: {exc}. Use 'local' for "
                                  "a local instance, 'auto' to join a running cluster (`ray start --head`), or "
                                  "an address such as ray://host:10001") from exc
        remote = ray_mod.remote(_ray_chunk)
        n_chunks = max(1, min(ray_chunks, total))
        bounds = np.linspace(0, total, n_chunks + 1).astype(int)
        futures = [remote.remote(spec.name, policy_name, policy_kwargs, task_list[a:b], prior, seed, int(a),
                                 sorted(i for i in done_eps if a <= i < b))
                   for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        new = []
        for chunk in ray_mod.get(futures):
            new.extend(chunk)
            for _ in chunk:
                advance()
        # the workers do not share this process's governance store: log their actions and costs here
        from parsimon.governance import get_audit_log, get_ledger

        audit_log = get_audit_log() if audit else None
        led = get_ledger() if ledger else None
        for ep in new:
            for rec in ep.steps:
                if audit_log is not None:
                    audit_log.append(actor=f"cta.agent:{policy_name}", action="env.step",
                                     target=f"{spec.name}:{ep.task_id}", args={"t": rec.t, "action": rec.action[:500]},
                                     outcome="ok" if rec.valid else f"invalid: {rec.error}")
            if led is not None:
                led.charge(component=f"cta.{spec.name}", actions=len(ep.steps),
                           meta={"task_id": ep.task_id, "policy": policy_name, "ray": True})
        if traj is not None:
            _append_trajectories(traj, new, fresh=not resume)
    else:
        from parsimon.governance import get_audit_log, get_ledger, run_scope

        env_obj = env_obj or spec.make()
        sink = None
        if traj is not None:
            traj.parent.mkdir(parents=True, exist_ok=True)
            if not resume:
                traj.write_text("")

            def sink(ep: Episode) -> None:
                _append_trajectories(traj, [ep], fresh=False)

        with run_scope(workflow=f"cta.eval.{spec.name}"):
            new = _episodes_for(spec, env_obj, pol, task_list, prior, seed, 0,
                                get_audit_log() if audit else None, get_ledger() if ledger else None, advance,
                                skip=set(done_eps), sink=sink)
    episodes = sorted([*done_eps.values(), *new], key=lambda e: e.index)
    stats: dict[str, float] = {}
    for e in episodes:
        for k, v in e.stats.items():
            stats[k] = stats.get(k, 0) + v
    if bar is not None:
        progress.update(bar, visible=False)

    overall = summarise(episodes)
    groups: dict[Any, list[Episode]] = {}
    for e in episodes:
        if e.group is not None:
            groups.setdefault(e.group, []).append(e)
    per = {g: summarise(groups[g]) for g in sorted(groups, key=lambda x: (str(type(x)), x))}
    match_rate = overall["match_rate"]
    summary = {k: v for k, v in overall.items() if k not in ("n", "mean_reward", "match_rate")}
    metrics = Metrics(env=spec.name, policy=policy_name, prior=prior, n_tasks=len(episodes),
                      mean_reward=overall["mean_reward"], match_rate=match_rate, per_rho=per, summary=summary,
                      policy_stats=stats, seconds=time.perf_counter() - t_start, episodes=episodes)
    if out_dir is not None:
        write_outputs(metrics, out_dir)
    return metrics


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _row(e: Episode) -> dict[str, Any]:
    return _clean({"index": e.index, "task_id": e.task_id, "actions": e.actions, "reward": e.reward,
                   "optimal": e.optimal, "matched": e.summary.get("matched"), "group": e.group,
                   "summary": e.summary, "stats": e.stats, "steps": [asdict(s) for s in e.steps]})


def _append_trajectories(path: Path, episodes: list[Episode], *, fresh: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w" if fresh else "a") as fh:
        for e in episodes:
            fh.write(json.dumps(_row(e)) + "\n")
        fh.flush()


def read_trajectories(path: str | Path) -> list[Episode]:
    """Episodes from a ``trajectories.jsonl`` written by :func:`evaluate` (a torn last line is ignored)."""
    out = []
    lines = Path(path).read_text().splitlines()
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            if ln == len(lines):  # an interrupted write: that episode is simply re-run
                break
            raise ValueError(f"{path}:{ln}: not JSON: {exc}") from exc
        out.append(Episode(task_id=d["task_id"], actions=d["actions"], reward=d["reward"],
                           steps=[StepRecord(**s) for s in d["steps"]], summary=d["summary"], optimal=d["optimal"],
                           group=d["group"], stats=d.get("stats") or {}, index=d["index"]))
    return out


def write_outputs(metrics: Metrics, out_dir: str | Path, *, trajectories: bool = False) -> Path:
    """Write ``metrics.json`` (and, with ``trajectories``, ``trajectories.jsonl``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(_clean(metrics.to_dict()), indent=2, sort_keys=True))
    if trajectories:
        _append_trajectories(out / "trajectories.jsonl", metrics.episodes, fresh=True)
    return path
