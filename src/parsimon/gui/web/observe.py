"""What an agent sees of a page: screenshot, accessibility tree, Set-of-Marks labels and the frozen DOM.

:func:`observe` returns an :class:`Observation`:

* ``screenshot``: the viewport as PNG;
* ``elements``: the element table from :data:`~parsimon.gui.web.js.SNAPSHOT` (``pid`` is the
  Set-of-Marks label, also written into the page as ``data-pid``, so a label keeps pointing at the same
  element from step to step);
* ``axtree``: Chromium's accessibility tree (CDP ``Accessibility.getFullAXTree``) as indented text,
  each node that belongs to a labelled element prefixed with its label, e.g. ``[12] button "Submit"``;
* ``dom``: the HTML with live form state copied into attributes (``page.content()`` does not include it)
  and the task's hidden parts (MiniWoB's reward panel) removed;
* :meth:`Observation.som_text`: GUI-Owl's ``observation:`` text (``[12]: <button> "Submit";`` items
  joined by tabs), and :meth:`Observation.som_image`: the screenshot with numbered boxes drawn on it.

Everything is a plain value, so an observation can be logged, diffed and replayed (the transition log).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from parsimon.gui.web.js import SNAPSHOT

__all__ = ["ElementInfo", "Observation", "axtree_text", "observe"]


@dataclass(frozen=True)
class ElementInfo:
    """One element of the page (see the module docstring)."""

    pid: int
    tag: str
    role: str
    name: str = ""
    text: str = ""
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x, y, width, height in CSS px
    interactive: bool = False
    visible: bool = True
    parent: int | None = None
    id: str | None = None
    cls: str | None = None
    value: str | None = None
    type: str | None = None
    checked: bool | None = None
    selected: bool | None = None
    options: tuple[str, ...] | None = None
    disabled: bool = False
    scrollable: bool = False
    bg: str | None = None  # computed background colour, when not transparent
    irreversible: bool = False  # the app marks it (data-irreversible): its effect cannot be undone

    @property
    def center(self) -> tuple[float, float]:
        """The box's centre in CSS pixels."""
        x, y, w, h = self.bbox
        return x + w / 2, y + h / 2

    @property
    def label(self) -> str:
        """The best short description: the accessible name, else the element's own text, else its value."""
        return self.name or self.text or (self.value or "")

    @classmethod
    def from_js(cls, d: dict[str, Any]) -> ElementInfo:
        """From one record of the snapshot script."""
        d = dict(d)
        d["bbox"] = tuple(float(v) for v in d["bbox"])
        if d.get("options") is not None:
            d["options"] = tuple(d["options"])
        return cls(**d)


@dataclass(frozen=True)
class Observation:
    """One observation of a browser environment (see the module docstring)."""

    goal: str
    url: str
    screenshot: bytes
    size: tuple[int, int]  # viewport (width, height) in CSS pixels
    elements: tuple[ElementInfo, ...] = ()
    axtree: str = ""
    dom: str = ""
    title: str = ""
    focused: int | None = None
    scroll: tuple[float, float] = (0.0, 0.0)
    step: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def screenshot_sha256(self) -> str:
        """SHA-256 of the screenshot bytes (the proof-of-action log's evidence)."""
        return hashlib.sha256(self.screenshot).hexdigest()

    def element(self, pid: int | str) -> ElementInfo | None:
        """The element labelled ``pid`` (an int, or its decimal string), or None."""
        try:
            pid = int(pid)
        except (TypeError, ValueError):
            return None
        for e in self.elements:
            if e.pid == pid:
                return e
        return None

    def interactive(self) -> list[ElementInfo]:
        """The visible interactive elements, in document order (the Set-of-Marks candidates)."""
        return [e for e in self.elements if e.interactive and e.visible]

    def som_text(self) -> str:
        """GUI-Owl's ``observation:`` text for the labelled elements."""
        items = []
        for e in self.interactive():
            label = (e.text or e.name or "").strip()
            if e.tag == "select" and e.options:
                opts = ", ".join(f'"{o}"' for o in e.options)
                items.append(f'[{e.pid}]: <select> "{e.name}" is a menu with options: [{opts}];'
                             if e.name else f"[{e.pid}]: <select> is a menu with options: [{opts}];")
            elif e.tag in ("button", "input", "textarea"):
                shown = label or (e.value if e.type in ("submit", "button") else "") or ""
                extra = f', "{e.name}"' if e.name and e.name != shown else ""
                items.append(f'[{e.pid}]: <{e.tag}> "{shown}"{extra};')
            elif label:
                items.append(f'[{e.pid}]: "{label[:200]}";')
        return "\t".join(items)

    def som_image(self) -> bytes:
        """The screenshot with a box and the label number on each interactive element (PNG)."""
        from PIL import Image, ImageDraw

        img = Image.open(io.BytesIO(self.screenshot)).convert("RGB")
        sx, sy = img.width / self.size[0], img.height / self.size[1]
        draw = ImageDraw.Draw(img)
        for e in self.interactive():
            x, y, w, h = e.bbox
            box = (x * sx, y * sy, (x + w) * sx, (y + h) * sy)
            draw.rectangle(box, outline=(255, 0, 0), width=1)
            tag = str(e.pid)
            tw = 6 * len(tag) + 2
            draw.rectangle((box[0], box[1], box[0] + tw, box[1] + 10), fill=(255, 0, 0))
            draw.text((box[0] + 1, box[1] - 1), tag, fill=(255, 255, 255))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def text(self, max_chars: int = 6000) -> str:
        """A compact text view for text-only policies: goal, URL and the accessibility tree."""
        tree = self.axtree if len(self.axtree) <= max_chars else self.axtree[:max_chars] + "\n..."
        return f"Goal: {self.goal}\nURL: {self.url}\n{tree}"


