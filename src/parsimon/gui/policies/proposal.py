"""Candidate actions from a page's interactive elements, ranked by how well they match the instruction.

:func:`propose` enumerates what can be done on the current page: click each visible interactive
element; type each quoted string (or number) of the instruction into each empty text field; pick each
option the instruction names in each select; and stop. Each candidate is scored by word overlap between
the instruction and the element's accessible name, text and value, with bonuses for an exact quoted
match and for submit-like buttons once something has been done, and a penalty for repeating an action.
The ``proposal`` policy takes the best candidate; the world-model search of a later release asks for
the top ``k`` and imagines each. The ``random`` policy draws uniformly from the same candidates.
"""

from __future__ import annotations

import random as _random
import re
from dataclasses import dataclass
from typing import Any

from parsimon.gui.actions import Action, Element
from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output

__all__ = ["ProposalPolicy", "RandomPolicy", "ScoredAction", "propose"]

_STOP = frozenset("a an the to of and or in on at into for with by from then this that is as be it its "
                  "your you please click select enter type press hit button field text box".split())
_SUBMIT = frozenset({"submit", "search", "login", "log in", "ok", "save", "send", "done", "go", "next", "apply",
                     "pay now", "send reply"})
# a control named by one of these verbs does that thing: it should be wanted by the instruction
_VERBS = frozenset({"delete", "remove", "archive", "star", "unstar", "reply", "send", "save", "pay", "add", "apply",
                    "clear", "cancel", "close", "forward", "open", "edit", "share", "like", "retweet"})


@dataclass(frozen=True)
class ScoredAction:
    """A candidate action, its score and why."""

    action: Action
    score: float
    why: str = ""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9@#.$]+", text.lower().replace("'", "")) if w not in _STOP}


def _label(e: Any) -> str:
    return " ".join(x for x in (e.name, e.text, e.value if e.tag != "input" else "") if x)


def propose(obs: Any, history: list[Action] | tuple = (), k: int | None = None) -> list[ScoredAction]:
    """The candidate actions of ``obs``, best first (the top ``k`` when given)."""
    goal = obs.goal
    goal_words = _words(goal)
    quoted = re.findall(r'"([^"]+)"', goal) or re.findall(r"\b\d+\b", goal)
    done = {a for a in history}
    acted = len(history) > 0
    out: list[ScoredAction] = []
    for e in obs.interactive():
        label = _label(e)
        overlap = len(_words(label) & goal_words)
        exact = any(q.strip().lower() == label.strip().lower() for q in quoted if label)
        if e.tag in ("textarea",) or (e.tag == "input" and e.type in ("text", "password", "search", "email",
                                                                        "number", "tel", None)):
            for q in quoted:
                if (e.value or "") == q:
                    continue
                a = Action("type", target=Element(e.pid), text=q, clear=True)
                out.append(ScoredAction(a, 2.0 + overlap - (3 if a in done else 0), f"type {q!r} into {label!r}"))
            continue
        if e.tag == "select" and e.options:
            for opt in e.options:
                if opt and opt.lower() in goal.lower() and (e.value or "") != opt:
                    a = Action("select", target=Element(e.pid), option=opt)
                    out.append(ScoredAction(a, 3.0 + overlap - (3 if a in done else 0), f"select {opt!r}"))
            continue
        if e.tag == "option":
            continue
        a = Action("click", target=Element(e.pid))
        score = overlap + (4.0 if exact else 0.0)
        words = _words(label)
        verb = label.strip().lower().split(" ", 1)[0].rstrip(":") if label.strip() else ""
        if verb in _VERBS:
            score += 1.0 if verb in goal_words else -2.0
        if e.type in ("checkbox", "radio"):
            # named in the instruction, as a whole or word for word ("Done: milk" for "mark milk as done")
            mentioned = bool(e.name) and (e.name.lower() in goal.lower() or bool(words) and words <= goal_words)
            score = (3.0 if mentioned and not e.checked else -1.0) + 0.5 * overlap
        elif label.strip().lower() in _SUBMIT:
            score = max(score, 1.5 if acted else 0.3)
        if a in done:
            score -= 3.0
        out.append(ScoredAction(a, score, f"click {label[:40]!r}"))
    if acted:
        out.append(ScoredAction(Action("terminate", status="success"), 0.5, "nothing better left"))
    out.sort(key=lambda s: -s.score)
    return out[:k] if k else out


class ProposalPolicy(Policy):
    """Take the best-scoring candidate of :func:`propose` (terminate when none beats stopping)."""

    name = "proposal"

    def __init__(self) -> None:
        self.history: list[Action] = []

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        self.history = []

    def candidates(self, obs: Any, k: int | None = None) -> list[ScoredAction]:
        """The ranked candidates for ``obs`` given what this policy did so far."""
        return propose(obs, self.history, k)

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        cands = self.candidates(obs)
        best = cands[0] if cands else ScoredAction(Action("terminate", status="failure"), 0.0, "no candidates")
        self.history.append(best.action)
        conf = max(0.0, min(1.0, best.score / 5.0))
        return Decision(best.action, render_output(best.action, best.why), confidence=conf,
                        meta={"score": best.score, "candidates": len(cands)})


class RandomPolicy(Policy):
    """A uniformly random candidate of :func:`propose` (seeded), to collect varied transitions."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = _random.Random(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        cands = [c for c in propose(obs) if c.action.kind != "terminate"]
        if not cands:
            a = Action("wait", seconds=1)
            return Decision(a, render_output(a))
        pick = self.rng.choice(cands)
        return Decision(pick.action, render_output(pick.action, pick.why))


POLICIES.register("proposal", ProposalPolicy, describe="best of the candidate actions enumerated from the page")
POLICIES.register("random", RandomPolicy, describe="a random candidate action (for transition data)")
