"""Optional Mobile-Agent-v3.5 roles around any policy: manager, executor, reflector, notetaker.

The official multi-agent mode (``mobile_agent_v3_agent.py``) runs four prompted roles over one shared
``InfoPool``. Here they share :class:`InfoPool` and are computed where the official ones are prompted,
which keeps them testable offline:

1. **Manager** splits the instruction into a plan (clauses joined by "then", "and then", ";") and marks
   a subgoal done when the reflector reports progress; after ``stuck_after`` outcomes B or C in a row it
   flags "potentially stuck" (the official threshold ``err_to_manager_thresh`` is 2).
2. **Executor** is the wrapped policy: it sees the current subgoal appended to the instruction, and, when
   stuck, is asked for its next-best action (policies with ``candidates``) instead of repeating itself.
3. **Reflector** compares the observations before and after each action: **A** the page changed as
   expected, **B** it changed to another page (URL) and the step was not a navigation, **C** nothing
   changed (same element table and screenshot hash).
4. **Notetaker** keeps ``important_notes``: on-screen texts that share words with the instruction.

The roles are off by default (``--roles``); the report measures the proposal policy with and without.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from parsimon.gui.actions import Action
from parsimon.gui.policies.base import Decision, Policy

__all__ = ["InfoPool", "RolesPolicy", "reflect", "split_plan"]


@dataclass
class InfoPool:
    """The roles' shared memory (the official ``InfoPool``'s fields that apply here)."""

    instruction: str = ""
    plan: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "A", "B", "C"
    important_notes: list[str] = field(default_factory=list)
    stuck: bool = False


def split_plan(instruction: str) -> list[str]:
    """The instruction's subgoals, in order."""
    body = re.sub(r"^In the .+? app, ", "", instruction.strip()).rstrip(".")
    parts = re.split(r",? then |, and then |; | and then ", body)
    return [p.strip() for p in parts if p.strip()]


def _signature(obs: Any) -> tuple:
    return (obs.url, obs.screenshot_sha256 if obs.screenshot else "",
            tuple((e.pid, e.value, e.checked, e.visible) for e in obs.elements))


def reflect(before: Any, after: Any, action: Action) -> str:
    """The reflector's outcome for one step: "A" progress, "B" unexpected other page, "C" no change."""
    if _signature(before) == _signature(after):
        return "C"
    navigating = action.kind in ("go_back", "home", "open") or (action.kind == "click" and before.url != after.url
                                                                and after.url.split("#")[0] == before.url.split("#")[0])
    if before.url != after.url and not navigating and action.kind != "click":
        return "B"
    return "A"


class RolesPolicy(Policy):
    """Wrap ``executor`` with the manager, reflector and notetaker (see the module docstring)."""

    def __init__(self, executor: Policy, *, stuck_after: int = 2) -> None:
        self.executor, self.stuck_after = executor, stuck_after
        self.name = f"{executor.name}+roles"
        self.needs_llm = executor.needs_llm
        self.pool = InfoPool()
        self._last: tuple[Any, Action] | None = None

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        self.pool = InfoPool(instruction=goal, plan=split_plan(goal))
        self._last = None
        self.executor.reset(goal, info)

    def _note(self, obs: Any) -> None:
        words = {w for w in re.findall(r"[a-z0-9]+", self.pool.instruction.lower()) if len(w) > 3}
        for e in obs.elements:
            t = (e.text or "").strip()
            if t and len(t) < 120 and words & set(re.findall(r"[a-z0-9]+", t.lower())) \
                    and t not in self.pool.important_notes:
                self.pool.important_notes.append(t)
        del self.pool.important_notes[:-20]

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        pool = self.pool
        if self._last is not None:
            before, action = self._last
            outcome = reflect(before, obs, action)
            pool.outcomes.append(outcome)
            if outcome == "A" and pool.plan and len(pool.completed) < len(pool.plan):
                pool.completed.append(pool.plan[len(pool.completed)])
            recent = pool.outcomes[-self.stuck_after:]
            pool.stuck = len(recent) == self.stuck_after and all(o in "BC" for o in recent)
        self._note(obs)
        decision = self._execute(obs, info)
        if decision.action is not None:
            pool.actions.append(decision.action.describe())
            self._last = (obs, decision.action)
        decision.meta.update(roles={"subgoal": self._subgoal(), "outcome": pool.outcomes[-1] if pool.outcomes
                                    else None, "stuck": pool.stuck, "notes": len(pool.important_notes)})
        return decision

    def _subgoal(self) -> str | None:
        done = len(self.pool.completed)
        return self.pool.plan[done] if done < len(self.pool.plan) else None

    def _execute(self, obs: Any, info: dict[str, Any]) -> Decision:
        candidates = getattr(self.executor, "candidates", None)
        if self.pool.stuck and callable(candidates) and self._last is not None:
            # the manager saw no progress: take the best candidate that is not the repeated action
            for cand in candidates(obs):
                if cand.action != self._last[1]:
                    history = getattr(self.executor, "history", None)
                    if isinstance(history, list):
                        history.append(cand.action)
                    from parsimon.gui.policies.base import render_output

                    return Decision(cand.action, render_output(cand.action, f"stuck; trying {cand.why}"),
                                    meta={"score": cand.score})
        return self.executor.act(obs, info)

    def close(self) -> None:  # noqa: D102
        self.executor.close()
