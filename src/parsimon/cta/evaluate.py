"""Run a policy on a set of tasks and report the paper's metrics.

``evaluate(env, policy, tasks, *, prior=...) -> Metrics``. With ``out_dir`` the evaluation is a
:mod:`parsimon.run` run: ``config.json`` holds the resolved :class:`EvalConfig`, ``trajectories.jsonl`` one line
per finished episode (what ``resume`` continues from), ``metrics.json`` the flat metrics and ``result.json``
the nested :class:`~parsimon.cta.metrics.Metrics`. Every finished episode's actions go to the proof-of-action
log once and its environment actions to the cost ledger (component ``cta.<env>``; LLM tokens are charged by
the chat client itself), under the run's id.

The jobs, one function each: :func:`_resolve` (inputs → :class:`_Job` with its :class:`EvalConfig`),
:func:`_resume_from` (the episodes a resumed run keeps), :func:`_Recorder` (audit log, ledger, trajectories,
progress for each finished episode), :mod:`parsimon.cta.rollout` (in-process or Ray dispatch) and
:func:`parsimon.cta.metrics.aggregate`.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from parsimon.cta.base import CTAEnv, Episode, Policy
from parsimon.cta.metrics import Metrics, aggregate, summarise
from parsimon.cta.registry import EnvSpec, check_prior, get_env, make_policy, policy_entry
from parsimon.cta.rollout import play_local, play_ray, run_episode
from parsimon.cta.trajectories import TRAJECTORIES_FILE, append_trajectories, read_trajectories
from parsimon.errors import ConfigError

__all__ = ["EvalConfig", "Metrics", "evaluate", "evaluate_config", "read_trajectories", "run_episode", "summarise",
           "write_outputs"]

RESULT_FILE = "result.json"
DEFAULT_N = 100  # generated tasks when neither a task file nor a count is given (the paper's Pandora set size)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation, as ``parsimon cta eval`` and ``--config FILE`` give it; resolved into ``config.json``.

    The resolved form (what :func:`evaluate` records) has ``prior`` replaced by the environment's default
    where it was ``"default"``, ``n`` set to the number of tasks run, ``policy_kwargs`` holding the policy's
    plain-valued arguments and ``task_ids_sha256`` the fingerprint of the task list, so a resume with other
    tasks is refused.
    """

    env: str = ""  # environment: pandora, qa, filereading or a plug-in (required)
    policy: str = ""  # policy name, see `parsimon cta list` (required)
    tasks: str | None = None  # task file (our JSONL or the paper's released JSON); None: generated tasks
    n: int | None = None  # tasks to run: that many generated (default 100), or the task file's first n
    prior: str | None = "default"  # prior source; "default": the environment's; None: no policy gets a prior
    seed: int = 0  # seeds task generation, prior noise and the per-episode seeds (seed + index)
    data_root: str | None = None  # FILEREADING: folder holding the paper's task_csv_<id>/ folders
    base_url: str | None = None  # LLM endpoint of llm-* policies (default: $PARSIMON_LLM_BASE_URL or local)
    model: str | None = None  # LLM model name of llm-* policies
    max_tokens: int | None = None  # LLM completion budget per turn of llm-* policies
    ray: str | None = None  # Ray address ('local', 'auto', ray://host:port); None: in this process
    ray_chunks: int = 8  # slices the tasks are cut into on Ray
    audit: bool = True  # every action to the proof-of-action log
    ledger: bool = True  # every episode's actions to the cost ledger
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # resolved: the policy factory's arguments
    task_ids_sha256: str = ""  # resolved: fingerprint of the evaluated task ids, in order

    def __post_init__(self) -> None:
        for name in ("n", "max_tokens"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"`{name}` must be an integer >= 1, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"`seed` must be an integer, got {self.seed!r}")
        if isinstance(self.ray_chunks, bool) or not isinstance(self.ray_chunks, int) or self.ray_chunks < 1:
            raise ConfigError(f"`ray_chunks` must be an integer >= 1, got {self.ray_chunks!r}")

    def llm_kwargs(self) -> dict[str, Any]:
        """``base_url`` / ``model`` / ``max_tokens`` where given (the LLM policies' factory arguments)."""
        return {k: v for k, v in (("base_url", self.base_url), ("model", self.model),
                                  ("max_tokens", self.max_tokens)) if v is not None}


@dataclass
class _Job:
    """A resolved evaluation: the config to record, and the live objects it runs with."""

    config: EvalConfig
    spec: EnvSpec
    tasks: list
    env: CTAEnv | None = None  # None: built from the spec when needed
    policy: Policy | None = None  # None on Ray (each worker builds its own)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)  # may hold objects (a chat client)


def _plain(value: Any) -> Any:
    """A policy argument as recorded in config.json: plain values as they are, objects by type only (so a
    resume with an equivalent client is not refused for its address in memory)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"


def _resolve_tasks(spec: EnvSpec, tasks: Any, *, n: int | None, seed: int, data_root: str | None) -> list:
    if isinstance(tasks, (str, Path)):
        loaded = list(spec.load(tasks, data_root=data_root) if data_root is not None else spec.load(tasks))
        return loaded[:n] if n is not None else loaded
    if isinstance(tasks, bool) or tasks is None:
        raise ConfigError(f"`tasks` must be a list of tasks, a count, or a task file path, got {tasks!r}")
    if isinstance(tasks, int):
        if tasks < 1:
            raise ConfigError(f"`tasks` as a count must be >= 1, got {tasks}")
        return list(spec.generate(tasks, seed))
    out = list(tasks)
    return out[:n] if n is not None else out


def _resolve(env: str | EnvSpec | CTAEnv, policy: str | Policy, tasks: Any, cfg: EvalConfig,
             policy_kwargs: dict[str, Any]) -> _Job:
    """Inputs → a :class:`_Job`: the spec, the task list, the policy, and the config with everything resolved."""
    env_obj = env if isinstance(env, CTAEnv) else None
    spec = env if isinstance(env, EnvSpec) else get_env(env_obj.name if env_obj is not None else env)
    prior = spec.default_prior if cfg.prior == "default" else check_prior(spec.name, cfg.prior)
    task_list = _resolve_tasks(spec, tasks, n=cfg.n, seed=cfg.seed, data_root=cfg.data_root)
    if not task_list:
        raise ConfigError("`tasks` is empty")
    if isinstance(policy, str):
        policy_entry(spec.name, policy)  # the registry's error, before any work
        pol = make_policy(spec.name, policy, **policy_kwargs) if cfg.ray is None else None
        name = policy
    elif isinstance(policy, Policy):
        if cfg.ray is not None:
            raise ConfigError("`ray` needs `policy` given by name, so each worker can build its own")
        pol, name = policy, policy.name
    else:
        raise TypeError(f"`policy` must be a policy name or a Policy, got {type(policy).__name__}")
    ids_env = env_obj or spec.make()
    ids = "\n".join(ids_env.task_id(ids_env.coerce_task(t)) for t in task_list)
    config = replace(cfg, env=spec.name, policy=name, prior=prior, n=len(task_list),
                     tasks=str(tasks) if isinstance(tasks, (str, Path)) else None,
                     policy_kwargs={k: _plain(v) for k, v in sorted(policy_kwargs.items())},
                     task_ids_sha256=hashlib.sha256(ids.encode()).hexdigest())
    return _Job(config=config, spec=spec, tasks=task_list, env=ids_env, policy=pol, policy_kwargs=policy_kwargs)


def _resume_from(job: _Job, path: Path) -> dict[int, Episode]:
    """The finished episodes in a resumed run's trajectories (checked against the tasks), file rewritten
    without a torn last line."""
    if not path.is_file():
        return {}
    done = {e.index: e for e in read_trajectories(path)}
    for idx, e in done.items():
        if not 0 <= idx < len(job.tasks) or job.env.task_id(job.env.coerce_task(job.tasks[idx])) != e.task_id:
            raise ConfigError(f"{path} does not belong to these tasks (episode {idx} is {e.task_id!r}); "
                              "use another --out, or start without --resume")
    append_trajectories(path, sorted(done.values(), key=lambda e: e.index), fresh=True)
    return done


class _Recorder:
    """What happens to each finished episode, whichever process played it: its actions to the audit log
    (once), its environment actions to the ledger, its line to ``trajectories.jsonl``, a progress step."""

    def __init__(self, job: _Job, trajectories: Path | None, advance: Callable[[], None]) -> None:
        from parsimon.governance import get_audit_log, get_ledger

        self.job, self.trajectories, self.advance = job, trajectories, advance
        self.audit = get_audit_log() if job.config.audit else None
        self.ledger = get_ledger() if job.config.ledger else None
        self.episodes: list[Episode] = []

    def __call__(self, ep: Episode) -> None:
        env, policy = self.job.spec.name, self.job.config.policy
        if self.audit is not None:
            for rec in ep.steps:
                self.audit.append(actor=f"cta.agent:{policy}", action="env.step", target=f"{env}:{ep.task_id}",
                                  args={"t": rec.t, "action": rec.action[:500]},
                                  outcome="ok" if rec.valid else f"invalid: {rec.error}")
        if self.ledger is not None:
            # wall time is charged once, by the run; here only the environment's actions
            self.ledger.charge(component=f"cta.{env}", actions=len(ep.steps),
                               meta={"task_id": ep.task_id, "policy": policy, "episode": ep.index,
                                     "costs": ep.steps[-1].costs if ep.steps else {}})
        if self.trajectories is not None:
            append_trajectories(self.trajectories, [ep])
        self.episodes.append(ep)
        self.advance()


@contextlib.contextmanager
def _progress(desc: str, total: int, done: int, progress: Any, run: Any) -> Iterator[Callable[[], None]]:
    """An ``advance()`` for the episodes: the caller's rich-style progress, its ``callable(done, total)``, the
    run's progress (a bar on a terminal, periodic lines without one), or nothing (``progress=False``)."""
    count = [done]
    if progress is not None and progress is not False and hasattr(progress, "add_task"):
        task = progress.add_task(desc, total=total, completed=done)
        try:
            yield lambda: progress.advance(task)
        finally:
            progress.update(task, visible=False)
    elif callable(progress):
        def advance() -> None:
            count[0] += 1
            progress(count[0], total)

        yield advance
    elif progress is None and run is not None:
        with run.progress(desc, total=total) as bar:
            if done:
                bar.update(completed=done)
            yield bar.advance
    else:
        yield lambda: None


def _execute(job: _Job, *, run: Any, progress: Any) -> Metrics:
    """Play the job's missing episodes (resumed ones kept) and aggregate; with a run, write its files."""
    t0 = time.perf_counter()
    cfg = job.config
    traj = run.dir / TRAJECTORIES_FILE if run is not None else None
    done = _resume_from(job, traj) if run is not None and run.resumed else {}
    if traj is not None and not run.resumed:
        append_trajectories(traj, [], fresh=True)
    with _progress(f"cta eval {cfg.env}/{cfg.policy}", len(job.tasks), len(done), progress, run) as advance:
        record = _Recorder(job, traj, advance)
        if cfg.ray is None:
            play_local(job.spec, job.env, job.policy, job.tasks, prior=cfg.prior, seed=cfg.seed, skip=set(done),
                       on_episode=record)
        else:
            play_ray(cfg.ray, job.spec, cfg.policy, job.policy_kwargs, job.tasks, prior=cfg.prior, seed=cfg.seed,
                     skip=set(done), on_episode=record, chunks=cfg.ray_chunks)
    metrics = aggregate([*done.values(), *record.episodes], env=cfg.env, policy=cfg.policy, prior=cfg.prior,
                        seconds=time.perf_counter() - t0)
    if run is not None:
        run.set_metrics(metrics.flat())
        run.write_json(RESULT_FILE, metrics.to_dict())
    return metrics


def evaluate(env: str | EnvSpec | CTAEnv, policy: str | Policy, tasks: Any, *, prior: str | None = "default",
             seed: int = 0, n: int | None = None, data_root: str | Path | None = None,
             out_dir: str | Path | None = None, policy_kwargs: dict | None = None, audit: bool = True,
             ledger: bool = True, ray: str | None = None, ray_chunks: int = 8, progress: Any = None,
             resume: bool = False) -> Metrics:
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
        n: run only the first ``n`` tasks of a file or list.
        data_root: FILEREADING: where the task file's CSV folders are.
        out_dir: make the evaluation a run in this folder (config.json, events.jsonl, metrics.json,
            result.json, trajectories.jsonl); without it nothing is written.
        policy_kwargs: passed to the policy factory when ``policy`` is a name.
        audit / ledger: log every action to the proof-of-action log / charge the cost ledger.
        ray: a Ray address (``"local"``, ``"auto"`` or ``"ray://host:port"``) to spread the tasks over a
            cluster in ``ray_chunks`` chunks (needs ``policy`` as a name; the ``ray`` package must be installed).
        progress: a callable ``progress(done, total)``, a rich-style Progress, None (the run's progress when
            there is a run: a bar on a terminal, periodic plain lines without one) or False (none).
        resume: continue the run in ``out_dir``: its config must equal this one (the differing fields are
            named otherwise); the episodes already in its ``trajectories.jsonl`` are kept and only the
            missing tasks run.

    Raises:
        ConfigError: an unknown environment, policy or prior source (the message lists the accepted names),
            an unreadable task file, an empty task list, a resume with a different config.
    """
    cfg = EvalConfig(prior=prior, seed=seed, n=n, data_root=None if data_root is None else str(data_root), ray=ray,
                     ray_chunks=ray_chunks, audit=audit, ledger=ledger)
    job = _resolve(env, policy, tasks, cfg, dict(policy_kwargs or {}))
    if out_dir is None:
        if resume:
            raise ConfigError("`resume` needs `out_dir` (the run to continue)")
        from parsimon.governance import run_scope

        with run_scope(workflow=f"cta.eval.{job.spec.name}"):
            return _execute(job, run=None, progress=progress)
    from parsimon.run import start_run

    with start_run("cta eval", job.config, out_dir=out_dir, seed=seed, resume=resume,
                   workflow=f"cta.eval.{job.spec.name}", progress=progress is not False) as run:
        return _execute(job, run=run, progress=progress)


def evaluate_config(config: EvalConfig, *, out_dir: str | Path | None = None, resume: bool = False,
                    progress: Any = None, policy_kwargs: dict | None = None) -> Metrics:
    """:func:`evaluate` from an :class:`EvalConfig` (the command line's path; ``env`` and ``policy`` required)."""
    for name in ("env", "policy"):
        if not getattr(config, name):
            raise ConfigError(f"`--{name}` is required (on the command line or as `{name}` in --config)")
    tasks = config.tasks if config.tasks is not None else (config.n or DEFAULT_N)
    return evaluate(config.env, config.policy, tasks, prior=config.prior, seed=config.seed,
                    n=config.n if config.tasks is not None else None, data_root=config.data_root, out_dir=out_dir,
                    policy_kwargs={**config.llm_kwargs(), **(policy_kwargs or {})}, audit=config.audit,
                    ledger=config.ledger, ray=config.ray, ray_chunks=config.ray_chunks, progress=progress,
                    resume=resume)


def write_outputs(metrics: Metrics, out_dir: str | Path, *, trajectories: bool = False) -> Path:
    """Write ``metrics.json`` (flat, as a run's) and ``result.json`` (nested) into ``out_dir``, and with
    ``trajectories`` also ``trajectories.jsonl``; for results made without a run folder."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics.flat(), indent=1, sort_keys=True))
    (out / RESULT_FILE).write_text(json.dumps(metrics.to_dict(), indent=1, sort_keys=True))
    if trajectories:
        append_trajectories(out / TRAJECTORIES_FILE, metrics.episodes, fresh=True)
    return path
