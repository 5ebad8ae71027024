"""Typed, change-only deltas on the frozen DOM: what an action changes, and nothing else.

Stage 1 of the Computer-Using World Model (CUWM, arXiv 2602.17365) predicts the *change* an action
causes rather than the whole next state. Here a change is a :class:`Delta`: a list of typed operations
on a :class:`PageState` (URL, frozen DOM, focused element), each addressed by the element's
Set-of-Marks label:

* :class:`SetAttr` (an attribute set or removed), :class:`SetText` (an element's text runs),
  :class:`SetValue` (a field's value), :class:`SetChecked` (a checkbox or radio);
* :class:`SetFocus` (the focused element);
* :class:`AddNode` (an element inserted as the ``index``-th element child of ``parent``),
  :class:`RemoveNode`;
* :class:`Navigate` (the URL changes; with ``html`` the document is replaced).

:func:`diff` computes the exact delta between two states and :func:`apply` replays one, so
``apply(a, diff(a, b))`` equals ``b`` (the round trip a test checks). Ops are applied in a fixed order
(navigation, removals, insertions by index, then attributes, values, texts and focus), whatever their
order in the list.

:meth:`Op.key` is the op's identity for scoring predictions (precision, recall, exact match); it
ignores the labels inside inserted HTML (they are only known after the fact) and collapses
whitespace. :meth:`Op.where` is coarser: which element changes and how, not to what.

Example:
    >>> a = PageState("http://x/", '<html><head></head><body><input data-pid="3" type="checkbox"></body></html>')
    >>> b = apply(a, Delta([SetChecked(3, True), SetFocus(3)]))
    >>> [op.key() for op in diff(a, b).ops]
    [('checked', 3, True), ('focus', 3)]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from parsimon.errors import ConfigError
from parsimon.gui.world_model.dom import (
    BODY,
    Doc,
    Node,
    element_children,
    parse,
    parse_fragment,
    set_text_runs,
    text_content,
    text_runs,
)

__all__ = ["OPS", "AddNode", "Delta", "Navigate", "Op", "PageState", "RemoveNode", "SetAttr", "SetChecked",
           "SetFocus", "SetText", "SetValue", "apply", "canonical_class", "canonical_style", "css_declarations", "diff", "op_from_dict"]


def css_declarations(style: str | None) -> list[str]:
    """The declarations of an inline ``style`` as ``"property: value"`` strings, in a canonical form: the
    property in lower case, spaces collapsed, the last declaration of a property winning, sorted by
    property. Two styles with the same declarations style an element alike, however a script wrote them
    (``width:81px`` and ``width: 81px;`` are one declaration). Semicolons inside quotes or parentheses
    (``url(data:...;base64,...)``) do not split."""
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, ""
    for ch in style or "":
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == ";" and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    last: dict[str, str] = {}
    for part in parts:
        name, colon, value = part.partition(":")
        name, value = name.strip().lower(), " ".join(value.split())
        if colon and name and value:
            last[name] = value
    return [f"{k}: {last[k]}" for k in sorted(last)]


def canonical_class(value: str | None) -> str:
    """A ``class`` attribute's names, each once, sorted (their order does not change how a page looks)."""
    return " ".join(sorted(set((value or "").split())))


def canonical_style(style: str | None) -> str:
    """An inline ``style`` written from its :func:`css_declarations` (``""`` when it declares nothing)."""
    return " ".join(d + ";" for d in css_declarations(style))


def _norm(s: str | None) -> str:
    return " ".join((s or "").split())


