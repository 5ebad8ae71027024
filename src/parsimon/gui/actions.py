"""The unified action space: one :class:`Action` for the browser, the phone and the desktop.

GUI-Owl-1.5 (arXiv 2602.16855) ships three tool schemas, ``computer_use``, ``mobile_use`` and
``browser_use``, with a shared envelope and shared verbs; :mod:`parsimon.gui.codecs` maps each of their
calls to and from an :class:`Action` without loss. An action is a verb (``kind``) plus the fields that
verb takes; every other field stays at its default, so two actions are equal exactly when they mean the
same thing.

Targets are a :class:`Point` (``space="norm1000"``: GUI-Owl's 0–1000 grid on both axes, or ``"px"``:
CSS or screen pixels), an :class:`Element` (a Set-of-Marks label) or :data:`WINDOW` (the whole page, for
scrolling).

Example:
    >>> a = Action("click", target=Point(500, 120))
    >>> Action.from_dict(a.to_dict()) == a
    True
    >>> Action("type", text="hello", enter=True).describe()
    "type 'hello' + Enter"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from parsimon.errors import InvalidAction

__all__ = [
    "ACTION_FIELDS", "KINDS", "SPACES", "TERMINAL_KINDS", "WINDOW", "Action", "Element", "Point", "Target",
    "Window",
]

SPACES = ("norm1000", "px")
DIRECTIONS = ("up", "down", "left", "right")
STATUSES = ("success", "failure")

# kind -> (required fields, optional fields); every field not listed must keep its default.
_POINTER = ("target",)
ACTION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "click": (_POINTER, ()),
    "double_click": (_POINTER, ()),
    "triple_click": (_POINTER, ()),
    "right_click": (_POINTER, ()),
    "middle_click": (_POINTER, ()),
    "hover": (_POINTER, ()),
    "long_press": (_POINTER, ("seconds",)),
    "type": (("text",), ("target", "clear", "enter")),
    "key": (("keys",), ()),
    "device_key": (("text",), ()),  # a hardware key event of a phone (adb keyevent names)
    "scroll": (("direction",), ("target", "amount")),
    "drag": (("end",), ("target",)),  # target None: from where the pointer is now
    "select": (("target", "option"), ()),
    "go_back": ((), ()),
    "home": ((), ()),
    "menu": ((), ()),
    "open": (("text",), ()),  # an app by name
    "wait": ((), ("seconds",)),
    "answer": (("text",), ()),
    "terminate": (("status",), ()),
    "interact": (("text",), ()),  # hand the task to a person
}
KINDS = tuple(ACTION_FIELDS)
TERMINAL_KINDS = frozenset({"answer", "terminate"})


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidAction(f"`{name}` must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Point:
    """A point on the screen: GUI-Owl's 0–1000 grid (``"norm1000"``) or pixels (``"px"``)."""

    x: float
    y: float
    space: str = "norm1000"

    def __post_init__(self) -> None:
        _number("x", self.x)
        _number("y", self.y)
        if self.space not in SPACES:
            raise InvalidAction(f"`space` must be one of {list(SPACES)}, got {self.space!r}")
        if self.space == "norm1000" and not (0 <= self.x <= 1000 and 0 <= self.y <= 1000):
            raise InvalidAction(f"a norm1000 point must lie in [0, 1000] on both axes, got ({self.x}, {self.y})")


@dataclass(frozen=True)
class Element:
    """A Set-of-Marks label of an element (an int, or a string as some models write it)."""

    id: int | str

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, (int, str)) or self.id == "":
            raise InvalidAction(f"an element label must be an int or a non-empty string, got {self.id!r}")


@dataclass(frozen=True)
class Window:
    """The whole page or screen (the scroll target ``WINDOW`` of ``browser_use``)."""


WINDOW = Window()
Target = Point | Element | Window


def _target_from(value: Any, name: str) -> Target | None:
    if value is None or isinstance(value, (Point, Element, Window)):
        return value
    if isinstance(value, dict):
        if "point" in value:
            x, y = value["point"]
            return Point(x, y, value.get("space", "norm1000"))
        if "element" in value:
            return Element(value["element"])
        if value.get("window"):
            return WINDOW
    raise InvalidAction(f"`{name}` must be a point, an element or the window, got {value!r}")


def _target_dict(t: Target | None) -> dict | None:
    if t is None:
        return None
    if isinstance(t, Point):
        return {"point": [t.x, t.y], "space": t.space}
    if isinstance(t, Element):
        return {"element": t.id}
    return {"window": True}


