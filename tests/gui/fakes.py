"""Observations without a browser, for policy tests."""

from __future__ import annotations

import io

from parsimon.gui.web.observe import ElementInfo, Observation


def png(w: int = 64, h: int = 48, color: tuple = (240, 240, 240)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def observation(goal: str, elements: list[ElementInfo], url: str = "http://127.0.0.1/x.html") -> Observation:
    tree = "\n".join(f"[{e.pid}] {e.role} \"{e.label}\"" for e in elements)
    return Observation(goal=goal, url=url, screenshot=png(), size=(64, 48), elements=tuple(elements), axtree=tree)


def form() -> list[ElementInfo]:
    return [
        ElementInfo(1, "input", "textbox", name="Username", type="text", value="", interactive=True,
                    bbox=(2, 2, 50, 10)),
        ElementInfo(2, "button", "button", text="Submit", interactive=True, bbox=(2, 20, 30, 10)),
        ElementInfo(3, "button", "button", text="Cancel", interactive=True, bbox=(34, 20, 30, 10)),
        ElementInfo(4, "input", "checkbox", name="Remember me", type="checkbox", checked=False, interactive=True,
                    bbox=(2, 34, 10, 10)),
    ]
