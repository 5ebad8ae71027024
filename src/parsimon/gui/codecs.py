"""Lossless codecs between GUI-Owl's tool calls and the unified :class:`~parsimon.gui.actions.Action`.

``decode(platform, arguments)`` turns the ``arguments`` object of a ``computer_use``, ``mobile_use`` or
``browser_use`` call into an :class:`Action`; ``encode(platform, action)`` does the reverse. For every
valid call, ``encode(p, decode(p, args)) == args``; for every action a platform can express,
``decode(p, encode(p, a)) == a`` (property tests check both). An action a platform cannot express (a
``select`` for ``computer_use``, a labelled click for ``mobile_use``) raises :class:`InvalidAction`
naming the platform.

The mapping:

=================================  ==========================================================
``computer_use``                   unified
=================================  ==========================================================
left/right/middle/double/triple    click / right_click / middle_click / double_click /
_click(coordinate)                 triple_click at a norm1000 point
mouse_move(coordinate)             hover
left_click_drag(coordinate)        drag from the pointer (``target`` None) to ``end``
scroll / hscroll(pixels[, coord])  scroll up/down (``pixels`` > 0 is up) / right/left (> 0 is
                                   right), ``amount = |pixels|``; 0 is up / right
key(keys) / type(text)             key / type
wait(time), answer, terminate,     wait(seconds), answer, terminate, interact
interact
=================================  ==========================================================

``mobile_use``: click → click, long_press → long_press, swipe → drag (both points), type → type,
key(text) → device_key (an adb key event), system_button Back/Home/Menu/Enter → go_back / home / menu /
key Enter, open(text) → open, wait/answer/interact/terminate as above.

``browser_use`` (Set-of-Marks labels): click(label) → click an :class:`Element`, type(label, text) → type
into it with ``clear`` and ``enter`` (the client clears the field and presses Enter), scroll(direction[,
label]) → scroll (label ``WINDOW`` → :data:`WINDOW`, no label → no target), select → select,
wait([time]) → wait, go_back → go_back, wikipedia → open("Wikipedia"), answer → answer.
"""

from __future__ import annotations

import math
from typing import Any

from parsimon.errors import InvalidAction
from parsimon.gui.actions import WINDOW, Action, Element, Point, Window
from parsimon.gui.coords import to_norm1000
from parsimon.gui.tools import ACTION_ARGS, PLATFORMS, tool_name

__all__ = ["decode", "decode_call", "encode", "encode_call"]

_COMPUTER_CLICKS = {"left_click": "click", "right_click": "right_click", "middle_click": "middle_click",
                    "double_click": "double_click", "triple_click": "triple_click", "mouse_move": "hover"}
_CLICK_NAMES = {v: k for k, v in _COMPUTER_CLICKS.items()}
_BUTTONS = {"Back": "go_back", "Home": "home", "Menu": "menu"}
_BUTTON_OF = {v: k for k, v in _BUTTONS.items()}
_WIKIPEDIA = "Wikipedia"


def _platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise InvalidAction(f"`platform` must be one of {list(PLATFORMS)}, got {platform!r}")
    return platform


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _check_args(platform: str, args: Any) -> str:
    """Validate the argument names and types of one call; return its action name."""
    if not isinstance(args, dict):
        raise InvalidAction(f"{tool_name(platform)} arguments must be a JSON object, got {args!r:.200}")
    name = args.get("action")
    table = ACTION_ARGS[platform]
    if name not in table:
        raise InvalidAction(f"{tool_name(platform)} `action` must be one of {list(table)}, got {name!r}")
    required, optional = table[name]
    missing = [a for a in required if a not in args]
    if missing:
        raise InvalidAction(f"{tool_name(platform)} action {name!r} needs {missing}")
    extra = sorted(set(args) - {"action", *required, *optional})
    if extra:
        raise InvalidAction(f"{tool_name(platform)} action {name!r} does not take {extra}")
    for key, value in args.items():
        _check_type(platform, name, key, value)
    return name


