"""``parsimon gui eval``: a policy on a suite's tasks and seeds, as one governed run.

The run folder (see :mod:`parsimon.run`) gets ``episodes.jsonl`` (one line per finished episode; a
resumed run skips the episodes already there), ``steps.jsonl`` (every decision), ``results.json`` (per
task: success rate with a 95% bootstrap interval over seeds, mean steps, invalid-action rate, seconds
per step), ``metrics.json`` (the same overall), ``figures/success.png`` and ``figures/step_time.png``,
and with ``transitions=True`` the transition log under ``transitions/``.

Episodes run in this process on one browser, or spread over Ray (``ray="local"``, ``"auto"`` or an
address): each worker starts its own browser and runs a chunk of episodes under the run's id.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.run import Result

__all__ = ["EvalConfig", "EvalResult", "bootstrap_ci", "evaluate", "make_policy", "parse_seeds", "resolve_tasks"]


@dataclass(frozen=True)
class EvalConfig:
    """What one evaluation runs."""

    suite: str = "miniwob"  # miniwob | apps | mobile | desktop
    tasks: tuple[str, ...] = ()  # empty: the suite's default tasks
    seeds: tuple[int, ...] = tuple(range(10))  # episode seeds per task
    policy: str = "rule"  # a name in POLICIES
    policy_kwargs: str = "{}"  # JSON object of policy arguments (base_url, model, ...)
    roles: bool = False  # wrap the policy in the manager/reflector/notetaker roles
    approve: str = "ask"  # irreversible actions and interact: ask (refused without a person) | deny | auto
    max_steps: int = 0  # decisions per episode; 0: the task's own limit
    transitions: bool = False  # write the (state, action, next state) log
    feedback: str = "adaptive"  # verbosity policy of the feedback events
    ci_resamples: int = 2000  # bootstrap resamples for the 95% intervals
    search: str = ""  # JSON object of world-model search settings (SearchConfig); "": the policy acts alone

    def __post_init__(self) -> None:
        from parsimon.gui.agent import APPROVALS

        if self.approve not in APPROVALS:
            raise ConfigError(f"`approve` must be one of {list(APPROVALS)}, got {self.approve!r}")
        if not self.seeds:
            raise ConfigError("`seeds` must not be empty")
        if self.max_steps < 0:
            raise ConfigError(f"`max_steps` must be >= 0, got {self.max_steps}")
        try:
            kwargs = json.loads(self.policy_kwargs)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"`policy_kwargs` must be a JSON object, got {self.policy_kwargs!r} ({exc.msg})") from None
        if not isinstance(kwargs, dict):
            raise ConfigError(f"`policy_kwargs` must be a JSON object, got {self.policy_kwargs!r}")
        if self.search:
            from parsimon.gui.world_model.search import search_config

            search_config(self.search)


@dataclass
class EvalResult(Result):
    """The outcome of :func:`evaluate` (``final``: the overall success rate)."""

    FINAL = "success_rate"
    success_rate: float = 0.0
    success_ci: tuple[float, float] = (0.0, 0.0)
    episodes: int = 0
    mean_steps: float = 0.0
    invalid_rate: float = 0.0
    seconds_per_step: float = 0.0
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_dir: str = ""


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-9"``, ``"1,3,5"`` or ``"0-4,10"`` as a tuple of ints."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ConfigError(f"`--seeds` range {part!r} runs backwards")
            seeds.extend(range(a, b + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ConfigError(f"`--seeds` must look like 0-9 or 1,3,5, got {text!r}")
    return tuple(dict.fromkeys(seeds))


def resolve_tasks(suite_name: str, spec: str | tuple | list | None) -> tuple[str, ...]:
    """Task names from ``"a,b"``, ``"all"``, ``"default"``, a MiniWoB group (``dom``, ``visual``,
    ``rule``: those with a rule), or an apps prefix (``todo``, ``L3``)."""
    from parsimon.gui.registry import SUITES

    suite = SUITES.get(suite_name)()
    names = suite.task_names()
    if spec is None or spec == "" or spec == "default" or spec == ():
        return tuple(suite.default_tasks())
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    out: list[str] = []
    for item in items:
        if item == "all":
            out.extend(names)
        elif suite_name == "miniwob" and item in ("dom", "visual", "rule"):
            from parsimon.gui.policies.miniwob_rules import RULES
            from parsimon.gui.suites.miniwob import VISUAL_TASKS, dom_tasks

            out.extend(dom_tasks() if item == "dom" else sorted(VISUAL_TASKS) if item == "visual" else sorted(RULES))
        elif item in names:
            out.append(item)
        else:
            hits = [n for n in names if n.startswith(item + "-") or f"-{item}-" in n]
            if not hits:
                raise ConfigError(f"`--tasks`: {item!r} is not a task or group of suite {suite_name!r}; "
                                  f"tasks include {names[:8]}...")
            out.extend(hits)
    return tuple(dict.fromkeys(out))


def make_policy(name: str, kwargs: dict[str, Any] | None = None, *, roles: bool = False) -> Any:
    """A policy by registry name (``roles`` wraps it in the Mobile-Agent roles)."""
    from parsimon.gui.policies.roles import RolesPolicy
    from parsimon.gui.registry import POLICIES

    factory = POLICIES.get(name)
    try:
        policy = factory(**(kwargs or {}))
    except TypeError as exc:
        raise ConfigError(f"policy {name!r} does not accept {sorted(kwargs or {})}: {exc}") from None
    return RolesPolicy(policy) if roles else policy


def bootstrap_ci(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean."""
    import numpy as np

    if not values:
        return (0.0, 0.0)
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(resamples, len(arr)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


class _Worker:
    """One environment (one browser or X display) and one policy, running episodes one after another."""

    def __init__(self, cfg_json: str, out_dir: str, run_id: str | None) -> None:
        from parsimon.gui.registry import SUITES
        from parsimon.gui.transitions import TransitionRecorder

        self.cfg = EvalConfig(**{k: tuple(v) if k in ("tasks", "seeds") else v
                                 for k, v in json.loads(cfg_json).items()})
        self.run_id = run_id
        self.suite = SUITES.get(self.cfg.suite)()
        self.env = self.suite.make_env()
        self.policy = make_policy(self.cfg.policy, json.loads(self.cfg.policy_kwargs), roles=self.cfg.roles)
        if self.cfg.search:
            from parsimon.gui.world_model.search import wrap_policy

            env = self.env
            self.policy = wrap_policy(self.policy, self.cfg.search, Path(out_dir) / "transitions",
                                      session=lambda: env.session)
        self.recorder = TransitionRecorder(Path(out_dir) / "transitions") if self.cfg.transitions else None

    def run(self, name: str, seed: int) -> dict:
        """One episode: its summary, step records and feedback events."""
        from parsimon.governance import CallbackSink, FeedbackEmitter, get_audit_log, run_scope
        from parsimon.gui.agent import run_episode

        # every event is collected here; the run's own emitter (its verbosity policy) decides which reach
        # events.jsonl and the terminal
        events: list = []
        emitter = FeedbackEmitter("verbose", sinks=[CallbackSink(events.append)])
        with run_scope(run=self.run_id):
            res = run_episode(self.env, self.policy, self.suite.task(name), seed, approve=self.cfg.approve,
                              feedback=emitter, audit=get_audit_log(), recorder=self.recorder,
                              max_steps=self.cfg.max_steps or None)
        return {"summary": res.summary(), "steps": [asdict(r) for r in res.records], "events": events}

    def close(self) -> None:
        """Release the policy and the environment."""
        try:
            self.policy.close()
        finally:
            self.env.close()


def _run_chunk(cfg_json: str, episodes: list[tuple[str, int]], out_dir: str, run_id: str | None) -> list[dict]:
    """Run a chunk of episodes on one worker (a Ray task)."""
    worker = _Worker(cfg_json, out_dir, run_id)
    try:
        return [worker.run(name, seed) for name, seed in episodes]
    finally:
        worker.close()


def _done_episodes(path: Path) -> dict[tuple[str, int], dict]:
    done: dict[tuple[str, int], dict] = {}
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    done[(rec["task"], int(rec["seed"]))] = rec
    return done


def _append(path: Path, records: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, sort_keys=True, default=str) + "\n")


