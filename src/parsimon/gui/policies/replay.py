"""The ``replay`` policy: play back the actions of a logged trajectory, in order.

A trajectory is a list of actions, or the ``steps.jsonl`` an evaluation run writes (one record per step
with ``task``, ``seed`` and ``action``); the policy picks the records of the episode it is reset on. When
the log runs out it stops (``terminate``). Replaying a run on the deterministic environments reproduces
its episodes step for step (a test checks the rewards).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output

__all__ = ["ReplayPolicy", "load_trajectories"]


def load_trajectories(path: str | os.PathLike) -> dict[tuple[str, int], list[Action]]:
    """``{(task, seed): [actions]}`` from a ``steps.jsonl`` file (records without an action are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"`trajectory` {path}: no such file")
    out: dict[tuple[str, int], list[Action]] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"`trajectory` {path} line {n}: not JSON ({exc.msg})") from None
            if rec.get("action") is None:
                continue
            out.setdefault((rec["task"], int(rec["seed"])), []).append(Action.from_dict(rec["action"]))
    return out


class ReplayPolicy(Policy):
    """See the module docstring.

    Args:
        actions: The actions to play (the same for every episode), or
        trajectory: A ``steps.jsonl`` file; each episode plays its own (task, seed) records.
    """

    name = "replay"

    def __init__(self, actions: list[Action] | None = None, *, trajectory: str | os.PathLike | None = None) -> None:
        if (actions is None) == (trajectory is None):
            raise ConfigError("give exactly one of `actions` and `trajectory`")
        self._fixed = list(actions) if actions is not None else None
        self._logs = load_trajectories(trajectory) if trajectory is not None else {}
        self._queue: list[Action] = []

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        if self._fixed is not None:
            self._queue = list(self._fixed)
        else:
            self._queue = list(self._logs.get((str(info.get("task")), int(info.get("seed", -1))), []))

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        if not self._queue:
            a = Action("terminate", status="failure")
            return Decision(a, render_output(a, "the log has no more actions"))
        a = self._queue.pop(0)
        return Decision(a, render_output(a), confidence=1.0)


POLICIES.register("replay", ReplayPolicy, describe="play back a logged trajectory (--trajectory steps.jsonl)")
