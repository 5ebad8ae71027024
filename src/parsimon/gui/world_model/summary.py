"""A short change-only text for a delta, region by region, in CUWM's style.

CUWM's text world model writes the app, a one-line action summary, then one paragraph on changes only,
region by region (title bar, ribbon, main area, side pane, ...), saying explicitly which regions did not
change and quoting visible text. For a web page the regions are the address bar (the URL), the focus,
and the page's landmarks: elements with an ``id``, or a landmark tag (``header``, ``nav``, ``main``,
``form``, ``dialog``, ``ul``, ``table``, ...) among the top levels of ``<body>``. Each change is told
in the nearest region that contains it.

Example:
    >>> from parsimon.gui.world_model.delta import PageState, SetChecked
    >>> s = PageState("http://x/", '<html><head><title>T</title></head><body><div id="area" data-pid="1">'
    ...               '<label data-pid="2"><input type="checkbox" data-pid="3">milk</label></div></body></html>')
    >>> summarize(s, "click #3", Delta([SetChecked(3, True)]))
    'Page "T". Action: click #3. Area: checkbox "milk" becomes checked. Address bar, focus unchanged.'
"""

from __future__ import annotations

from parsimon.gui.world_model.delta import (
    AddNode,
    Delta,
    Navigate,
    Op,
    PageState,
    RemoveNode,
    SetAttr,
    SetChecked,
    SetFocus,
    SetText,
    SetValue,
)
from parsimon.gui.world_model.dom import BODY, Node, parse_fragment, text_content

__all__ = ["describe_element", "summarize"]

LANDMARKS = frozenset({"header", "nav", "main", "footer", "aside", "form", "dialog", "section", "ul", "ol", "table",
                       "menu"})
_MAX_DEPTH = 4  # regions are looked for this many levels below <body>


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def describe_element(node: Node | None) -> str:
    """``checkbox "milk"``, ``button "Submit"``, ``field "Name"``: a role word and the visible text."""
    if node is None:
        return "an element"
    tag, typ = node.tag, (node.get("type") or "").lower()
    label = ""
    if tag == "input" and typ in ("checkbox", "radio"):
        wrap = node.parent if node.parent is not None and node.parent.tag == "label" else None
        label = text_content(wrap) if wrap is not None else (node.get("aria-label") or node.get("value") or "")
        return f'{typ} "{_short(label)}"' if label else typ
    if tag in ("input", "textarea", "select"):
        label = node.get("aria-label") or node.get("placeholder") or node.get("name") or node.get("id") or ""
        return f'field "{_short(label)}"' if label else "a field"
    word = {"a": "link", "button": "button", "li": "item", "tr": "row", "img": "image"}.get(tag, tag)
    label = text_content(node) or node.get("aria-label") or ""
    return f'{word} "{_short(label)}"' if label else word


def _region_name(node: Node) -> str:
    if node.get("id"):
        return node.get("id").replace("-", " ").replace("_", " ").capitalize()
    return node.tag.capitalize()


def _regions(doc_index: dict[int, Node]) -> list[Node]:
    body = doc_index.get(BODY)
    out: list[Node] = []
    if body is None:
        return out

    def walk(node: Node, depth: int) -> None:
        for c in node.children:
            if not isinstance(c, Node) or c.tag in ("script", "style"):
                continue
            if c.get("id") or c.tag in LANDMARKS:
                out.append(c)
            elif depth < _MAX_DEPTH:
                walk(c, depth + 1)

    walk(body, 0)
    # a region that only wraps others (MiniWoB's #wrap) is told through its parts
    return [r for r in out if not any(o is not r and r in list(o.ancestors()) for o in out)] or out


def _region_of(node: Node | None, regions: list[Node]) -> Node | None:
    while node is not None:
        if any(node is r for r in regions):
            return node
        node = node.parent
    return None


def _sentence(op: Op, index: dict[int, Node]) -> str:
    if isinstance(op, SetChecked):
        return f"{describe_element(index.get(op.pid))} becomes {'checked' if op.checked else 'unchecked'}"
    if isinstance(op, SetValue):
        return f'{describe_element(index.get(op.pid))} now reads "{_short(op.value)}"'
    if isinstance(op, SetText):
        node = index.get(op.pid)
        old = text_content(node) if node is not None else ""
        return f'text "{_short(old)}" becomes "{_short(op.text)}"' if old else f'text "{_short(op.text)}" appears'
    if isinstance(op, AddNode):
        root = next((n for n in parse_fragment(op.html) if isinstance(n, Node)), None)
        return f"new {describe_element(root)} appears"
    if isinstance(op, RemoveNode):
        return f"{describe_element(index.get(op.pid))} disappears"
    if isinstance(op, SetAttr):
        what = describe_element(index.get(op.pid))
        if op.name in ("style", "class", "hidden"):
            return f"{what} changes appearance ({op.name})"
        return f"{what}: {op.name} {'removed' if op.value is None else 'set to ' + repr(_short(op.value, 24))}"
    return ""


def summarize(state: PageState, action: str, delta: Delta) -> str:
    """The change-only text of ``delta`` on ``state`` (see the module docstring).

    Args:
        state: The page before the action.
        action: The action in words (``Action.describe()``).
        delta: The change.
    """
    doc = state.doc()
    index = doc.index()
    title = ""
    head = doc.head
    if head is not None:
        t = next((n for n in head.walk() if n.tag == "title"), None)
        title = text_content(t) if t is not None else ""
    regions = _regions(index)
    parts = [f'Page "{_short(title)}".' if title else "Page.", f"Action: {action}."]
    nav = next((op for op in delta.ops if isinstance(op, Navigate)), None)
    if nav is not None and nav.html is not None:
        parts.append(f"The page is replaced by {nav.url.split('?')[0]}.")
        return " ".join(parts)
    told: dict[int, list[str]] = {}
    order: list[Node | None] = []
    for op in delta.ops:
        if isinstance(op, (Navigate, SetFocus)):
            continue
        node = index.get(op.parent if isinstance(op, AddNode) else op.pid)
        region = _region_of(node, regions)
        key = id(region)
        if key not in told:
            told[key] = []
            order.append(region)
        s = _sentence(op, index)
        if s and s not in told[key]:
            told[key].append(s)
    for region in order:
        name = _region_name(region) if region is not None else "Page"
        parts.append(f"{name}: {'; '.join(told[id(region)])}.")
    unchanged = []
    if nav is not None:
        parts.append(f"Address bar: now {nav.url}.")
    else:
        unchanged.append("address bar")
    focus = next((op for op in delta.ops if isinstance(op, SetFocus)), None)
    if focus is not None:
        parts.append("Focus: " + (f"moves to {describe_element(index.get(focus.pid))}." if focus.pid is not None
                                  else "leaves the page's fields."))
    else:
        unchanged.append("focus")
    unchanged += [_region_name(r).lower() for r in regions if id(r) not in told]
    if unchanged:
        text = ", ".join(unchanged)
        parts.append(f"{text[0].upper()}{text[1:]} unchanged.")
    elif not delta.ops:
        parts.append("Nothing changes.")
    return " ".join(parts)