def _check_type(platform: str, action: str, key: str, value: Any) -> None:
    where = f"{tool_name(platform)} {action}: `{key}`"
    if key in ("coordinate", "coordinate2"):
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value)):
            raise InvalidAction(f"{where} must be [x, y] numbers, got {value!r}")
        if not all(0 <= v <= 1000 for v in value):
            raise InvalidAction(f"{where} must lie in [0, 1000] (the screen is 1000x1000), got {value!r}")
    elif key == "keys":
        if not (isinstance(value, list) and value and all(isinstance(k, str) and k for k in value)):
            raise InvalidAction(f"{where} must be a non-empty list of key names, got {value!r}")
    elif key in ("text", "option"):
        if not isinstance(value, str):
            raise InvalidAction(f"{where} must be a string, got {value!r}")
    elif key == "pixels":
        if not _is_number(value):
            raise InvalidAction(f"{where} must be a number, got {value!r}")
    elif key == "time":
        if not _is_number(value) or value < 0:
            raise InvalidAction(f"{where} must be a number of seconds >= 0, got {value!r}")
    elif key == "status":
        if value not in ("success", "failure"):
            raise InvalidAction(f"{where} must be 'success' or 'failure', got {value!r}")
    elif key == "button":
        if value not in ("Back", "Home", "Menu", "Enter"):
            raise InvalidAction(f"{where} must be one of ['Back', 'Home', 'Menu', 'Enter'], got {value!r}")
    elif key == "direction":
        if value not in ("up", "down"):
            raise InvalidAction(f"{where} must be 'up' or 'down', got {value!r}")
    elif key == "label":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            raise InvalidAction(f"{where} must be an element's number (or WINDOW), got {value!r}")


def _point(value: list) -> Point:
    return Point(value[0], value[1], "norm1000")


def _label(value: int | str, action: str) -> Element:
    if value == "WINDOW":
        raise InvalidAction(f"browser_use {action}: label WINDOW is only for scroll")
    return Element(value)


def decode(platform: str, arguments: dict[str, Any]) -> Action:
    """The unified action of one tool call's ``arguments`` (validated; :class:`InvalidAction` otherwise)."""
    name = _check_args(_platform(platform), arguments)
    a = arguments
    if name in ("answer", "interact"):
        return Action(name, text=a["text"])
    if name == "terminate":
        return Action("terminate", status=a["status"])
    if name == "wait":
        return Action("wait", seconds=a.get("time"))
    if name == "type" and platform != "browser":
        return Action("type", text=a["text"])
    if platform == "computer":
        if name in _COMPUTER_CLICKS:
            return Action(_COMPUTER_CLICKS[name], target=_point(a["coordinate"]))
        if name == "key":
            return Action("key", keys=tuple(a["keys"]))
        if name == "left_click_drag":
            return Action("drag", end=_point(a["coordinate"]))
        p = a["pixels"]
        target = _point(a["coordinate"]) if "coordinate" in a else None
        if name == "scroll":
            return Action("scroll", direction="down" if p < 0 else "up", amount=abs(p), target=target)
        return Action("scroll", direction="left" if p < 0 else "right", amount=abs(p), target=target)
    if platform == "mobile":
        if name == "click":
            return Action("click", target=_point(a["coordinate"]))
        if name == "long_press":
            return Action("long_press", target=_point(a["coordinate"]), seconds=a.get("time"))
        if name == "swipe":
            return Action("drag", target=_point(a["coordinate"]), end=_point(a["coordinate2"]))
        if name == "key":
            return Action("device_key", text=a["text"])
        if name == "system_button":
            if a["button"] == "Enter":
                return Action("key", keys=("Enter",))
            return Action(_BUTTONS[a["button"]])
        return Action("open", text=a["text"])
    if name == "click":
        return Action("click", target=_label(a["label"], name))
    if name == "type":
        return Action("type", target=_label(a["label"], name), text=a["text"], clear=True, enter=True)
    if name == "scroll":
        label = a.get("label")
        target = None if label is None else (WINDOW if label == "WINDOW" else Element(label))
        return Action("scroll", direction=a["direction"], target=target)
    if name == "select":
        return Action("select", target=_label(a["label"], name), option=a["option"])
    if name == "go_back":
        return Action("go_back")
    return Action("open", text=_WIKIPEDIA)


def _not_expressible(platform: str, action: Action, why: str = "") -> InvalidAction:
    extra = f": {why}" if why else ""
    return InvalidAction(f"{tool_name(platform)} cannot express {action.describe()!r}{extra}")


def _coord(platform: str, action: Action, target: Any, size: tuple[float, float] | None) -> list:
    if isinstance(target, Point):
        if target.space == "px":
            if size is None:
                raise _not_expressible(platform, action, "a pixel point needs the screen `size`")
            target = to_norm1000(target, size)
        return [target.x, target.y]
    raise _not_expressible(platform, action, "it needs a point on the 0-1000 grid")


