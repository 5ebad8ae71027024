"""Hand-written DOM rules for MiniWoB++ tasks: the ``rule`` policy's knowledge of each page.

Each rule reads the instruction and the element table of the current :class:`Observation` (never the
page's scripts or the reward) and returns the next action, a list of actions to run in order, or None
when it has nothing left to do. Rules see the page again after each action, so multi-screen tasks
(tabs, menus, e-mail threads, trees, pagination) are solved by looking. :data:`RULES` maps task names
to rules; a task without one is not solved by this policy.
"""

from __future__ import annotations

from parsimon.gui.policies.miniwob import forms, pages
from parsimon.gui.policies.miniwob.common import Rule

__all__ = ["RULES", "Rule"]

RULES: dict[str, Rule] = {**forms.RULES, **pages.RULES}