def evaluate(cfg: EvalConfig, *, out_dir: str | os.PathLike | None = None, resume: bool = False,
             ray: str | None = None, progress: bool = True, seed: int = 0) -> EvalResult:
    """Run ``cfg`` as a run of :func:`parsimon.run.start_run` (see the module docstring)."""
    from parsimon.run import default_out, start_run

    tasks = resolve_tasks(cfg.suite, cfg.tasks)
    cfg = EvalConfig(**{**asdict(cfg), "tasks": tasks})
    make_policy(cfg.policy, json.loads(cfg.policy_kwargs), roles=cfg.roles).close()  # fail early on bad args
    out = Path(out_dir) if out_dir is not None else default_out("gui eval")
    with start_run("gui eval", cfg, out_dir=out, seed=seed, resume=resume, feedback=cfg.feedback,
                   progress=progress) as run:
        ep_path, step_path = run.path("episodes.jsonl"), run.path("steps.jsonl")
        done = _done_episodes(ep_path) if resume else {}
        # episodes are recorded under the task's id, "<suite>/<name>"
        todo = [(t, s) for t in tasks for s in cfg.seeds if (f"{cfg.suite}/{t}", s) not in done]
        cfg_json = json.dumps(asdict(cfg))
        with run.progress(f"gui eval {cfg.suite}/{cfg.policy}", total=len(tasks) * len(cfg.seeds)) as bar:
            bar.update(completed=len(tasks) * len(cfg.seeds) - len(todo))
            for chunk in _dispatch(cfg_json, todo, str(run.dir), run.id, ray):
                _append(ep_path, [c["summary"] for c in chunk])
                _append(step_path, [s for c in chunk for s in c["steps"]])
                for c in chunk:
                    for event in c["events"]:
                        run.feedback.emit(event)
                for c in chunk:
                    done[(c["summary"]["task"], c["summary"]["seed"])] = c["summary"]
                bar.advance(len(chunk))
        result = summarize(list(done.values()), _read_steps(step_path), cfg)
        result.run_dir = str(run.dir)
        run.write_json("results.json", {"config": asdict(cfg), "per_task": result.per_task,
                                        "overall": {k: v for k, v in result.to_dict().items() if k != "per_task"}})
        run.set_metrics(success_rate=result.success_rate, success_ci_low=result.success_ci[0],
                        success_ci_high=result.success_ci[1], episodes=result.episodes, mean_steps=result.mean_steps,
                        invalid_rate=result.invalid_rate, seconds_per_step=result.seconds_per_step,
                        tasks=len(tasks))
        plot_results(result, run.figure("success.png"), run.figure("step_time.png"), _read_steps(step_path))
        return result