_SKIP_ROLES = {"InlineTextBox", "LineBreak", "none", "presentation", "ignored"}
_FLAT_ROLES = {"generic", "GenericContainer", "Section", "group", "paragraph", "LayoutTable",
               "LayoutTableRow", "LayoutTableCell", "Div", "Pre"}
_STATES = ("checked", "selected", "expanded", "pressed", "disabled", "focused", "readonly", "required")


def _value(v: Any) -> Any:
    return v.get("value") if isinstance(v, dict) else v


def axtree_text(ax_nodes: list[dict], backend_to_pid: dict[int, int], max_lines: int = 400) -> str:
    """Indented text of a CDP accessibility tree (ignored and layout-only nodes are flattened away)."""
    by_id = {n["nodeId"]: n for n in ax_nodes}
    roots = [n for n in ax_nodes if not n.get("parentId") or n["parentId"] not in by_id]
    lines: list[str] = []

    def walk(node: dict, depth: int) -> None:
        if len(lines) >= max_lines:
            return
        role = str(_value(node.get("role")) or "")
        name = str(_value(node.get("name")) or "").strip()
        shown = not node.get("ignored") and role not in _SKIP_ROLES and not (role in _FLAT_ROLES and not name)
        if role == "StaticText":
            parent = by_id.get(node.get("parentId"))
            shown = bool(name) and not (parent and str(_value(parent.get("name")) or "").strip() == name)
        if shown:
            pid = backend_to_pid.get(node.get("backendDOMNodeId"))
            head = f"[{pid}] " if pid is not None else ""
            parts = [f"{head}{'text' if role == 'StaticText' else role}"]
            if name:
                parts.append(f'"{name[:120]}"')
            value = _value(node.get("value"))
            if value not in (None, ""):
                parts.append(f"value={str(value)[:80]!r}")
            for prop in node.get("properties") or []:
                pname, pval = prop.get("name"), _value(prop.get("value"))
                if pname in _STATES and pval not in (None, False, "false"):
                    parts.append(pname if pval in (True, "true") else f"{pname}={pval}")
            lines.append("  " * depth + " ".join(parts))
        for child in node.get("childIds") or []:
            if child in by_id:
                walk(by_id[child], depth + (1 if shown else 0))

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


def _backend_pids(cdp: Any) -> dict[int, int]:
    doc = cdp.send("DOM.getDocument", {"depth": -1, "pierce": False})
    out: dict[int, int] = {}
    stack = [doc["root"]]
    while stack:
        node = stack.pop()
        attrs = node.get("attributes") or []
        for i in range(0, len(attrs) - 1, 2):
            if attrs[i] == "data-pid":
                try:
                    out[node["backendNodeId"]] = int(attrs[i + 1])
                except ValueError:
                    pass
        stack.extend(node.get("children") or [])
    return out


def observe(page: Any, *, goal: str, hidden: tuple[str, ...] = (), step: int = 0, cdp: Any = None,
            screenshot: bool = True, axtree: bool = True, dom: bool = True,
            clip: dict | None = None, scale: str = "css") -> Observation:
    """Snapshot ``page`` into an :class:`Observation`.

    Args:
        page: A Playwright page.
        goal: The task's instruction (kept in the observation).
        hidden: CSS selectors left out of every view (the reward panel of MiniWoB).
        step: The step number.
        cdp: A CDP session of the page (made if None and ``axtree`` is wanted).
        screenshot, axtree, dom: Which parts to produce (the element table is always made).
        clip: A screenshot clip ``{"x", "y", "width", "height"}`` (default: the viewport).
        scale: ``"css"`` (one image pixel per CSS pixel) or ``"device"`` (the device's pixel ratio).
    """
    snap = page.evaluate(SNAPSHOT, list(hidden))
    elements = tuple(ElementInfo.from_js(e) for e in snap["elements"])
    tree = ""
    if axtree:
        cdp = cdp or page.context.new_cdp_session(page)
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        tree = axtree_text(nodes, _backend_pids(cdp)) if nodes else ""
    png = page.screenshot(type="png", clip=clip, scale=scale) if screenshot else b""
    vw, vh = snap["viewport"]
    return Observation(goal=goal, url=snap["url"], screenshot=png, size=(int(vw), int(vh)), elements=elements,
                       axtree=tree, dom=snap["html"] if dom else "", title=snap["title"], focused=snap["focused"],
                       scroll=tuple(snap["scroll"]), step=step)