class Op(ABC):
    """Base of the delta operations (see the module docstring)."""

    kind: ClassVar[str] = ""
    phase: ClassVar[int] = 0

    @abstractmethod
    def key(self) -> tuple:
        """The op's identity for scoring (see the module docstring)."""

    def where(self) -> tuple:
        """Which element changes and in what way (the key without the new value)."""
        return self.key()[:2]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``op`` naming the kind."""
        return {"op": self.kind, **asdict(self)}


@dataclass(frozen=True)
class SetAttr(Op):
    """Set attribute ``name`` of element ``pid`` to ``value`` (None removes it)."""

    pid: int
    name: str
    value: str | None
    kind: ClassVar[str] = "attr"
    phase: ClassVar[int] = 3

    def key(self) -> tuple:  # noqa: D102
        return ("attr", self.pid, self.name, None if self.value is None else _norm(self.value))

    def where(self) -> tuple:  # noqa: D102
        return ("attr", self.pid, self.name)


@dataclass(frozen=True)
class SetText(Op):
    """Replace the text runs of element ``pid`` (one more run than it has element children)."""

    pid: int
    runs: tuple[str, ...]
    kind: ClassVar[str] = "text"
    phase: ClassVar[int] = 5

    def __post_init__(self) -> None:
        if isinstance(self.runs, str):
            object.__setattr__(self, "runs", (self.runs,))
        elif isinstance(self.runs, list):
            object.__setattr__(self, "runs", tuple(self.runs))

    @property
    def text(self) -> str:
        """The runs joined, whitespace collapsed."""
        return _norm(" ".join(self.runs))

    def key(self) -> tuple:  # noqa: D102
        return ("text", self.pid, self.text)


@dataclass(frozen=True)
class SetValue(Op):
    """Set the value of field ``pid`` (an input, a textarea, a select)."""

    pid: int
    value: str
    kind: ClassVar[str] = "value"
    phase: ClassVar[int] = 4

    def key(self) -> tuple:  # noqa: D102
        return ("value", self.pid, self.value)


@dataclass(frozen=True)
class SetChecked(Op):
    """Check or uncheck checkbox or radio ``pid``."""

    pid: int
    checked: bool
    kind: ClassVar[str] = "checked"
    phase: ClassVar[int] = 4

    def key(self) -> tuple:  # noqa: D102
        return ("checked", self.pid, bool(self.checked))


@dataclass(frozen=True)
class SetFocus(Op):
    """Move the focus to element ``pid`` (None: nothing focused)."""

    pid: int | None
    kind: ClassVar[str] = "focus"
    phase: ClassVar[int] = 6

    def key(self) -> tuple:  # noqa: D102
        return ("focus", self.pid)

    def where(self) -> tuple:  # noqa: D102
        return ("focus",)


@dataclass(frozen=True)
class AddNode(Op):
    """Insert ``html`` (one element) as the ``index``-th element child of ``parent``."""

    parent: int
    index: int
    html: str
    kind: ClassVar[str] = "add"
    phase: ClassVar[int] = 2

    def _root(self) -> Node | None:
        return next((n for n in parse_fragment(self.html) if isinstance(n, Node)), None)

    def key(self) -> tuple:  # noqa: D102
        root = self._root()
        return ("add", self.parent, root.tag if root is not None else "", text_content(root) if root else "")

    def where(self) -> tuple:  # noqa: D102
        return ("add", self.parent)


@dataclass(frozen=True)
class RemoveNode(Op):
    """Remove element ``pid`` and everything inside it."""

    pid: int
    kind: ClassVar[str] = "remove"
    phase: ClassVar[int] = 1

    def key(self) -> tuple:  # noqa: D102
        return ("remove", self.pid)


@dataclass(frozen=True)
class Navigate(Op):
    """The URL becomes ``url``; with ``html`` the whole document is replaced (a new page)."""

    url: str
    html: str | None = None
    kind: ClassVar[str] = "navigate"
    phase: ClassVar[int] = 0

    def key(self) -> tuple:  # noqa: D102
        return ("navigate", self.url.split("#")[0] if self.html is not None else self.url)

    def where(self) -> tuple:  # noqa: D102
        return ("navigate",)


OPS: dict[str, type[Op]] = {c.kind: c for c in (SetAttr, SetText, SetValue, SetChecked, SetFocus, AddNode,
                                                 RemoveNode, Navigate)}


def op_from_dict(d: dict[str, Any]) -> Op:
    """The inverse of :meth:`Op.to_dict`; :class:`ConfigError` names what is wrong."""
    if not isinstance(d, dict) or d.get("op") not in OPS:
        raise ConfigError(f"a delta op must be an object with `op` in {sorted(OPS)}, got {d!r:.200}")
    cls = OPS[d["op"]]
    names = {f.name for f in fields(cls)}
    extra = sorted(set(d) - names - {"op"})
    missing = sorted(n for n in names if n not in d and n != "html")
    if extra or missing:
        raise ConfigError(f"delta op {d['op']!r}: unknown fields {extra}, missing fields {missing}")
    values = {k: v for k, v in d.items() if k != "op"}
    if cls is SetText:
        values["runs"] = tuple(values["runs"]) if isinstance(values["runs"], (list, tuple)) else (values["runs"],)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"delta op {d['op']!r}: {exc}") from None


@dataclass
class Delta:
    """A change: typed ops, a short region-by-region text summary, and whether nothing changes.

    An empty ``ops`` list is a prediction that the action changes nothing on the page.
    """

    ops: list[Op] = field(default_factory=list)
    summary: str = ""

    @property
    def noop(self) -> bool:
        """True when the delta changes nothing."""
        return not self.ops

    def keys(self) -> list[tuple]:
        """The keys of the ops (see :meth:`Op.key`)."""
        return [op.key() for op in self.ops]

    def to_dict(self) -> dict[str, Any]:
        """``{"ops": [...], "summary": ...}``."""
        return {"ops": [op.to_dict() for op in self.ops], "summary": self.summary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Delta:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or not isinstance(d.get("ops", []), list):
            raise ConfigError(f"a delta must be an object with an `ops` list, got {d!r:.200}")
        return cls([op_from_dict(o) for o in d.get("ops", [])], str(d.get("summary", "")))


@dataclass(frozen=True)
class PageState:
    """What a delta acts on: the URL, the frozen DOM and the focused element's label."""

    url: str
    html: str
    focused: int | None = None

    @classmethod
    def from_observation(cls, obs: Any) -> PageState:
        """The state of a :class:`~parsimon.gui.web.observe.Observation`."""
        return cls(obs.url, obs.dom, obs.focused)

    def doc(self) -> Doc:
        """The parsed DOM (a fresh copy each call)."""
        return parse(self.html)

    def canonical(self) -> tuple[str, int | None, str]:
        """URL, focus and the re-serialised DOM with sorted attributes: equal for equal states."""
        return (self.url, self.focused, self.doc().html(sort_attrs=True))