def _dispatch(cfg_json: str, episodes: list[tuple[str, int]], out_dir: str, run_id: str, ray: str | None):
    """Yield finished chunks: in this process one episode at a time, or from Ray workers as they finish."""
    if not episodes:
        return
    if ray is None:
        worker = _Worker(cfg_json, out_dir, run_id)
        try:
            for name, seed in episodes:
                yield [worker.run(name, seed)]
        finally:
            worker.close()
        return
    from parsimon.errors import require

    ray_mod = require("ray", "ray", "spreading GUI episodes over Ray")
    if not ray_mod.is_initialized():
        try:
            ray_mod.init(address=None if ray == "local" else ray, ignore_reinit_error=True, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - any start failure is the user's configuration
            raise ConfigError(f"could not start or reach a Ray cluster at --ray {ray!r}: {exc}") from None
    workers = max(1, int(ray_mod.cluster_resources().get("CPU", 1)))
    chunks = [episodes[i::workers] for i in range(min(workers, len(episodes)))]
    remote = ray_mod.remote(num_cpus=1)(_run_chunk)
    pending = [remote.remote(cfg_json, c, out_dir, run_id) for c in chunks]
    while pending:
        ready, pending = ray_mod.wait(pending, num_returns=1)
        yield ray_mod.get(ready[0])


def _read_steps(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summarize(episodes: list[dict], steps: list[dict], cfg: EvalConfig) -> EvalResult:
    """Per-task and overall metrics from episode summaries and step records."""
    import numpy as np

    by_task: dict[str, list[dict]] = defaultdict(list)
    for e in episodes:
        by_task[e["task"]].append(e)
    step_s = [s["seconds"] for s in steps if s.get("action") is not None]
    task_step_s: dict[str, list[float]] = defaultdict(list)
    for s in steps:
        if s.get("action") is not None:
            task_step_s[s["task"]].append(s["seconds"])
    per_task = {}
    for t, eps in sorted(by_task.items()):
        succ = [float(e["success"]) for e in eps]
        lo, hi = bootstrap_ci(succ, cfg.ci_resamples)
        dec = sum(e["decisions"] for e in eps)
        per_task[t] = {"success_rate": float(np.mean(succ)), "ci_low": lo, "ci_high": hi, "episodes": len(eps),
                       "mean_steps": float(np.mean([e["steps"] for e in eps])),
                       "invalid_rate": (sum(e["invalid"] for e in eps) / dec) if dec else 0.0,
                       "refused": sum(e["refused"] for e in eps),
                       "seconds_per_step": float(np.mean(task_step_s[t])) if task_step_s[t] else 0.0}
    all_succ = [float(e["success"]) for e in episodes]
    decisions = sum(e["decisions"] for e in episodes)
    return EvalResult(success_rate=float(np.mean(all_succ)) if all_succ else 0.0,
                      success_ci=bootstrap_ci(all_succ, cfg.ci_resamples), episodes=len(episodes),
                      mean_steps=float(np.mean([e["steps"] for e in episodes])) if episodes else 0.0,
                      invalid_rate=(sum(e["invalid"] for e in episodes) / decisions) if decisions else 0.0,
                      seconds_per_step=float(np.mean(step_s)) if step_s else 0.0, per_task=per_task)


def plot_results(result: EvalResult, success_png: Path, time_png: Path, steps: list[dict]) -> None:
    """Per-task success with 95% intervals, and the distribution of seconds per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.per_task)
    rates = [result.per_task[n]["success_rate"] for n in names]
    lows = [r - result.per_task[n]["ci_low"] for n, r in zip(names, rates, strict=True)]
    highs = [result.per_task[n]["ci_high"] - r for n, r in zip(names, rates, strict=True)]
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(names) + 2), 4))
    ax.bar(range(len(names)), rates, yerr=[lows, highs], capsize=2, color="#2d5b88")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% bootstrap CI)")
    ax.set_title(f"success {result.success_rate:.1%} over {result.episodes} episodes")
    fig.tight_layout()
    fig.savefig(success_png, dpi=110)
    plt.close(fig)
    secs = [s["seconds"] * 1000 for s in steps if s.get("action") is not None]
    fig, ax = plt.subplots(figsize=(5, 3))
    if secs:
        ax.hist(secs, bins=40, color="#888")
        ax.axvline(float(sorted(secs)[len(secs) // 2]), color="k", ls="--", label="median")
        ax.legend()
    ax.set_xlabel("ms per step (decide + act + observe + log)")
    ax.set_ylabel("steps")
    fig.tight_layout()
    fig.savefig(time_png, dpi=110)
    plt.close(fig)
