"""The frozen DOM as a small tree keyed by Set-of-Marks labels, parsed and written back without a browser.

An observation's ``dom`` (see :mod:`parsimon.gui.web.observe`) is Chromium's serialisation of the page
with the live form state copied into attributes and every element under ``<body>`` carrying its
Set-of-Marks label as ``data-pid``. :func:`parse` turns it into :class:`Node` objects; :meth:`Doc.html`
writes it back. Labels are stable from step to step (new elements get new numbers), so a node is
addressed by its label: :meth:`Doc.index` maps label → node, with :data:`BODY` standing for ``<body>``
(which has none).

An element's children are kept as Chromium lays them out: text runs and elements interleaved. The
*text runs* of an element (:func:`text_runs`) are the texts before, between and after its element
children (always one more than the elements), which is what a text change edits. Comments are dropped
(they do not render).

Example:
    >>> doc = parse('<html><head></head><body><p data-pid="1">a <b data-pid="2">b</b> c</p></body></html>')
    >>> text_runs(doc.index()[1])
    ('a ', ' c')
    >>> doc.html().endswith('<p data-pid="1">a <b data-pid="2">b</b> c</p></body></html>')
    True
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from html.parser import HTMLParser

__all__ = ["BODY", "Doc", "Node", "element_children", "parse", "parse_fragment", "set_text_runs", "text_content",
           "text_runs"]

BODY = -1  # the label that stands for <body> (the snapshot numbers only the elements inside it)
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
RAW_TEXT = frozenset({"script", "style"})


class Node:
    """One element: ``tag``, ordered ``attrs`` (value None for a bare attribute) and ``children`` (nodes and
    strings)."""

    __slots__ = ("attrs", "children", "parent", "tag")

    def __init__(self, tag: str, attrs: list[tuple[str, str | None]] | None = None) -> None:
        self.tag = tag
        self.attrs: list[tuple[str, str | None]] = list(attrs or [])
        self.children: list[Node | str] = []
        self.parent: Node | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The attribute's value (``""`` for a bare attribute), or ``default`` when absent."""
        for k, v in self.attrs:
            if k == name:
                return "" if v is None else v
        return default

    def has(self, name: str) -> bool:
        """Whether the attribute is present."""
        return any(k == name for k, _ in self.attrs)

    def set(self, name: str, value: str | None) -> None:
        """Set (``value`` a string) or remove (``value`` None) an attribute, keeping the order."""
        for i, (k, _) in enumerate(self.attrs):
            if k == name:
                if value is None:
                    del self.attrs[i]
                else:
                    self.attrs[i] = (k, value)
                return
        if value is not None:
            self.attrs.append((name, value))

    @property
    def pid(self) -> int | None:
        """The Set-of-Marks label (``data-pid``), :data:`BODY` for ``<body>``, else None."""
        if self.tag == "body":
            return BODY
        raw = self.get("data-pid")
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    def append(self, child: Node | str) -> None:
        """Add a child at the end (adjacent strings merge)."""
        if isinstance(child, str):
            if not child:
                return
            if self.children and isinstance(self.children[-1], str):
                self.children[-1] += child
                return
        else:
            child.parent = self
        self.children.append(child)

    def clone(self) -> Node:
        """A deep copy (without a parent)."""
        out = Node(self.tag, self.attrs)
        for c in self.children:
            out.append(c if isinstance(c, str) else c.clone())
        return out

    def walk(self) -> Iterator[Node]:
        """This node and every element below it, in document order."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(c for c in reversed(node.children) if isinstance(c, Node))

    def ancestors(self) -> Iterator[Node]:
        """The parent, its parent, ... up to the root."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def html(self, *, sort_attrs: bool = False) -> str:
        """The element's outer HTML (``sort_attrs``: attributes in name order, a canonical form)."""
        parts: list[str] = []
        _write(self, parts, sort_attrs)
        return "".join(parts)

    def __repr__(self) -> str:
        return f"<Node {self.tag} pid={self.pid}>"


def element_children(node: Node) -> list[Node]:
    """The element children of ``node`` in order."""
    return [c for c in node.children if isinstance(c, Node)]


def text_runs(node: Node) -> tuple[str, ...]:
    """The texts before, between and after the element children (``len == elements + 1``)."""
    runs = [""]
    for c in node.children:
        if isinstance(c, str):
            runs[-1] += c
        else:
            runs.append("")
    return tuple(runs)


