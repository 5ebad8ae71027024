"""The ``rule`` policy: hand-written rules that read the page like a careful script would.

For MiniWoB++ it runs the task's rule from :mod:`parsimon.gui.policies.miniwob_rules`; for our own apps
(desktop browser and phone) it parses the instruction (their grammar is :mod:`parsimon.gui.suites.synth`'s)
and plays each step against the element table; on the X desktop it does the same with screen points
(:mod:`parsimon.gui.policies.desktop_rules`). It queues the actions a rule returns, asks again after the queue empties,
and stops (``terminate``) when the rule has nothing left to do. A rule never reads the reward or the
app's state: only the instruction and the observation.
"""

from __future__ import annotations

from typing import Any

from parsimon.gui.actions import Action
from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output

__all__ = ["RulePolicy"]


class RulePolicy(Policy):
    """See the module docstring."""

    name = "rule"

    def __init__(self) -> None:
        self._queue: list[Action] = []
        self._mem: dict[str, Any] = {}
        self._rule = None

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        from parsimon.gui.policies.apps_rules import apps_rule
        from parsimon.gui.policies.desktop_rules import desktop_rule
        from parsimon.gui.policies.miniwob_rules import RULES

        self._queue, self._mem = [], {}
        suite, _, name = str(info.get("task", "")).partition("/")
        self._rule = (RULES.get(name) if suite == "miniwob" else apps_rule if suite in ("apps", "mobile")
                      else desktop_rule if suite == "desktop" else None)

    @property
    def covers(self) -> bool:
        """Whether the current task has a rule."""
        return self._rule is not None

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        if not self._queue and self._rule is not None:
            try:
                out = self._rule(obs, self._mem)
            except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
                return Decision(Action("terminate", status="failure"), f"rule failed: {exc}",
                                meta={"rule_error": f"{type(exc).__name__}: {exc}"})
            if isinstance(out, Action):
                self._queue = [out]
            elif out:
                self._queue = [a for a in out if isinstance(a, Action)]
        if not self._queue:
            note = "no rule for this task" if self._rule is None else "the rule has nothing left to do"
            action = Action("terminate", status="success" if self._rule is not None else "failure")
            return Decision(action, render_output(action, note), meta={"note": note})
        action = self._queue.pop(0)
        return Decision(action, render_output(action), confidence=1.0)


POLICIES.register("rule", RulePolicy, describe="hand-written DOM rules (MiniWoB) and the apps' instruction grammar")
