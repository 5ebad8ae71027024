"""Stage 2: draw a predicted state. Apply the delta to the frozen DOM, load it with scripts off, screenshot.

CUWM renders its text prediction with an image-editing model; here the page's own HTML and CSS are
available, so the predicted DOM is simply laid out by Chromium: :class:`Renderer` opens a browser
context with JavaScript disabled (the frozen DOM has no scripts anyway; nothing in it can run), loads
the predicted HTML with ``set_content`` under a ``<base href>`` pointing at the page's folder on the
local server (so style sheets and images load), puts the focus where the prediction says, and takes a
screenshot of the same viewport as the real page.

What a script draws cannot be reproduced this way, so every render carries flags
(:func:`render_flags`) and the prediction's render confidence drops with each: ``canvas`` (a canvas
bitmap is not in the DOM), ``embedded`` (iframes, video), ``scripted-widget`` (jQuery UI widgets, whose
looks depend on script state), ``unknown-page`` (a navigation to a page the model has not seen: the old
page is drawn).
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from parsimon.gui.world_model.delta import Navigate, PageState
from parsimon.gui.world_model.dom import Node, parse

__all__ = ["RenderResult", "Renderer", "render_flags", "task_box"]


@dataclass
class RenderResult:
    """One rendered page: the PNG, why it may be unfaithful, and the seconds it took."""

    png: bytes
    flags: tuple[str, ...]
    seconds: float

    @property
    def confidence(self) -> float:
        """1 for a faithful rendering, halved for every flag."""
        return 0.5 ** len(self.flags)


def render_flags(state: PageState, delta: Any = None) -> tuple[str, ...]:
    """Why a rendering of ``state`` (after ``delta``) may differ from the real page (see the module docstring)."""
    doc = parse(state.html)
    body = doc.body
    flags = []
    nodes = list(body.walk()) if body is not None else []
    if any(n.tag == "canvas" for n in nodes):
        flags.append("canvas")
    if any(n.tag in ("iframe", "video", "object", "embed") for n in nodes):
        flags.append("embedded")
    if any("ui-" in (n.get("class") or "") or "hasDatepicker" in (n.get("class") or "") for n in nodes):
        flags.append("scripted-widget")
    if delta is not None and any(isinstance(op, Navigate) and op.html is None and "#" not in op.url
                                 for op in delta.ops):
        flags.append("unknown-page")
    return tuple(flags)


def task_box(obs: Any) -> tuple[float, float, float, float] | None:
    """The task area of a page in CSS pixels: MiniWoB's ``#wrap`` (160 x 210), else None (the whole page)."""
    for e in obs.elements:
        if e.id == "wrap" and e.bbox[2] > 0:
            return e.bbox
    return None


# A focus given by script draws a ring where a click would not (buttons, boxes, links): after a click
# Chromium shows :focus-visible only on text fields.
_MOUSE_FOCUS_CSS = ("button:focus-visible, a:focus-visible, summary:focus-visible, [role]:focus-visible, "
                    "input:is([type=checkbox], [type=radio], [type=submit], [type=button], [type=reset], "
                    "[type=range], [type=color]):focus-visible, select:focus-visible, [tabindex]:focus-visible "
                    "{ outline: none !important; }")


def _mouse_focus(html: str) -> str:
    doc = parse(html)
    head = doc.head
    if head is not None:
        style = Node("style", [("data-parsimon", "mouse-focus")])
        style.append(_MOUSE_FOCUS_CSS)
        head.append(style)
    return doc.html()


def _with_base(html: str, base: str) -> str:
    doc = parse(html)
    head = doc.head
    if head is None:
        head = Node("head")
        doc.root.children.insert(0, head)
        head.parent = doc.root
    for n in list(head.walk()):
        if n.tag == "base" and n.parent is not None:
            n.parent.children.remove(n)
    tag = Node("base", [("href", base)])
    head.children.insert(0, tag)
    tag.parent = head
    return doc.html()


class Renderer:
    """Renders page states in one browser with JavaScript off (see the module docstring).

    Args:
        session: A :class:`~parsimon.gui.web.browser.BrowserSession` (one is started if None, and closed
            by :meth:`close`).
        origin: Where the pages' files are served now (default: the process's shared server), so
            states logged by another process, under another port, still find their style sheets.
    """

    def __init__(self, session: Any = None, origin: str | None = None) -> None:
        self._own = session is None
        self._session = session
        self._origin = origin
        self._pages: dict[tuple, Any] = {}
        self.renders = 0

    @property
    def session(self) -> Any:
        """The browser session (started on first use)."""
        if self._session is None:
            from parsimon.gui.web.browser import BrowserSession

            self._session = BrowserSession()
        return self._session

    def _base(self, url: str) -> str:
        if self._origin is None:
            from parsimon.gui.suites.base import shared_server

            self._origin = shared_server().url("/").rstrip("/")
        parts = urllib.parse.urlsplit(url)
        path = parts.path.rsplit("/", 1)[0] + "/"
        return self._origin + path

    def _page(self, size: tuple[int, int], phone: Any) -> Any:
        key = (tuple(size), getattr(phone, "width", None))
        page = self._pages.get(key)
        if page is None:
            ctx = self.session.new_context(viewport=size, phone=phone, java_script_enabled=False)
            page = ctx.new_page()
            page.set_default_timeout(10000)
            self._pages[key] = page
        return page

    def render(self, state: PageState, size: tuple[int, int], *, phone: Any = None, delta: Any = None,
               pointer: tuple[float, float] | None = None, keyboard_focus: bool = False) -> RenderResult:
        """Draw ``state`` and screenshot it.

        Args:
            state: The page to draw.
            size: The viewport (CSS px).
            phone: A phone profile (None: a desktop page at scale 1).
            delta: The delta that led to ``state`` (for the flags).
            pointer: Where the mouse rests (CSS px), so hover styles show as on the real page.
            keyboard_focus: The focus came from the keyboard (draw focus rings everywhere); otherwise
                as after a click, only text fields show one.
        """
        t0 = time.perf_counter()
        page = self._page(size, phone)
        html = state.html if keyboard_focus else _mouse_focus(state.html)
        page.set_content(_with_base(html, self._base(state.url)), wait_until="load")
        if pointer is not None:
            page.mouse.move(*pointer)
        if state.focused is not None:
            try:
                page.focus(f'[data-pid="{state.focused}"]', timeout=1000)
            except Exception:  # noqa: BLE001 - an element that cannot take the focus is drawn without it
                pass
        else:
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
        png = page.screenshot(type="png")
        self.renders += 1
        return RenderResult(png, render_flags(state, delta), time.perf_counter() - t0)

    def close(self) -> None:
        """Close the pages (and the browser, if this renderer started it)."""
        for page in self._pages.values():
            try:
                page.context.close()
            except Exception:  # noqa: BLE001 - a browser already gone
                pass
        self._pages.clear()
        if self._own and self._session is not None:
            self._session.close()
            self._session = None
