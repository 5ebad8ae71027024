"""The ``rule`` policy on our apps: read the instruction back into steps and play each one on the page.

The instruction is parsed with the apps' grammar (:func:`~parsimon.gui.suites.synth.parse_instruction`);
each step becomes a short list of moves, and every move looks at the current page to find its element
by accessible name (``Quantity of bolts``, ``Done: buy milk``), so the rule never uses anything the page
does not show. On the phone it uses the phone's ways: it opens the app from the home screen, deletes a
to-do with a long press and the action sheet, archives a message with a left swipe, goes back with the
system Back button and presses Enter with the keyboard's Enter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.suites.synth import APP_TITLES, Op, parse_instruction

__all__ = ["apps_rule", "plan"]

Move = Callable[[Any], "Action | None"]


def _named(obs: Any, name: str) -> Any:
    return next((e for e in obs.elements if e.name == name), None)


def _id(obs: Any, id_: str) -> Any:
    return next((e for e in obs.elements if e.id == id_), None)


def _point(obs: Any, e: Any) -> Point:
    x, y = e.center
    w, h = obs.size
    return Point(round(min(max(x / w, 0), 1) * 1000), round(min(max(y / h, 0), 1) * 1000))


def _click(find: Callable[[Any], Any], phone: bool) -> Move:
    def move(obs: Any) -> Action | None:
        e = find(obs)
        if e is None:
            return None
        return Action("click", target=_point(obs, e) if phone else Element(e.pid))
    return move


def _type(find: Callable[[Any], Any], text: str, *, enter: bool = False) -> Move:
    def move(obs: Any) -> Action | None:
        e = find(obs)
        return None if e is None else Action("type", target=Element(e.pid), text=text, clear=True, enter=enter)
    return move


def _select(id_: str, option: str) -> Move:
    def move(obs: Any) -> Action | None:
        e = _id(obs, id_)
        return None if e is None else Action("select", target=Element(e.pid), option=option)
    return move


def _toggle_to(id_: str, on: bool, phone: bool) -> Move:
    def move(obs: Any) -> Action | None:
        e = _id(obs, id_)
        if e is None or bool(e.checked) == on:
            return None
        return Action("click", target=_point(obs, e) if phone else Element(e.pid))
    return move


def _row_of_text(text: str) -> Callable[[Any], Any]:
    def find(obs: Any) -> Any:
        label = next((e for e in obs.elements if e.text == text and "label" in (e.cls or "").split()), None)
        return next((e for e in obs.elements if label is not None and e.pid == label.parent), None)
    return find


def _long_press(find: Callable[[Any], Any]) -> Move:
    def move(obs: Any) -> Action | None:
        e = find(obs)
        return None if e is None else Action("long_press", target=_point(obs, e), seconds=0.8)
    return move


def _swipe_left(find: Callable[[Any], Any]) -> Move:
    def move(obs: Any) -> Action | None:
        e = find(obs)
        if e is None:
            return None
        x, y, w, h = e.bbox
        vw, vh = obs.size
        start = Point(round((x + 0.85 * w) / vw * 1000), round((y + h / 2) / vh * 1000))
        end = Point(round((x + 0.15 * w) / vw * 1000), start.y)
        return Action("drag", target=start, end=end)
    return move


def _message_row(subject: str) -> Callable[[Any], Any]:
    def find(obs: Any) -> Any:
        link = _named(obs, f"Open {subject}")
        return next((e for e in obs.elements if link is not None and e.pid == link.parent), None)
    return find


def _moves(op: Op, phone: bool) -> list[Move]:
    k, a = op.kind, op.args
    click = lambda find: _click(find, phone)  # noqa: E731 - a local shorthand
    back = (lambda obs: Action("go_back")) if phone else click(lambda o: _id(o, "back-link"))
    if k == "todo.add":
        if phone:
            return [_type(lambda o: _id(o, "new-todo"), a[0]), lambda obs: Action("key", keys=("Enter",))]
        return [_type(lambda o: _id(o, "new-todo"), a[0]), click(lambda o: _id(o, "add-todo"))]
    if k in ("todo.complete", "todo.reopen"):
        return [click(lambda o: _named(o, f"Done: {a[0]}"))]
    if k == "todo.delete":
        if phone:
            return [_long_press(_row_of_text(a[0])), click(lambda o: _id(o, "sheet-delete"))]
        return [click(lambda o: _named(o, f"Delete {a[0]}"))]
    if k in ("inbox.star", "inbox.unstar"):
        return [click(lambda o: _named(o, f"Open {a[0]}")), click(lambda o: _id(o, "star-btn")), back]
    if k == "inbox.archive":
        if phone:
            return [_swipe_left(_message_row(a[0]))]
        return [click(lambda o: _named(o, f"Open {a[0]}")), click(lambda o: _id(o, "archive-btn"))]
    if k == "inbox.reply":
        return [click(lambda o: _named(o, f"Open {a[0]}")), _type(lambda o: _id(o, "reply-text"), a[1]),
                click(lambda o: _id(o, "send-reply")), back]
    if k == "settings.name":
        return [_type(lambda o: _id(o, "display-name"), a[0])]
    if k == "settings.email":
        return [_type(lambda o: _id(o, "email"), a[0])]
    if k == "settings.notifications":
        return [_toggle_to("notifications", a[0] == "on", phone)]
    if k in ("settings.theme", "settings.language"):
        return [_select(k.split(".")[1], a[0])]
    if k == "settings.save":
        return [click(lambda o: _id(o, "save"))]
    if k in ("table.qty", "table.price"):
        label = "Quantity" if k == "table.qty" else "Price"
        return [_type(lambda o: _named(o, f"{label} of {a[0]}"), str(a[1]), enter=True)]
    if k == "table.add":
        return [_type(lambda o: _id(o, "new-row-name"), a[0]), click(lambda o: _id(o, "add-row"))]
    if k == "table.delete":
        return [click(lambda o: _named(o, f"Delete row {a[0]}"))]
    if k == "table.sort":
        return [_select("sort-by", {"name": "Name", "qty": "Quantity", "price": "Price"}[a[0]])]
    if k == "checkout.qty":
        return [_type(lambda o: _named(o, f"Quantity of {a[0]}"), str(a[1]), enter=True)]
    if k == "checkout.remove":
        return [click(lambda o: _named(o, f"Remove {a[0]}"))]
    if k == "checkout.coupon":
        return [_type(lambda o: _id(o, "coupon"), a[0]), click(lambda o: _id(o, "apply-coupon"))]
    if k == "checkout.shipping":
        return [click(lambda o: next((e for e in o.elements if e.type == "radio" and e.name == a[0].capitalize()),
                                     None))]
    if k == "checkout.pay":
        return [click(lambda o: _id(o, "pay"))]
    return []


def plan(instruction: str, *, phone: bool) -> list[Move]:
    """The moves that carry out an apps instruction."""
    app, ops = parse_instruction(instruction)
    moves: list[Move] = []
    if phone:
        moves.append(lambda obs: Action("open", text=APP_TITLES[app]))
    for op in ops:
        moves.extend(_moves(op, phone))
    return moves


def apps_rule(obs: Any, mem: dict) -> Action | None:
    """One move at a time (the policy stops when the plan is done)."""
    if "plan" not in mem:
        mem["plan"] = plan(obs.goal, phone=obs.size[0] < 500)
        mem["i"] = 0
    while mem["i"] < len(mem["plan"]):
        move = mem["plan"][mem["i"]]
        mem["i"] += 1
        action = move(obs)
        if action is not None:
            return action
    return None