def set_text_runs(node: Node, runs: tuple[str, ...] | list[str]) -> None:
    """Replace the text runs of ``node`` (``len(runs)`` must be its element count + 1)."""
    kids = element_children(node)
    if len(runs) != len(kids) + 1:
        raise ValueError(f"`runs` must have {len(kids) + 1} entries for <{node.tag}>, got {len(runs)}")
    node.children = []
    node.append(runs[0])
    for kid, run in zip(kids, runs[1:], strict=True):
        node.append(kid)
        node.append(run)


def text_content(node: Node | str) -> str:
    """All text below ``node``, whitespace collapsed (style and script text excluded)."""
    if isinstance(node, str):
        return " ".join(node.split())
    if node.tag in RAW_TEXT:
        return ""
    return " ".join(" ".join(text_content(c) for c in node.children).split())


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\u00a0", "&nbsp;")


def _escape_attr(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("\u00a0", "&nbsp;")


def _write(node: Node, parts: list[str], sort: bool = False) -> None:
    pairs = sorted(node.attrs, key=lambda kv: kv[0]) if sort else node.attrs
    attrs = "".join(f" {k}" if v is None else f' {k}="{_escape_attr(v)}"' for k, v in pairs)
    parts.append(f"<{node.tag}{attrs}>")
    if node.tag in VOID:
        return
    raw = node.tag in RAW_TEXT
    for c in node.children:
        if isinstance(c, str):
            parts.append(c if raw else _escape_text(c))
        else:
            _write(c, parts, sort)
    parts.append(f"</{node.tag}>")


class Doc:
    """A parsed document: the ``<!DOCTYPE>`` line (if any) and the ``<html>`` root."""

    def __init__(self, root: Node, doctype: str | None = "html") -> None:
        self.root = root
        self.doctype = doctype

    @property
    def body(self) -> Node | None:
        """The ``<body>`` element."""
        return next((n for n in self.root.walk() if n.tag == "body"), None)

    @property
    def head(self) -> Node | None:
        """The ``<head>`` element."""
        return next((n for n in self.root.walk() if n.tag == "head"), None)

    def index(self) -> dict[int, Node]:
        """Label → node for every labelled element under ``<body>``, and :data:`BODY`."""
        body = self.body
        out: dict[int, Node] = {}
        if body is None:
            return out
        for n in body.walk():
            pid = n.pid
            if pid is not None and pid not in out:
                out[pid] = n
        return out

    def clone(self) -> Doc:
        """A deep copy."""
        return Doc(self.root.clone(), self.doctype)

    def html(self, *, sort_attrs: bool = False) -> str:
        """The document as HTML text (``sort_attrs``: attributes in name order, a canonical form)."""
        head = f"<!DOCTYPE {self.doctype}>\n" if self.doctype else ""
        return head + self.root.html(sort_attrs=sort_attrs)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.top = Node("#fragment")
        self.stack: list[Node] = [self.top]
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        if decl.lower().startswith("doctype"):
            self.doctype = decl[len("doctype"):].strip() or "html"

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> Node:
        # No implicit end tags: Chromium's serialisation writes every one, and the tree must come back
        # exactly as the page had it (a script can nest an <li> in an <li>).
        node = Node(tag, attrs)
        self.stack[-1].append(node)
        return node

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = self._open(tag, attrs)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].append(data)


def parse_fragment(html: str) -> list[Node | str]:
    """The top-level nodes and texts of an HTML fragment."""
    p = _Parser()
    p.feed(html)
    p.close()
    out = list(p.top.children)
    for c in out:
        if isinstance(c, Node):
            c.parent = None
    return out


def parse(html: str) -> Doc:
    """Parse a whole document (a frozen DOM). Text outside ``<html>`` is dropped.

    The same text is parsed once (a small cache); every call returns its own copy.
    """
    return _parse_cached(html).clone()


@functools.lru_cache(maxsize=256)
def _parse_cached(html: str) -> Doc:
    p = _Parser()
    p.feed(html)
    p.close()
    root = next((c for c in p.top.children if isinstance(c, Node) and c.tag == "html"), None)
    if root is None:  # a fragment: wrap it so that it has a body
        root = Node("html")
        root.append(Node("head"))
        body = Node("body")
        for c in p.top.children:
            body.append(c)
        root.append(body)
    root.parent = None
    return Doc(root, p.doctype)
