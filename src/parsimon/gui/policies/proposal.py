"""Candidate actions from a page's interactive elements, ranked by how well they match the instruction.

:func:`propose` enumerates what can be done on the current page: click each visible interactive
element; type each value of the instruction (:func:`values`: its quoted strings, numbers and codes in
capitals) into each text field not holding it already — a number field only a number, once as it is and
once followed by Enter, which commits it where a script waits for the change; pick each
option the instruction names in each select; and stop. Each candidate is scored by word overlap between
the instruction and the element's accessible name, text and value, with bonuses for an exact quoted
match and for submit-like buttons once something has been done, and a penalty for repeating an action.
The ``proposal`` policy takes the best candidate; the world-model search of a later release asks for
the top ``k`` and imagines each. The ``random`` policy draws uniformly from the same candidates. The
``explore`` policy (for the world model's transition data) also types values of its own into any field,
so that the store sees what editing and committing a field does on tasks whose instruction quotes
nothing to type.
"""

from __future__ import annotations

import random as _random
import re
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action, Element
from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output

__all__ = ["ExplorePolicy", "ProposalPolicy", "RandomPolicy", "ScoredAction", "propose"]

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


_TEXT_FIELDS = ("text", "password", "search", "email", "number", "tel", None)  # input types one types into
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")
_CODE = re.compile(r"\b[A-Z][A-Z0-9]{2,}\b")


def _typable(e: Any) -> bool:
    return e.tag == "textarea" or (e.tag == "input" and e.type in _TEXT_FIELDS)


def values(goal: str) -> list[str]:
    """The values an instruction asks to type: its quoted strings, then the numbers and the codes written
    in capitals (``SAVE10``) outside the quotes, each once."""
    quoted = re.findall(r'"([^"]+)"', goal)
    rest = re.sub(r'"[^"]*"', " ", goal)
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)", rest)
    return list(dict.fromkeys(quoted + numbers + _CODE.findall(rest)))


def propose(obs: Any, history: list[Action] | tuple = (), k: int | None = None) -> list[ScoredAction]:
    """The candidate actions of ``obs``, best first (the top ``k`` when given)."""
    goal = obs.goal
    goal_words = _words(goal)
    quoted = values(goal)
    done = {a for a in history}
    acted = len(history) > 0
    out: list[ScoredAction] = []
    for e in obs.interactive():
        label = _label(e)
        overlap = len(_words(label) & goal_words)
        exact = any(q.strip().lower() == label.strip().lower() for q in quoted if label)
        if _typable(e):
            number = e.type == "number"
            for q in quoted:
                if (e.value or "") == q or (number and not _NUMBER.fullmatch(q)):
                    continue  # a number field takes no words
                for enter in (True, False) if number else (False,):
                    a = Action("type", target=Element(e.pid), text=q, clear=True, enter=enter)
                    score = 2.0 + overlap + (0.25 if enter else 0.0) - (3 if a in done else 0)
                    out.append(ScoredAction(a, score, f"type {q!r} into {label!r}" + (" and press Enter" if enter else "")))
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
    seeded = True  # takes a ``seed`` (the collection passes its own)

    def __init__(self, seed: int = 0) -> None:
        self.rng = _random.Random(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        cands = [c for c in propose(obs) if c.action.kind != "terminate"]
        if not cands:
            a = Action("wait", seconds=1)
            return Decision(a, render_output(a))
        pick = self.rng.choice(cands)
        return Decision(pick.action, render_output(pick.action, pick.why))


class ExplorePolicy(RandomPolicy):
    """Random actions for the world model's transition data: with probability ``type_share`` it types a
    value of its own into a random field (pressing Enter after it with probability ``enter_share``),
    otherwise it takes a uniformly random candidate of :func:`propose`, like ``random``.

    The value typed is a number near the field's own for a number field (or any small one), otherwise a
    word of the instruction or of the page. Typing it moves the focus, so a field edited one step
    earlier loses it: the store then also holds what committing a field does (a script drawing its list
    again, a total recomputed), which the instruction-driven policies do only when the instruction
    quotes a value.
    """

    name = "explore"

    def __init__(self, seed: int = 0, type_share: float = 0.35, enter_share: float = 0.5) -> None:
        if not 0.0 <= type_share <= 1.0:
            raise ConfigError(f"`type_share` must lie in [0, 1], got {type_share}")
        if not 0.0 <= enter_share <= 1.0:
            raise ConfigError(f"`enter_share` must lie in [0, 1], got {enter_share}")
        super().__init__(seed)
        self.type_share = type_share
        self.enter_share = enter_share

    def _value(self, field: Any, obs: Any) -> str:
        if field.type == "number":
            try:
                base = int(float(field.value or ""))
            except ValueError:
                return str(self.rng.randint(0, 9))
            return str(max(0, base + self.rng.choice((-2, -1, 1, 2, 3))))
        words = sorted({w.strip(".") for t in (obs.goal, *(e.text or "" for e in obs.interactive()))
                        for w in _words(t)} - {""})
        return self.rng.choice(words) if words else "test"

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        fields = [e for e in obs.interactive() if _typable(e) and not e.disabled]
        if fields and self.rng.random() < self.type_share:
            field = self.rng.choice(fields)
            a = Action("type", target=Element(field.pid), text=self._value(field, obs), clear=True,
                       enter=self.rng.random() < self.enter_share)
            return Decision(a, render_output(a, "explore: type a value of its own"))
        return super().act(obs, info)


POLICIES.register("proposal", ProposalPolicy, describe="best of the candidate actions enumerated from the page")
POLICIES.register("random", RandomPolicy, describe="a random candidate action (for transition data)")
POLICIES.register("explore", ExplorePolicy,
                  describe="random candidates and values of its own typed into fields (for transition data)")
