"""What every MiniWoB++ rule uses: finding elements in the element table and building actions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from parsimon.gui.actions import Action, Element

__all__ = ["ORDINALS", "Rule", "ancestor", "button", "checkbox_for", "children", "click", "descendants", "els", "first",
           "once", "quoted", "registrar", "submit", "textboxes", "type_into"]

Rule = Callable[[Any, dict], "Action | list[Action] | None"]

ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9,
            "10th": 10, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}


def registrar(table: dict[str, Rule]) -> Callable[..., Callable[[Rule], Rule]]:
    """A decorator ``@rule("task", ...)`` that files a rule under task names in ``table``."""
    def rule(*names: str) -> Callable[[Rule], Rule]:
        def deco(fn: Rule) -> Rule:
            for n in names:
                table[n] = fn
            return fn
        return deco
    return rule


def quoted(goal: str) -> list[str]:
    """The strings in double quotes in the instruction."""
    return re.findall(r'"([^"]*)"', goal)


def click(e: Any) -> Action:
    """Click an element."""
    return Action("click", target=Element(e.pid))


def type_into(e: Any, text: str, *, enter: bool = False) -> Action:
    """Replace an input's text."""
    return Action("type", target=Element(e.pid), text=text, clear=True, enter=enter)


def els(obs: Any, *, tag: str | None = None, cls: str | None = None, text: str | None = None,
        name: str | None = None, id: str | None = None, typ: str | None = None, visible: bool = False) -> list:
    """Elements matching every given field (``cls`` is one class among the element's classes)."""
    out = []
    for e in obs.elements:
        if tag is not None and e.tag != tag:
            continue
        if cls is not None and cls not in (e.cls or "").split():
            continue
        if text is not None and e.text != text:
            continue
        if name is not None and e.name != name:
            continue
        if id is not None and e.id != id:
            continue
        if typ is not None and e.type != typ:
            continue
        if visible and not e.visible:
            continue
        out.append(e)
    return out


def first(items: list) -> Any:
    """The first item or None."""
    return items[0] if items else None


def button(obs: Any, label: str) -> Any:
    """A button (or submit-like element) whose text is ``label`` (case-insensitive)."""
    low = label.lower()
    for e in obs.elements:
        if e.tag == "button" and (e.text.lower() == low or e.name.lower() == low):
            return e
        if e.tag == "input" and e.type in ("submit", "button") and (e.value or "").lower() == low:
            return e
    return None


def submit(obs: Any) -> Any:
    """The page's Submit button."""
    return button(obs, "submit") or first(els(obs, id="subbtn")) or first(els(obs, id="submit"))


def children(obs: Any, parent: Any) -> list:
    """Direct children of an element."""
    return [e for e in obs.elements if e.parent == parent.pid]


def descendants(obs: Any, root: Any) -> list:
    """All elements below ``root``."""
    below, frontier = [], {root.pid}
    for e in obs.elements:  # document order: parents come before children
        if e.parent in frontier:
            below.append(e)
            frontier.add(e.pid)
    return below


def ancestor(obs: Any, e: Any, cls: str) -> Any:
    """The nearest ancestor with class ``cls``."""
    by_pid = {x.pid: x for x in obs.elements}
    p = by_pid.get(e.parent)
    while p is not None:
        if cls in (p.cls or "").split():
            return p
        p = by_pid.get(p.parent)
    return None


def textboxes(obs: Any) -> list:
    """Text inputs and textareas, in document order."""
    return [e for e in obs.elements if (e.tag == "input" and e.type in ("text", "password", "number", "search",
                                                                           "email", "tel", None))
            or e.tag == "textarea"]


def checkbox_for(obs: Any, label: str) -> Any:
    """The checkbox or radio whose label is ``label``."""
    for e in obs.elements:
        if e.tag == "input" and e.type in ("checkbox", "radio") and e.name == label:
            return e
    return None


def once(mem: dict, key: str) -> bool:
    """True the first time ``key`` is asked for in this episode."""
    if key in mem:
        return False
    mem[key] = True
    return True