# -- diff

def _lcs(a: list[int], b: list[int]) -> set[int]:
    """The labels of a longest common subsequence of two label sequences."""
    n, m = len(a), len(b)
    if a == b:
        return set(a)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    out, i, j = set(), 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.add(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def _consistent(da: Doc, db: Doc) -> bool:
    """Same document: equal ``<head>``, and every label present in both names the same tag."""
    ha, hb = da.head, db.head
    if (ha.html() if ha else "") != (hb.html() if hb else ""):
        return False
    ia, ib = da.index(), db.index()
    if BODY not in ia or BODY not in ib:
        return False
    return not any(ia[p].tag != ib[p].tag for p in ia.keys() & ib.keys())


_SYNTHETIC = -1_000_000  # labels below this are given to unlabelled elements while diffing, never kept


def _label_unlabelled(doc: Doc, start: int) -> None:
    """Give elements without a label (inserted by a prediction) distinct labels from ``start`` downwards,
    so that they never match an element of the other document."""
    n = start
    for node in doc.body.walk():
        if node.pid is None:
            node.set("data-pid", str(n))
            n -= 1


def _strip_synthetic(node: Node) -> Node:
    copy = node.clone()
    for n in copy.walk():
        pid = n.pid
        if pid is not None and pid <= _SYNTHETIC:
            n.set("data-pid", None)
    return copy


def _field_ops(pid: int, na: Node, nb: Node, moved: bool) -> list[Op]:
    ops: list[Op] = []
    a_attrs, b_attrs = dict(na.attrs), dict(nb.attrs)
    for name in list(dict.fromkeys([*a_attrs, *b_attrs])):
        if name == "data-pid":
            continue
        va, vb = a_attrs.get(name, ...), b_attrs.get(name, ...)
        if va == vb:
            continue
        if nb.tag == "input" and name == "checked":
            ops.append(SetChecked(pid, vb is not ...))
        elif nb.tag == "input" and name == "value" and vb is not ...:
            ops.append(SetValue(pid, vb or ""))
        else:
            ops.append(SetAttr(pid, name, None if vb is ... else (vb if vb is not None else "")))
    ra, rb = text_runs(na), text_runs(nb)
    # when children come and go, removals merge the runs around them and insertions add empty ones, so
    # the runs are restated even if they read the same
    if ra != rb or (moved and any(ra + rb)):
        if nb.tag == "textarea":
            ops.append(SetValue(pid, "".join(rb)))
        else:
            ops.append(SetText(pid, rb))
    return ops


def diff(a: PageState, b: PageState) -> Delta:
    """The exact delta from ``a`` to ``b`` (``apply(a, diff(a, b))`` equals ``b``).

    Elements keep their place when they have the same label and parent in both and lie on a longest
    common subsequence of their parent's children; the others are removed and inserted again (a move is
    a removal plus an insertion). When the two DOMs are not the same document (another ``<head>``, or a
    label naming another tag: the page was replaced), the delta is one :class:`Navigate` with the new
    document.
    """
    da, db = a.doc(), b.doc()
    ops: list[Op] = []
    if not _consistent(da, db):
        ops.append(Navigate(b.url, db.html()))
        if b.focused is not None:
            ops.append(SetFocus(b.focused))
        return Delta(ops)
    if a.url != b.url:
        ops.append(Navigate(b.url))
    _label_unlabelled(da, _SYNTHETIC)
    _label_unlabelled(db, 2 * _SYNTHETIC)
    ia, ib = da.index(), db.index()
    removed: list[Op] = []
    added: list[Op] = []
    changed: list[Op] = []

    def walk(pid: int) -> None:
        na, nb = ia[pid], ib[pid]
        ka, kb = [c.pid for c in element_children(na)], [c.pid for c in element_children(nb)]
        kept = _lcs(ka, kb)
        changed.extend(_field_ops(pid, na, nb, moved=len(kept) != len(ka) or len(kept) != len(kb)))
        for c in ka:
            if c not in kept:
                removed.append(RemoveNode(c))
        for i, child in enumerate(element_children(nb)):
            if child.pid in kept:
                walk(child.pid)
            else:
                added.append(AddNode(pid, i, _strip_synthetic(child).html()))

    walk(BODY)
    if any(op.pid <= _SYNTHETIC for op in removed + changed if isinstance(op, (RemoveNode, SetAttr, SetText,
                                                                               SetValue, SetChecked))):
        # an element the first state does not label changed in place: it cannot be addressed
        return Delta([Navigate(b.url, db.html()), *([SetFocus(b.focused)] if b.focused is not None else [])])
    ops += removed + added + changed
    if a.focused != b.focused:
        ops.append(SetFocus(b.focused))
    return Delta(ops)


# -- apply

def _insert(parent: Node, index: int, new: Node) -> None:
    """Insert ``new`` before the ``index``-th element child of ``parent`` (at the end past the last)."""
    seen = 0
    for pos, c in enumerate(parent.children):
        if isinstance(c, Node):
            if seen == index:
                parent.children.insert(pos, new)
                new.parent = parent
                return
            seen += 1
    parent.children.append(new)
    new.parent = parent


def _remove(node: Node) -> None:
    parent = node.parent
    if parent is None:
        return
    pos = next(i for i, c in enumerate(parent.children) if c is node)
    del parent.children[pos]
    node.parent = None
    # merge the text runs on both sides of the removed element
    if 0 < pos < len(parent.children) and isinstance(parent.children[pos - 1], str) \
            and isinstance(parent.children[pos], str):
        parent.children[pos - 1] += parent.children.pop(pos)


def _set_value(node: Node, value: str) -> None:
    if node.tag == "textarea":
        node.children = [value] if value else []
    elif node.tag == "select":
        for opt in node.walk():
            if opt.tag == "option":
                hit = (opt.get("value") if opt.has("value") else text_content(opt)) == value \
                    or text_content(opt) == value
                opt.set("selected", "" if hit else None)
    else:
        node.set("value", value)


def apply(state: PageState, delta: Delta, *, strict: bool = True) -> PageState:
    """The state after ``delta``.

    Args:
        state: The state before.
        delta: The change.
        strict: Raise :class:`ConfigError` on an op that cannot apply (a label not on the page, text runs
            that do not fit). With ``strict=False`` such ops are skipped (a predicted delta may name an
            element that is not there); :func:`apply_report` says which.
    """
    return apply_report(state, delta, strict=strict)[0]


def apply_report(state: PageState, delta: Delta, *, strict: bool = False) -> tuple[PageState, list[Op]]:
    """:func:`apply`, also returning the ops that could not be applied (empty when ``strict``)."""
    doc = state.doc()
    url, focused = state.url, state.focused
    skipped: list[Op] = []

    def fail(op: Op, why: str) -> None:
        if strict:
            raise ConfigError(f"cannot apply {op.to_dict()!r:.200}: {why}")
        skipped.append(op)

    ops = sorted(delta.ops, key=lambda o: (o.phase, o.index if isinstance(o, AddNode) else 0))
    index = doc.index()
    for op in ops:
        if isinstance(op, Navigate):
            url = op.url
            if op.html is not None:
                doc = parse(op.html)
                focused = None
            index = doc.index()
        elif isinstance(op, RemoveNode):
            node = index.get(op.pid)
            if node is None or op.pid == BODY:
                fail(op, f"no element labelled {op.pid}")
                continue
            _remove(node)
            index = doc.index()
        elif isinstance(op, AddNode):
            parent = index.get(op.parent)
            new = next((n for n in parse_fragment(op.html) if isinstance(n, Node)), None)
            if parent is None or new is None:
                fail(op, f"no element labelled {op.parent}" if parent is None else "the HTML holds no element")
                continue
            _insert(parent, op.index, new)
            index = doc.index()
        elif isinstance(op, SetFocus):
            if op.pid is not None and op.pid not in index:
                fail(op, f"no element labelled {op.pid}")
                continue
            focused = op.pid
        else:
            node = index.get(op.pid)
            if node is None:
                fail(op, f"no element labelled {op.pid}")
                continue
            if isinstance(op, SetAttr):
                node.set(op.name, op.value)
            elif isinstance(op, SetChecked):
                node.set("checked", "" if op.checked else None)
            elif isinstance(op, SetValue):
                _set_value(node, op.value)
            elif isinstance(op, SetText):
                if len(op.runs) == len(element_children(node)) + 1:
                    set_text_runs(node, op.runs)
                elif len(op.runs) == 1 and not strict:
                    # a predicted text for an element with children: the first run takes it
                    set_text_runs(node, (op.runs[0], *[""] * len(element_children(node))))
                else:
                    fail(op, f"<{node.tag}> has {len(element_children(node)) + 1} text runs, got {len(op.runs)}")
    if focused is not None and focused not in doc.index():
        focused = None
    return PageState(url, doc.html(), focused), skipped
