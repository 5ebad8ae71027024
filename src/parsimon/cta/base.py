"""The environment, task and policy contracts every calibrate-then-act environment follows.

An environment follows Gymnasium's interface with text actions and observations:

* ``reset(*, seed=None, options={"task": task}) -> (observation, info)``
* ``step(action: str) -> (observation, reward, terminated, truncated, info)``

``info`` always carries ``t`` (actions taken so far), ``valid`` (was the action understood),
``error`` (the message for an invalid action, else ``None``), ``costs`` (this step's itemised costs,
e.g. ``{"verify": 1}`` or ``{"unit_test": 1}``) and ``cost_totals`` (the episode's running totals).
When an episode ends ``info["episode"]`` holds the episode summary: ``reward``, ``turns``, and
environment-specific numbers (``correct``, ``U``, ``C``, ``retrieved`` ...) that :func:`evaluate` averages.

A policy sees the task's public view and a prior (``None`` for prior-free policies) and answers text
actions; see :class:`Policy`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from parsimon.errors import ResetNeeded

__all__ = ["CTAEnv", "Episode", "Policy", "StepRecord", "text_space"]

_CHARSET = "".join(chr(c) for c in range(32, 127)) + "\n\t"


def text_space(max_length: int = 20000) -> spaces.Text:
    """The Gymnasium space of text actions / observations (printable ASCII, newlines and tabs)."""
    return spaces.Text(max_length=max_length, min_length=0, charset=_CHARSET)


@dataclass
class StepRecord:
    """One step of an episode, as written to the trajectory file."""

    t: int
    action: str
    observation: str
    reward: float
    valid: bool
    costs: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Episode:
    """A finished episode: the task id, the actions, the reward and the environment's summary."""

    task_id: str
    actions: list[str]
    reward: float
    steps: list[StepRecord]
    summary: dict[str, Any]
    optimal: list[str] | None = None  # the optimal policy's action list for this task, where one exists
    group: Any = None  # e.g. ρ for FILEREADING, a γ bin for QA
    stats: dict[str, float] = field(default_factory=dict)  # the policy's counters during this episode
    index: int = -1  # position in the evaluated task list

    @property
    def matched(self) -> bool | None:
        return None if self.optimal is None else list(self.actions) == list(self.optimal)


class CTAEnv(gym.Env, ABC):
    """Base class of the text environments: one task per episode, chosen with ``options={"task": task}``.

    Subclasses implement :meth:`_start` (set up a task, return the first observation and extra info) and
    :meth:`_act` (apply one text action). The base class does the bookkeeping: timestep, cost totals,
    the turn limit (``max_turns``; reaching it truncates the episode with reward 0) and ``ResetNeeded``.
    """

    metadata = {"render_modes": []}
    name: str = "base"

    def __init__(self, tasks: list | None = None, *, max_turns: int = 10):
        if max_turns < 1:
            raise ValueError(f"`max_turns` must be >= 1, got {max_turns}")
        self.tasks = list(tasks) if tasks is not None else []
        self.max_turns = max_turns
        self.observation_space = text_space()
        self.action_space = text_space(2000)
        self.task: Any = None
        self.t = 0
        self._done = True
        self._cost_totals: dict[str, float] = {}
        self._next_index = 0

    # ----------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        """Start an episode on ``options["task"]`` (a task object), ``options["index"]`` (into
        ``self.tasks``), or, without options, the next task of ``self.tasks`` in order."""
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            task = options["task"]
        elif "index" in options:
            idx = options["index"]
            if not isinstance(idx, int) or not 0 <= idx < len(self.tasks):
                raise ValueError(f"`options['index']` must be an int in [0, {len(self.tasks)}), got {idx!r}")
            task = self.tasks[idx]
        else:
            if not self.tasks:
                raise ValueError("reset() needs options={'task': task} or an environment built with tasks")
            task = self.tasks[self._next_index % len(self.tasks)]
            self._next_index += 1
        self.task = self.coerce_task(task)
        self.t = 0
        self._done = False
        self._cost_totals = {}
        obs, info = self._start(self.task)
        info = {"t": 0, "valid": True, "error": None, "costs": {}, "cost_totals": {},
                "task_id": self.task_id(self.task), **info}
        return obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._done:
            raise ResetNeeded(f"{type(self).__name__}.step() called before reset() or after the episode ended")
        if not isinstance(action, str):
            raise TypeError(f"`action` must be a string, got {type(action).__name__}")
        obs, reward, terminated, info = self._act(action)
        self.t += 1
        costs = dict(info.pop("costs", {}) or {})
        for k, v in costs.items():
            self._cost_totals[k] = self._cost_totals.get(k, 0) + v
        truncated = False
        if not terminated and self.t >= self.max_turns:
            truncated = True
            reward = 0.0
            obs = obs + f"\nThe turn limit ({self.max_turns}) is reached; the episode ends with reward 0."
        info = {"t": self.t, "valid": info.pop("valid", True), "error": info.pop("error", None), "costs": costs,
                "cost_totals": dict(self._cost_totals), **info}
        if terminated or truncated:
            self._done = True
            summary = {"reward": float(reward), "turns": self.t, "truncated": truncated}
            summary.update(self._summary(terminated=terminated, truncated=truncated, info=info))
            info["episode"] = summary
        return obs, float(reward), bool(terminated), truncated, info

    # ----------------------------------------------------------------------------------------------
    def coerce_task(self, task: Any) -> Any:
        """Validate or convert a task (e.g. a dict from a file) into this environment's task type."""
        return task

    @staticmethod
    def task_id(task: Any) -> str:
        return str(getattr(task, "task_id", None) or (task.get("task_id") if isinstance(task, dict) else "") or "")

    @abstractmethod
    def _start(self, task: Any) -> tuple[str, dict]:
        """Set up ``task``; return the first observation and extra ``info`` entries."""

    @abstractmethod
    def _act(self, action: str) -> tuple[str, float, bool, dict]:
        """Apply one action; return ``(observation, reward, terminated, info)``; ``info`` may hold
        ``valid``, ``error`` and ``costs`` (popped by the base class) and anything else."""

    def _summary(self, *, terminated: bool, truncated: bool, info: dict) -> dict[str, Any]:
        """Environment-specific episode numbers merged into ``info["episode"]`` (default: cost totals)."""
        return dict(self._cost_totals)


class Policy(ABC):
    """A policy acting in a CTA environment.

    ``reset(task_view, prior, *, seed)`` is called at the start of each episode with the task's public
    view (what an agent may know: labels, costs, filename ... never the hidden answer) and the prior
    from the chosen prior source (``None`` for prior-free policies). ``act(observation, info)`` returns
    the next text action. ``stats`` collects counters (``parse_failures``, ``tokens`` ...) that
    :func:`parsimon.cta.evaluate` reports.
    """

    name: str = "policy"
    uses_prior: bool = True

    def __init__(self) -> None:
        self.stats: dict[str, float] = {}

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        self.task_view, self.prior, self.seed = task_view, prior, seed

    @abstractmethod
    def act(self, observation: str, info: dict) -> str:
        """Return the next action as text."""

    def count(self, key: str, n: float = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n
