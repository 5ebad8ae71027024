"""Carry out an :class:`~parsimon.gui.actions.Action` on a Playwright page.

Targets resolve to CSS pixels: a norm1000 point scales to the viewport, an :class:`Element` label is
the ``data-pid`` element's centre (scrolled into view first). Pointer verbs are real input events
(``page.mouse`` on a desktop page; CDP ``Input.dispatchTouchEvent`` touches on a phone page, so
``touchstart``/``touchend`` handlers and native touch scrolling see a finger), keys are real key events.
Time passes on the page's virtual clock when one is installed (``wait``, ``long_press``), so waiting
costs no wall time and is deterministic.

Errors an agent can cause (a label that is not on the page, a ``select`` on something that is not a
select, an app that does not exist) raise :class:`~parsimon.errors.InvalidAction`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import InvalidAction
from parsimon.gui.actions import Action, Element, Point, Window
from parsimon.gui.coords import to_pixels

__all__ = ["KEY_NAMES", "Executor", "playwright_key"]

# GUI-Owl / pyautogui / adb key names -> Playwright key names.
KEY_NAMES = {
    "ctrl": "Control", "control": "Control", "shift": "Shift", "alt": "Alt", "option": "Alt", "cmd": "Meta",
    "command": "Meta", "meta": "Meta", "win": "Meta", "super": "Meta", "enter": "Enter", "return": "Enter",
    "esc": "Escape", "escape": "Escape", "tab": "Tab", "space": " ", "backspace": "Backspace",
    "delete": "Delete", "del": "Delete", "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft",
    "right": "ArrowRight", "arrowup": "ArrowUp", "arrowdown": "ArrowDown", "arrowleft": "ArrowLeft",
    "arrowright": "ArrowRight", "home": "Home", "end": "End", "pageup": "PageUp", "pagedown": "PageDown",
    "pgup": "PageUp", "pgdn": "PageDown", "insert": "Insert", "capslock": "CapsLock",
}
# adb key events (mobile_use `key`) that have a browser meaning.
DEVICE_KEYS = {"enter": "Enter", "keycode_enter": "Enter", "del": "Backspace", "keycode_del": "Backspace",
               "tab": "Tab", "keycode_tab": "Tab", "space": " ", "keycode_space": " ", "escape": "Escape",
               "keycode_escape": "Escape", "dpad_up": "ArrowUp", "dpad_down": "ArrowDown",
               "dpad_left": "ArrowLeft", "dpad_right": "ArrowRight", "back": "@back", "keycode_back": "@back",
               "home": "@home", "keycode_home": "@home", "menu": "@menu", "keycode_menu": "@menu"}


def playwright_key(name: str) -> str:
    """The Playwright name of a key (``ctrl`` → ``Control``, ``f5`` → ``F5``, ``a`` → ``a``)."""
    low = name.strip().lower()
    if low in KEY_NAMES:
        return KEY_NAMES[low]
    if len(low) >= 2 and low[0] == "f" and low[1:].isdigit():
        return low.upper()
    if len(name) == 1:
        return name
    return name[:1].upper() + name[1:]


@dataclass
class Executor:
    """Performs actions on one page.

    Args:
        page: The Playwright page.
        touch: Pointer verbs are touches (a phone context).
        advance: Moves the page's virtual clock by milliseconds (None: real sleeping, capped).
        home_url: Where ``home`` goes.
        apps: App name (lower case) → URL, for ``open``.
        page_scroll: Pixels one ``scroll`` without an amount moves (default: 80% of the viewport).
    """

    page: Any
    touch: bool = False
    advance: Callable[[float], Any] | None = None
    home_url: str | None = None
    apps: dict[str, str] = field(default_factory=dict)
    page_scroll: float | None = None
    pointer: tuple[float, float] = (0.0, 0.0)
    _cdp: Any = None

    @property
    def viewport(self) -> tuple[int, int]:
        """The viewport (width, height) in CSS pixels."""
        vs = self.page.viewport_size or {"width": 1280, "height": 720}
        return vs["width"], vs["height"]

    def _cdp_session(self) -> Any:
        if self._cdp is None:
            self._cdp = self.page.context.new_cdp_session(self.page)
        return self._cdp

    def pass_time(self, ms: float) -> None:
        """Let ``ms`` milliseconds pass on the page (virtual clock, or a real sleep of at most 5 s)."""
        if self.advance is not None:
            self.advance(ms)
        else:
            time.sleep(min(ms, 5000) / 1000)

    def resolve(self, target: Any) -> tuple[float, float]:
        """CSS-pixel coordinates of a point or an element's centre."""
        if isinstance(target, Point):
            p = to_pixels(target, self.viewport)
            return float(p.x), float(p.y)
        if isinstance(target, Element):
            box = self.page.evaluate(
                """(pid) => { const el = document.querySelector('[data-pid="' + pid + '"]');
                   if (!el) return null; el.scrollIntoView({block: 'nearest', inline: 'nearest'});
                   const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }""",
                str(target.id))
            if box is None:
                raise InvalidAction(f"there is no element labelled {target.id} on the page")
            x, y, w, h = box
            if w <= 0 or h <= 0:
                raise InvalidAction(f"element {target.id} is not visible (its box is {w:g} x {h:g})")
            return x + w / 2, y + h / 2
        raise InvalidAction(f"cannot point at {target!r}")

    # -- pointer primitives (mouse on a desktop page, touch on a phone page)
    def _touch(self, kind: str, x: float, y: float, timestamp: float | None = None) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1, "radiusX": 1, "radiusY": 1, "force": 1}]
        params: dict[str, Any] = {"type": kind, "touchPoints": points}
        if timestamp is not None:
            params["timestamp"] = timestamp
        self._cdp_session().send("Input.dispatchTouchEvent", params)

    def tap(self, x: float, y: float, *, count: int = 1, button: str = "left") -> None:
        """A click (or a tap on a phone) at CSS pixels."""
        if self.touch and button == "left":
            for _ in range(count):
                self._touch("touchStart", x, y)
                self._touch("touchEnd", x, y)
        else:
            self.page.mouse.click(x, y, click_count=count, button=button)
        self.pointer = (x, y)

    def press(self, x: float, y: float, ms: float) -> None:
        """Press and hold for ``ms`` milliseconds."""
        if self.touch:
            self._touch("touchStart", x, y)
            self.pass_time(ms)
            self._touch("touchEnd", x, y)
        else:
            self.page.mouse.move(x, y)
            self.page.mouse.down()
            self.pass_time(ms)
            self.page.mouse.up()
        self.pointer = (x, y)

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
        """Drag (or swipe) from ``start`` to ``end``."""
        (x0, y0), (x1, y1) = start, end
        if self.touch:
            # Event timestamps of a 300 ms swipe that rests 120 ms before lifting: a finger that stops before
            # it lifts starts no fling, so the next tap is a tap (a tap during a fling only stops the fling).
            t = time.time() - (0.025 * steps + 0.13)  # the gesture ends now; its events lie in the past
            self._touch("touchStart", x0, y0, t)
            for i in range(1, steps + 1):
                self._touch("touchMove", x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps, t + 0.025 * i)
                self.pass_time(8)
            self._touch("touchMove", x1, y1, t + 0.025 * steps + 0.12)
            self._touch("touchEnd", x1, y1, t + 0.025 * steps + 0.13)
        else:
            self.page.mouse.move(x0, y0)
            self.page.mouse.down()
            self.page.mouse.move(x1, y1, steps=steps)
            self.page.mouse.up()
        self.pointer = (x1, y1)

    # -- the verbs
    def run(self, action: Action) -> dict[str, Any]:
        """Perform ``action``; return what happened (``{"note": ...}``), for the step's info."""
        k = action.kind
        if k in ("answer", "terminate", "interact"):
            return {"note": "no page effect"}
        if k in ("click", "double_click", "triple_click", "right_click", "middle_click"):
            x, y = self.resolve(action.target)
            count = {"double_click": 2, "triple_click": 3}.get(k, 1)
            button = {"right_click": "right", "middle_click": "middle"}.get(k, "left")
            self.tap(x, y, count=count, button=button)
            return {"at": [x, y]}
        if k == "hover":
            x, y = self.resolve(action.target)
            self.page.mouse.move(x, y)
            self.pointer = (x, y)
            return {"at": [x, y]}
        if k == "long_press":
            x, y = self.resolve(action.target)
            self.press(x, y, 1000 * (action.seconds if action.seconds is not None else 0.8))
            return {"at": [x, y]}
        if k == "type":
            return self._type(action)
        if k == "key":
            return self._chord([playwright_key(key) for key in action.keys or ()])
        if k == "device_key":
            return self._device_key(action.text or "")
        if k == "scroll":
            return self._scroll(action)
        if k == "drag":
            start = self.pointer if action.target is None else self.resolve(action.target)
            end = self.resolve(action.end)
            self.drag(start, end)
            return {"from": list(start), "to": list(end)}
        if k == "select":
            return self._select(action)
        if k == "go_back":
            self.page.go_back(wait_until="load")
            return {"url": self.page.url}
        if k == "home":
            if not self.home_url:
                raise InvalidAction("this environment has no home screen")
            self.page.goto(self.home_url, wait_until="load")
            return {"url": self.page.url}
        if k == "menu":
            self.page.evaluate("() => window.dispatchEvent(new CustomEvent('systembutton', {detail: 'Menu'}))")
            return {"note": "dispatched the 'systembutton' Menu event"}
        if k == "open":
            url = self.apps.get((action.text or "").strip().lower())
            if url is None:
                raise InvalidAction(f"there is no app called {action.text!r}; apps: {sorted(self.apps)}")
            self.page.goto(url, wait_until="load")
            return {"url": self.page.url}
        if k == "wait":
            self.pass_time(1000 * (action.seconds if action.seconds is not None else 1.0))
            return {}
        raise InvalidAction(f"the browser cannot perform {k!r}")

    def _type(self, action: Action) -> dict[str, Any]:
        out: dict[str, Any] = {"typed": len(action.text or "")}
        if action.target is not None:
            x, y = self.resolve(action.target)
            self.tap(x, y)
            out["at"] = [x, y]
        if action.clear:
            self.page.keyboard.press("Control+A")
            self.page.keyboard.press("Backspace")
        self.page.keyboard.type(action.text or "")
        if action.enter:
            self.page.keyboard.press("Enter")
        return out

    def _chord(self, keys: list[str]) -> dict[str, Any]:
        for key in keys:
            self.page.keyboard.down(key)
        for key in reversed(keys):
            self.page.keyboard.up(key)
        return {"keys": keys}

    def _device_key(self, name: str) -> dict[str, Any]:
        key = DEVICE_KEYS.get(name.strip().lower())
        if key is None:
            raise InvalidAction(f"device key {name!r} has no meaning in a browser; accepted: {sorted(DEVICE_KEYS)}")
        if key == "@back":
            return self.run(Action("go_back"))
        if key == "@home":
            return self.run(Action("home"))
        if key == "@menu":
            return self.run(Action("menu"))
        self.page.keyboard.press(key)
        return {"keys": [key]}

    def _scroll(self, action: Action) -> dict[str, Any]:
        w, h = self.viewport
        amount = action.amount if action.amount is not None else (self.page_scroll or 0.8 * h)
        dx = {"left": -amount, "right": amount}.get(action.direction, 0)
        dy = {"up": -amount, "down": amount}.get(action.direction, 0)
        if action.target is None or isinstance(action.target, Window):
            x, y = w / 2, h / 2
        else:
            x, y = self.resolve(action.target)
        if self.touch:
            # a finger moves opposite to the content
            sx, sy = max(1, min(w - 1, x + dx / 2)), max(1, min(h - 1, y + dy / 2))
            ex, ey = max(1, min(w - 1, x - dx / 2)), max(1, min(h - 1, y - dy / 2))
            self.drag((sx, sy), (ex, ey))
        else:
            self.page.mouse.move(x, y)
            before = self._scroll_state(x, y) if self._can_scroll(x, y, dx, dy) else None
            self.page.mouse.wheel(dx, dy)
            self.pointer = (x, y)
            self._scroll_settled(x, y, before)
        return {"at": [x, y], "delta": [dx, dy]}

    _SCROLLS = ("([x, y]) => { const out = [window.scrollX, window.scrollY]; "
                "for (let e = document.elementFromPoint(x, y); e; e = e.parentElement) "
                "out.push(e.scrollLeft, e.scrollTop); return out; }")

    _ROOM = ("([x, y, dx, dy]) => { const room = (e) => (dy > 0 && e.scrollTop + e.clientHeight < e.scrollHeight - 1)"
             " || (dy < 0 && e.scrollTop > 0) || (dx > 0 && e.scrollLeft + e.clientWidth < e.scrollWidth - 1)"
             " || (dx < 0 && e.scrollLeft > 0); "
             "for (let e = document.elementFromPoint(x, y); e; e = e.parentElement) if (room(e)) return true; "
             "const s = document.scrollingElement || document.documentElement; return room(s); }")

    def _can_scroll(self, x: float, y: float, dx: float, dy: float) -> bool:
        """Whether the window or an element under (x, y) has room to scroll by (dx, dy): its content
        overflows that way (some that overflow do not scroll; then the wait below ends after a quarter of a
        second); a wheel that nothing can follow is not waited for."""
        try:
            return bool(self.page.evaluate(self._ROOM, [x, y, dx, dy]))
        except Exception:  # noqa: BLE001 - the page navigated; nothing to wait for
            return False

    def _scroll_state(self, x: float, y: float) -> Any:
        """The window's scroll offsets and those of every element under (x, y)."""
        try:
            return self.page.evaluate(self._SCROLLS, [x, y])
        except Exception:  # noqa: BLE001 - the page navigated; nothing to wait for
            return None

    def _scroll_settled(self, x: float, y: float, before: Any, first: float = 0.25, most: float = 1.0) -> None:
        """Wait (real time) until a wheel's scrolling has stopped: the browser scrolls after ``mouse.wheel``
        returns, so an observation taken at once can see the page half-way (or not yet) scrolled. Returns
        once the offsets under the pointer moved and then held still between two reads 20 ms apart, or when
        they have not moved within ``first`` seconds (nothing there could scroll), ``most`` at the latest."""
        if before is None:
            return
        t0, last, moved = time.perf_counter(), before, False
        while time.perf_counter() - t0 < (most if moved else first):
            time.sleep(0.02)
            now = self._scroll_state(x, y)
            if now is None:
                return
            if now != before:
                if moved and now == last:
                    return
                moved = True
            last = now

    def _select(self, action: Action) -> dict[str, Any]:
        if not isinstance(action.target, Element):
            raise InvalidAction("select needs an element label")
        tag = self.page.evaluate(
            "(pid) => { const el = document.querySelector('[data-pid=\"' + pid + '\"]'); "
            "return el ? el.tagName.toLowerCase() : null; }", str(action.target.id))
        if tag is None:
            raise InvalidAction(f"there is no element labelled {action.target.id} on the page")
        if tag != "select":
            raise InvalidAction(f"element {action.target.id} is a <{tag}>, not a <select>")
        selector = f'[data-pid="{action.target.id}"]'
        try:
            chosen = self.page.select_option(selector, label=action.option, timeout=2000)
        except Exception:  # noqa: BLE001 - Playwright raises its own TimeoutError/Error types
            try:
                chosen = self.page.select_option(selector, value=action.option, timeout=2000)
            except Exception as exc:  # noqa: BLE001
                raise InvalidAction(f"element {action.target.id} has no option {action.option!r}") from exc
        return {"selected": chosen}