def encode(platform: str, action: Action, *, size: tuple[float, float] | None = None) -> dict[str, Any]:
    """The ``arguments`` of the tool call expressing ``action`` on ``platform``.

    Args:
        platform: ``computer``, ``mobile`` or ``browser``.
        action: The unified action.
        size: The screen's (width, height) in pixels, to express pixel points on the 0–1000 grid.

    Raises:
        InvalidAction: the platform's tool cannot express the action.
    """
    _platform(platform)
    if not isinstance(action, Action):
        raise InvalidAction(f"`action` must be an Action, got {type(action).__name__}")
    k = action.kind
    if k in ("answer", "interact") and (platform != "browser" or k == "answer"):
        return {"action": k, "text": action.text}
    if k == "terminate" and platform != "browser":
        return {"action": "terminate", "status": action.status}
    if k == "wait":
        if action.seconds is None and platform != "browser":
            raise _not_expressible(platform, action, "`time` is required")
        return {"action": "wait"} if action.seconds is None else {"action": "wait", "time": action.seconds}
    if k == "type" and platform != "browser" and action.target is None and not action.clear \
            and not action.enter:
        return {"action": "type", "text": action.text}
    if platform == "computer":
        return _encode_computer(action, size)
    if platform == "mobile":
        return _encode_mobile(action, size)
    return _encode_browser(action)


def _encode_computer(action: Action, size: tuple[float, float] | None) -> dict[str, Any]:
    k, p = action.kind, "computer"
    if k in _CLICK_NAMES:
        return {"action": _CLICK_NAMES[k], "coordinate": _coord(p, action, action.target, size)}
    if k == "key":
        return {"action": "key", "keys": list(action.keys or ())}
    if k == "drag" and action.target is None:
        return {"action": "left_click_drag", "coordinate": _coord(p, action, action.end, size)}
    if k == "scroll" and action.amount is not None and not isinstance(action.target, (Element, Window)):
        if action.amount == 0 and action.direction in ("down", "left"):
            raise _not_expressible(p, action, "a zero-pixel scroll is written as up / right")
        sign = -1 if action.direction in ("down", "left") else 1
        out: dict[str, Any] = {"action": "scroll" if action.direction in ("up", "down") else "hscroll",
                               "pixels": sign * action.amount}
        if action.target is not None:
            out["coordinate"] = _coord(p, action, action.target, size)
        return out
    raise _not_expressible(p, action)


def _encode_mobile(action: Action, size: tuple[float, float] | None) -> dict[str, Any]:
    k, p = action.kind, "mobile"
    if k == "click":
        return {"action": "click", "coordinate": _coord(p, action, action.target, size)}
    if k == "long_press":
        out: dict[str, Any] = {"action": "long_press", "coordinate": _coord(p, action, action.target, size)}
        if action.seconds is not None:
            out["time"] = action.seconds
        return out
    if k == "drag" and action.target is not None:
        return {"action": "swipe", "coordinate": _coord(p, action, action.target, size),
                "coordinate2": _coord(p, action, action.end, size)}
    if k == "device_key":
        return {"action": "key", "text": action.text}
    if k in _BUTTON_OF:
        return {"action": "system_button", "button": _BUTTON_OF[k]}
    if k == "key" and action.keys == ("Enter",):
        return {"action": "system_button", "button": "Enter"}
    if k == "open":
        return {"action": "open", "text": action.text}
    raise _not_expressible(p, action)


def _encode_browser(action: Action) -> dict[str, Any]:
    k, p, t = action.kind, "browser", action.target
    labelled = isinstance(t, Element) and t.id != "WINDOW"
    if k == "click" and labelled:
        return {"action": "click", "label": t.id}
    if k == "type" and labelled and action.clear and action.enter:
        return {"action": "type", "label": t.id, "text": action.text}
    if k == "scroll" and action.direction in ("up", "down") and action.amount is None \
            and not isinstance(t, Point) and t != Element("WINDOW"):
        out: dict[str, Any] = {"action": "scroll", "direction": action.direction}
        if t is not None:
            out["label"] = "WINDOW" if isinstance(t, Window) else t.id
        return out
    if k == "select" and labelled:
        return {"action": "select", "label": t.id, "option": action.option}
    if k == "go_back":
        return {"action": "go_back"}
    if k == "open" and action.text == _WIKIPEDIA:
        return {"action": "wikipedia"}
    raise _not_expressible(p, action)


def decode_call(platform: str, call: dict[str, Any]) -> Action:
    """The action of a whole tool call ``{"name": ..., "arguments": {...}}`` (the name is checked)."""
    if not isinstance(call, dict) or "name" not in call or "arguments" not in call:
        raise InvalidAction(f"a tool call must be {{'name': ..., 'arguments': {{...}}}}, got {call!r:.200}")
    if call["name"] != tool_name(platform):
        raise InvalidAction(f"expected a call of {tool_name(platform)}, got {call['name']!r}")
    return decode(platform, call["arguments"])


def encode_call(platform: str, action: Action, *, size: tuple[float, float] | None = None) -> dict[str, Any]:
    """``{"name": <tool>, "arguments": encode(...)}``."""
    return {"name": tool_name(platform), "arguments": encode(platform, action, size=size)}