@dataclass(frozen=True)
class Action:
    """One GUI action (see the module docstring and :data:`ACTION_FIELDS` for what each kind takes).

    Attributes:
        kind: The verb, one of :data:`KINDS`.
        target: Where it acts (pointer verbs, ``select``, optionally ``type`` and ``scroll``).
        end: Where a ``drag`` ends.
        text: Text to type, an answer, a question for a person, an app name or a device key name.
        keys: Keys pressed together, in order (``("ctrl", "c")``).
        option: The option to pick (``select``).
        direction: ``up``, ``down``, ``left`` or ``right`` (``scroll``).
        amount: How far to scroll, in pixels; None scrolls about one page.
        seconds: How long to wait or press; None uses the environment's default.
        status: ``success`` or ``failure`` (``terminate``).
        clear: Clear the field before typing.
        enter: Press Enter after typing.
    """

    kind: str
    target: Target | None = None
    end: Target | None = None
    text: str | None = None
    keys: tuple[str, ...] | None = None
    option: str | None = None
    direction: str | None = None
    amount: float | None = None
    seconds: float | None = None
    status: str | None = None
    clear: bool = False
    enter: bool = False
    meta: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ACTION_FIELDS:
            raise InvalidAction(f"`kind` must be one of {list(KINDS)}, got {self.kind!r}")
        required, optional = ACTION_FIELDS[self.kind]
        for f in fields(self):
            if f.name in ("kind", "meta"):
                continue
            value = getattr(self, f.name)
            is_default = value is f.default or value == f.default
            if f.name in required and value is None:
                raise InvalidAction(f"action {self.kind!r} needs `{f.name}`")
            if f.name not in required and f.name not in optional and not is_default:
                raise InvalidAction(f"action {self.kind!r} does not take `{f.name}` (got {value!r})")
        if isinstance(self.keys, list):
            object.__setattr__(self, "keys", tuple(self.keys))
        self._check_values()

    def _check_values(self) -> None:
        for name in ("target", "end"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (Point, Element, Window)):
                raise InvalidAction(f"`{name}` must be a Point, an Element or WINDOW, got {value!r}")
        if self.end is not None and isinstance(self.end, Window):
            raise InvalidAction("a drag cannot end on the window")
        if isinstance(self.target, Window) and self.kind != "scroll":
            raise InvalidAction(f"only scroll can target the window, not {self.kind!r}")
        for name in ("text", "option"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidAction(f"`{name}` must be a string, got {value!r}")
        if self.kind in ("interact", "open", "device_key") and not (self.text or "").strip():
            raise InvalidAction(f"action {self.kind!r} needs a non-empty `text`")
        if self.keys is not None:
            if not self.keys or not all(isinstance(k, str) and k for k in self.keys):
                raise InvalidAction(f"`keys` must be a non-empty list of key names, got {self.keys!r}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise InvalidAction(f"`direction` must be one of {list(DIRECTIONS)}, got {self.direction!r}")
        if self.amount is not None:
            _number("amount", self.amount)
            if self.amount < 0:
                raise InvalidAction(f"`amount` must be >= 0 pixels, got {self.amount!r}")
        if self.seconds is not None:
            _number("seconds", self.seconds)
            if self.seconds < 0:
                raise InvalidAction(f"`seconds` must be >= 0, got {self.seconds!r}")
        if self.status is not None and self.status not in STATUSES:
            raise InvalidAction(f"`status` must be one of {list(STATUSES)}, got {self.status!r}")
        for name in ("clear", "enter"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidAction(f"`{name}` must be true or false, got {getattr(self, name)!r}")

    @property
    def terminal(self) -> bool:
        """True for ``answer`` and ``terminate``: the agent ends the episode."""
        return self.kind in TERMINAL_KINDS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict holding only the fields that differ from their defaults (and ``kind``)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            if f.name in ("kind", "meta"):
                continue
            value = getattr(self, f.name)
            if value is None or (f.name in ("clear", "enter") and value is False):
                continue
            if f.name in ("target", "end"):
                value = _target_dict(value)
            elif f.name == "keys":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        """The inverse of :meth:`to_dict`; :class:`InvalidAction` names what is wrong."""
        if not isinstance(data, dict) or "kind" not in data:
            raise InvalidAction(f"an action must be a JSON object with a `kind`, got {data!r:.200}")
        known = {f.name for f in fields(cls)} - {"meta"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidAction(f"unknown action field(s) {unknown}; accepted: {sorted(known)}")
        values = dict(data)
        values["target"] = _target_from(values.get("target"), "target")
        values["end"] = _target_from(values.get("end"), "end")
        if values.get("keys") is not None:
            if not isinstance(values["keys"], (list, tuple)):
                raise InvalidAction(f"`keys` must be a list, got {values['keys']!r}")
            values["keys"] = tuple(values["keys"])
        return cls(**values)

    def describe(self) -> str:
        """A short human-readable line (``click #12``, ``type 'abc'``)."""
        def where(t: Target | None) -> str:
            if isinstance(t, Point):
                return f"({t.x:g}, {t.y:g})" + ("px" if t.space == "px" else "")
            if isinstance(t, Element):
                return f"#{t.id}"
            return "window" if isinstance(t, Window) else ""

        k = self.kind
        if k in ("click", "double_click", "triple_click", "right_click", "middle_click", "hover", "long_press"):
            return f"{k} {where(self.target)}"
        if k == "type":
            on = f" into {where(self.target)}" if self.target is not None else ""
            return f"type {self.text!r}{on}" + (" + Enter" if self.enter else "")
        if k == "key":
            return "key " + "+".join(self.keys or ())
        if k == "scroll":
            amt = f" {self.amount:g}px" if self.amount is not None else ""
            return f"scroll {self.direction}{amt}" + (f" in {where(self.target)}" if self.target else "")
        if k == "drag":
            return f"drag {where(self.target) or 'pointer'} -> {where(self.end)}"
        if k == "select":
            return f"select {self.option!r} in {where(self.target)}"
        if k == "terminate":
            return f"terminate {self.status}"
        if k in ("answer", "interact", "open", "device_key"):
            return f"{k} {self.text!r}"
        if k == "wait":
            return "wait" + (f" {self.seconds:g}s" if self.seconds is not None else "")
        return k
