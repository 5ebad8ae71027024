"""The ``rule`` policy on the desktop Notes app: ``computer_use``-style moves on screen coordinates.

The instruction is read back with the Notes grammar; each step finds its widget in the element table
(built from the app's widget boxes) and acts on the widget's centre as a 0–1000 point, the way GUI-Owl
would: triple-click a field and type over it, click the checkbox, type into "New note" and click "Add",
click a note and then "Delete", click "Save".
"""

from __future__ import annotations

from typing import Any

from parsimon.gui.actions import Action, Point

__all__ = ["desktop_rule"]


def _at(obs: Any, e: Any) -> Point:
    x, y = e.center
    w, h = obs.size
    return Point(round(x / w * 1000), round(y / h * 1000))


def _widget(obs: Any, name: str) -> Any:
    return next((e for e in obs.elements if e.name == name), None)


def _moves(kind: str, arg: str) -> list:
    if kind == "name":
        return [lambda o: Action("triple_click", target=_at(o, _widget(o, "Profile name"))),
                lambda o: Action("type", text=arg)]
    if kind == "sync":
        return [lambda o: None if bool(_widget(o, "Sync").checked) == (arg == "on")
                else Action("click", target=_at(o, _widget(o, "Sync")))]
    if kind == "add":
        return [lambda o: Action("click", target=_at(o, _widget(o, "New note"))), lambda o: Action("type", text=arg),
                lambda o: Action("click", target=_at(o, _widget(o, "Add")))]
    if kind == "delete":
        def pick(o: Any) -> Action | None:
            item = next((e for e in o.elements if e.tag == "option" and e.text == arg), None)
            return None if item is None else Action("click", target=_at(o, item))
        return [pick, lambda o: Action("click", target=_at(o, _widget(o, "Delete")))]
    return [lambda o: Action("click", target=_at(o, _widget(o, "Save")))]


def desktop_rule(obs: Any, mem: dict) -> Action | None:
    """One move at a time; None when the instruction is done."""
    from parsimon.gui.desktop.suite import parse_notes_instruction

    if "plan" not in mem:
        mem["plan"] = [m for kind, arg in parse_notes_instruction(obs.goal) for m in _moves(kind, arg)]
        mem["i"] = 0
    while mem["i"] < len(mem["plan"]):
        move = mem["plan"][mem["i"]]
        mem["i"] += 1
        action = move(obs)
        if action is not None:
            return action
    return None
