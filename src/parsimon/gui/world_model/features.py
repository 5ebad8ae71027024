"""Element features for the learned world model, and the effect vocabulary it predicts.

The learned model looks at one (element, action) pair at a time: for every labelled element of the page
near the action's target it predicts which *effects* the action has on that element. An effect is a
delta op with its value written relative to the action and the page, so it carries over to pages and
tasks never seen:

===================== =====================================================================
effect                 op it stands for
===================== =====================================================================
``checked=1`` / ``=0`` :class:`SetChecked` to true / false
``focus``              :class:`SetFocus` to this element; ``blur`` (on the target): focus leaves
``value=typed``        :class:`SetValue` to the typed text, as the field takes it (``value=append``: appended,
                       ``value=empty``: cleared, ``value=?``: something else)
``class+T`` / ``class-T`` the class token ``T`` added / removed
``style+D`` / ``style-D`` the inline style declaration ``D`` (``display: none``) added / removed
``attr:N=V``           attribute ``N`` set to ``V`` (``<none>``: removed) when ``V`` recurs in the
                       training data, ``attr:N=?`` otherwise
``text=typed``         :class:`SetText` to the typed text; ``text=partN`` the N-th text inside the
                       target (an opened message shows its sender and subject); ``text=nI+1`` /
                       ``text=nI-1`` the I-th number of the element's text counted up / down by one,
                       ``text=n*+1`` / ``text=n*-1`` every number of it (a "2 of 4 left" counter;
                       ``value=nI±1`` and ``attr:aria-valuenow=nI±1`` count a field's value and a
                       spinner's ARIA value the same way);
                       ``text=V`` a recurring text; ``text=?``
``remove``             :class:`RemoveNode`
``rerender``           the element's children are all replaced by fresh copies (a list drawn again
                       by a script: removals of the old children, insertions of same-looking new ones)
``add=draft``          a child inserted that looks like the container's last child with its first
                       text replaced by the *draft* (:func:`draft_text`: the text just typed with
                       Enter, or the filled-in text box beside the target), as an "Add" button does
``add=?``              a child inserted (its content is not predicted)
``navigate``           :class:`Navigate` to the target's ``href``
===================== =====================================================================

Effects ending in ``?`` are changes whose value cannot be written down from the page; the model
predicts where they happen (which lowers its confidence) but emits no op for them.

:func:`pair_features` builds the feature vector of one (element, target, action) triple: the element's
tag, type, role, state and ARIA attributes, the same for the target, the action's kind, their relation
in the tree (same, ancestor, descendant, sibling, label, radio group, next sibling of the parent,
tree distance), its context (is it a list — several children of one tag —, an item of one (a row whose
Delete button is the target, however deep), the list nearest the target,
does it hold the focused field that the action makes lose focus, is there a draft to add, do its items
carry ``data-*`` keys as lists drawn by a script do), and what the
``rule`` world model predicts for the element (so the learned model corrects the rules instead of
relearning HTML).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from parsimon.gui.actions import Action
from parsimon.gui.world_model.delta import (
    AddNode,
    Navigate,
    Op,
    RemoveNode,
    SetAttr,
    SetChecked,
    SetFocus,
    SetText,
    SetValue,
    canonical_class,
    canonical_style,
    css_declarations,
)
from parsimon.gui.world_model.dom import Node, element_children, set_text_runs, text_content, text_runs
from parsimon.gui.world_model.metrics import text_of
from parsimon.gui.world_model.rules import typed_value

__all__ = ["FEATURE_NAMES", "MAX_DISTANCE", "COUNT_EFFECT", "COUNTED_ATTRS", "candidates", "class_op", "delta_effects", "draft_child", "draft_text",
           "action_context", "context_features", "effect_labels", "instantiate", "is_list", "keyed_items", "LIST_FEATURES",
           "pair_features", "rerender_ops"]

TAGS = ("a", "button", "input", "select", "option", "textarea", "label", "li", "ul", "ol", "div", "span", "td",
        "tr", "table", "h1", "h2", "h3", "p", "img", "form", "svg", "i", "b", "nav", "header", "section", "tbody")
TYPES = ("checkbox", "radio", "text", "password", "submit", "button", "number", "date", "email", "search")
ROLES = ("button", "link", "checkbox", "radio", "textbox", "tab", "tabpanel", "menuitem", "menu", "option",
         "listbox", "combobox", "dialog", "heading", "list", "listitem", "cell", "row", "generic", "spinbutton",
         "slider", "tree", "treeitem", "grid", "gridcell", "img", "paragraph", "presentation")
KINDS = ("click", "double_click", "triple_click", "right_click", "long_press", "hover", "type", "select", "key",
         "scroll", "drag", "wait", "terminate", "answer", "go_back")
ARIA = ("aria-expanded", "aria-selected", "aria-hidden", "aria-checked", "aria-pressed", "aria-disabled")
CLASS_HINTS = ("active", "selected", "open", "hidden", "disabled", "collapsed", "expanded", "checked", "current",
               "done", "header", "content", "tab", "panel", "menu", "item", "btn", "button", "icon", "state",
               "hover", "focus", "accordion", "ui")
MAX_DISTANCE = 8  # elements farther than this from the target in the tree are not considered (by default)


def _onehot(value: Any, vocab: tuple) -> list[float]:
    return [1.0 if value == v else 0.0 for v in vocab] + [0.0 if value in vocab else 1.0]


def _node_features(node: Node, info: Any, focused: int | None) -> list[float]:
    typ = (node.get("type") or "").lower() if node.tag == "input" else ""
    role = node.get("role") or (info.role if info is not None else "")
    cls = (node.get("class") or "").lower()
    style = (node.get("style") or "").replace(" ", "").lower()
    f = _onehot(node.tag, TAGS) + _onehot(typ, TYPES) + _onehot(role, ROLES)
    for a in ARIA:
        v = node.get(a)
        f += [1.0 if v == "true" else 0.0, 1.0 if v == "false" else 0.0]
    f += [1.0 if h in cls else 0.0 for h in CLASS_HINTS]
    f += [float(node.has("checked")), float(bool(node.get("value"))), float(node.pid == focused),
          float(node.has("href")), float((node.get("href") or "").startswith("#")), float(node.has("disabled")),
          float("display:none" in style), float(node.has("hidden")), float(node.has("tabindex")),
          float(node.has("id")), float(node.has("onclick")), min(len(element_children(node)), 20) / 20.0,
          float(bool(text_content(node))),
          float(info.visible) if info is not None else 0.0, float(info.interactive) if info is not None else 0.0,
          float(info.irreversible) if info is not None else 0.0]
    return f


def _path_up(node: Node) -> list[Node]:
    out = [node]
    out.extend(node.ancestors())
    return out


def _relation(e: Node, t: Node | None) -> list[float]:
    if t is None:
        return [0.0] * 14 + [1.0]
    up_e, up_t = _path_up(e), _path_up(t)
    ids_t = {id(n): i for i, n in enumerate(up_t)}
    de = next((i for i, n in enumerate(up_e) if id(n) in ids_t), len(up_e))
    dt = ids_t.get(id(up_e[de]), len(up_t)) if de < len(up_e) else len(up_t)
    same = e is t
    e_anc = not same and dt > 0 and de == 0  # e is an ancestor of t
    e_desc = not same and de > 0 and dt == 0
    sibling = e.parent is t.parent and not same
    kids = element_children(t.parent) if t.parent is not None else []
    pos = next((i for i, k in enumerate(kids) if k is t), -1)
    next_sib = pos >= 0 and pos + 1 < len(kids) and kids[pos + 1] is e
    prev_sib = pos > 0 and kids[pos - 1] is e
    lab_t = t if t.tag == "label" else next((a for a in t.ancestors() if a.tag == "label"), None)
    lab_e = e if e.tag == "label" else next((a for a in e.ancestors() if a.tag == "label"), None)
    labelled = lab_t is not None and (lab_t is lab_e or (lab_t.get("for") and lab_t.get("for") == e.get("id")))
    group = (e.tag == "input" and t.tag == "input" and e.get("name") is not None and e.get("name") == t.get("name")
             and not same)
    parent_next = False
    if t.parent is not None and t.parent.parent is not None:
        pk = element_children(t.parent.parent)
        pp = next((i for i, k in enumerate(pk) if k is t.parent), -1)
        parent_next = pp >= 0 and pp + 1 < len(pk) and (pk[pp + 1] is e or e in pk[pp + 1].walk())
    ctl = t.get("aria-controls")
    controls = bool(ctl) and ctl == e.get("id")
    return [float(same), float(e_anc), float(e_desc), float(sibling), float(next_sib), float(prev_sib),
            float(bool(labelled)), float(group), float(parent_next), float(controls), min(de, 8) / 8.0,
            min(dt, 8) / 8.0, min(de + dt, 12) / 12.0, float(e.tag == t.tag), 0.0]


def _action_features(action: Action) -> list[float]:
    keys = [k.lower() for k in action.keys or ()]
    return _onehot(action.kind, KINDS) + [float(action.clear), float(action.enter), float(bool(action.text)),
                                          float(keys == ["tab"]), float(keys == ["enter"]),
                                          float(bool(keys) and keys not in (["tab"], ["enter"]))]


RULE_EFFECTS = ("checked=1", "checked=0", "focus", "blur", "value", "navigate", "selected=1", "selected=0")
TEXT_BOXES = ("", "text", "search", "email")
LIST_TAGS = ("ul", "ol", "tbody")


def is_list(node: Node) -> bool:
    """Whether ``node`` holds a list: a list element (``ul``, ``ol``, ``tbody``) with items, or at least two
    element children built alike (the same tag and the same tags of their own children, which must have
    some), making up most of its children."""
    kids = element_children(node)
    if node.tag in LIST_TAGS and kids:
        return True
    if len(kids) < 2:
        return False
    shapes = [(k.tag, tuple(c.tag for c in element_children(k))) for k in kids]
    top = max((shapes.count(s) for s in set(shapes) if s[1]), default=0)
    return top >= 2 and top >= 0.6 * len(kids)


def keyed_items(node: Node, deep: bool = True) -> int:
    """How many element children of ``node`` carry a ``data-*`` key other than ``data-pid`` (a script's
    handle on a list item): on the child itself, or with ``deep`` anywhere inside it."""
    def keyed(kid: Node) -> bool:
        return any(k.startswith("data-") and k != "data-pid" for n in (kid.walk() if deep else (kid,))
                   for k, _ in n.attrs)
    return sum(keyed(kid) for kid in element_children(node))


def _contains(outer: Node, inner: Node | None) -> bool:
    return inner is not None and inner is not outer and any(a is outer for a in inner.ancestors())


def draft_text(index: dict[int, Node], target: Node | None, action: Action) -> str | None:
    """The text an "add" would insert: what ``action`` types into a text box when it also presses Enter,
    else the value of a filled-in text box next to the target (its sibling, or a sibling of its parent)."""
    def text_box(n: Node) -> bool:
        return (n.tag == "input" and (n.get("type") or "").lower() in TEXT_BOXES) or n.tag == "textarea"

    if action.kind == "type":
        ok = action.enter and action.text and (target is None or text_box(target))
        return (" ".join(action.text.split()) or None) if ok else None
    if target is None or action.kind not in ("click", "key"):
        return None
    if action.kind == "key" and target.tag in ("input", "textarea"):
        boxes = [target]
    else:
        boxes = []
        for scope in (target.parent, target.parent.parent if target.parent is not None else None):
            if scope is not None:
                boxes += [n for n in scope.walk() if n is not target]
    for n in boxes:
        if text_box(n):
            v = " ".join(((text_content(n) if n.tag == "textarea" else n.get("value")) or "").split())
            if v:
                return v
    return None


def draft_child(container: Node, draft: str) -> Node | None:
    """A copy of ``container``'s last element child whose first text becomes ``draft`` (without labels)."""
    kids = element_children(container)
    if not kids:
        return None
    copy = kids[-1].clone()
    for n in copy.walk():
        n.set("data-pid", None)
    for n in copy.walk():
        runs = text_runs(n)
        at = next((i for i, r in enumerate(runs) if r.strip()), None)
        if at is not None:
            set_text_runs(n, tuple(draft if i == at else r for i, r in enumerate(runs)))
            return copy
    return None


ADD_WORDS = frozenset(("add", "new", "create", "save", "submit", "apply", "send", "post", "reply", "update"))
DROP_WORDS = frozenset(("delete", "remove", "archive", "clear", "trash", "discard", "\u2715", "\u00d7", "x"))


def _words(node: Node | None) -> set[str]:
    if node is None:
        return set()
    text = " ".join((text_content(node), node.get("aria-label") or "", node.get("value") or "", node.get("class") or ""))
    return set(text.lower().replace("-", " ").replace("_", " ").split())


def action_context(t: Node | None, focused: Node | None, draft: bool) -> tuple[float, float, float, float]:
    """The parts of :func:`context_features` that are the same for every element: is a field focused, is
    there a draft, do the target's words add, do they delete."""
    words = _words(t) if t is not None and t.tag in ("button", "a", "input") else set()
    field = focused is not None and focused.tag in ("input", "textarea", "select")
    return float(field), float(draft), float(bool(words & ADD_WORDS)), float(bool(words & DROP_WORDS))


def context_features(e: Node, t: Node | None, focused: Node | None, shared: tuple[float, float, float, float],
                     listed: bool, nearest_list: bool, item: bool | None = None) -> list[float]:
    """Where ``e`` stands in the page around the action (see the module docstring); ``shared`` is
    :func:`action_context`, ``listed`` is :func:`is_list` of ``e``, ``item`` whether ``e`` is an item of a
    list (worked out here when not given)."""
    field, draft, adds, drops = shared
    holds_focus = _contains(e, focused)
    kids = element_children(e)
    keyed = keyed_items(e)
    if item is None:
        item = e.parent is not None and e.parent.tag not in ("html", "body") and is_list(e.parent)
    return [float(listed), float(nearest_list), float(holds_focus), float(holds_focus and t is not focused),
            field, draft, float(_contains(e, t)), adds, drops, keyed / len(kids) if kids else 0.0, float(item)]


def _rule_features(pid: int, rule_ops: list[Op], target_pid: int | None) -> list[float]:
    out = dict.fromkeys(RULE_EFFECTS, 0.0)
    for op in rule_ops:
        if isinstance(op, SetChecked) and op.pid == pid:
            out["checked=1" if op.checked else "checked=0"] = 1.0
        elif isinstance(op, SetFocus):
            if op.pid == pid:
                out["focus"] = 1.0
            elif op.pid is None and pid == target_pid:
                out["blur"] = 1.0
        elif isinstance(op, SetValue) and op.pid == pid:
            out["value"] = 1.0
        elif isinstance(op, Navigate) and pid == target_pid:
            out["navigate"] = 1.0
        elif isinstance(op, SetAttr) and op.name == "selected" and op.pid == pid:
            out["selected=1" if op.value is not None else "selected=0"] = 1.0
    return list(out.values())


def pair_features(e: Node, t: Node | None, action: Action, info_e: Any, info_t: Any, focused: int | None,
                  rule_ops: list[Op], context: list[float] | None = None) -> list[float]:
    """The feature vector of element ``e`` under ``action`` on target ``t`` (see the module docstring);
    ``context`` is its :func:`context_features` (zeros when not given)."""
    tf = _node_features(t, info_t, focused) if t is not None else [0.0] * len(_node_features(e, None, None))
    return (_node_features(e, info_e, focused) + tf + _relation(e, t) + _action_features(action)
            + _rule_features(e.pid, rule_ops, t.pid if t is not None else None) + (context or [0.0] * len(CONTEXT)))


def _names() -> list[str]:
    def node(prefix: str) -> list[str]:
        return ([f"{prefix}tag={v}" for v in (*TAGS, "other")] + [f"{prefix}type={v}" for v in (*TYPES, "other")]
                + [f"{prefix}role={v}" for v in (*ROLES, "other")]
                + [f"{prefix}{a}={v}" for a in ARIA for v in ("true", "false")]
                + [f"{prefix}class~{h}" for h in CLASS_HINTS]
                + [f"{prefix}{n}" for n in ("checked", "has_value", "focused", "href", "href#", "disabled",
                                            "display_none", "hidden", "tabindex", "id", "onclick", "n_children",
                                            "has_text", "visible", "interactive", "irreversible")])
    rel = ["same", "ancestor", "descendant", "sibling", "next_sibling", "prev_sibling", "label", "radio_group",
           "parent_next", "controls", "up_e", "up_t", "distance", "same_tag", "no_target"]
    act = [f"kind={k}" for k in (*KINDS, "other")] + ["clear", "enter", "has_text", "key_tab", "key_enter",
                                                       "key_other"]
    return node("e.") + node("t.") + rel + act + [f"rule.{r}" for r in RULE_EFFECTS] + [f"ctx.{c}" for c in CONTEXT]


CONTEXT = ("list", "nearest_list", "holds_focus", "focus_leaves", "focused_field", "draft", "holds_target",
           "target_adds", "target_drops", "keyed_items", "list_item")
# the features of the list head (:class:`~parsimon.gui.world_model.learned.LearnedWorldModel`), which decides
# whether a list is drawn again and grows: few and page-independent, so that it carries over to new apps
LIST_FEATURES = tuple(
    [f"ctx.{c}" for c in CONTEXT]
    + [f"kind={k}" for k in ("click", "type", "select", "key", "double_click", "long_press")]
    + ["enter", "key_enter", "same", "ancestor", "descendant", "e.id"]
    + [f"t.tag={v}" for v in ("a", "button", "input", "select", "label", "li", "span", "other")]
    + [f"t.type={v}" for v in ("checkbox", "radio", "text", "number", "submit", "other")]
    + ["t.checked", "t.has_value", "t.focused", "t.href#"])


FEATURE_NAMES = _names()


def candidates(index: dict[int, Node], target: Node | None, limit: int = 120,
               max_distance: int = MAX_DISTANCE) -> list[Node]:
    """The labelled elements an action on ``target`` is likely to touch: those within ``max_distance``
    steps of it in the tree, plus every form field, nearest first (at most ``limit``)."""
    nodes = [n for p, n in index.items() if p is not None and p >= 0 and n.tag not in ("script", "style", "br")]
    if target is None:
        return nodes[:limit]
    up_t = {id(n): i for i, n in enumerate(_path_up(target))}

    def dist(n: Node) -> int:
        for i, a in enumerate(_path_up(n)):
            if id(a) in up_t:
                return i + up_t[id(a)]
        return 99

    scored = [(dist(n), i, n) for i, n in enumerate(nodes)]
    keep = [(d, i, n) for d, i, n in scored if d <= max_distance or n.tag in ("input", "select", "textarea")]
    keep.sort(key=lambda x: (x[0], x[1]))
    return [n for _, _, n in keep[:limit]]


def _class_tokens(v: str | None) -> list[str]:
    return canonical_class(v).split()


def effect_labels(op: Op, index: dict[int, Node], action: Action, target_pid: int | None,
                  literal: Any = None, base_url: str | None = None) -> list[tuple[int, str]]:
    """The (element label, effect) pairs that describe ``op`` (see the module docstring).

    Args:
        op: A true delta op on the state whose labelled elements are ``index``.
        index: Label → node of the state before.
        action: The action taken.
        target_pid: The label of its target, if any.
        literal: Called with an ``attr:N=V`` / ``text=V`` effect; returns whether ``V`` recurs enough to
            be kept verbatim (None: always keep).
        base_url: The page's URL (a link's ``href`` is resolved against it).
    """
    keep = literal or (lambda _e: True)
    typed = action.text or ""
    if isinstance(op, SetChecked):
        return [(op.pid, "checked=1" if op.checked else "checked=0")]
    if isinstance(op, SetFocus):
        if op.pid is None:
            return [(target_pid, "blur")] if target_pid is not None else []
        return [(op.pid, "focus")]
    if isinstance(op, SetValue):
        node = index.get(op.pid)
        old = (text_content(node) if node is not None and node.tag == "textarea" else
               (node.get("value") if node is not None else "")) or ""
        if typed and node is not None and op.value == typed_value(node, old, typed, True):
            return [(op.pid, "value=typed")]
        if typed and node is not None and op.value == typed_value(node, old, typed, False):
            return [(op.pid, "value=append")]
        if op.value == "":
            return [(op.pid, "value=empty")]
        count = _count_effect(old, op.value, "value")
        return [(op.pid, count or "value=?")]
    if isinstance(op, SetAttr):
        node = index.get(op.pid)
        if op.name == "class" and node is not None:
            old, new = _class_tokens(node.get("class")), _class_tokens(op.value)
            added = [f"class+{c}" for c in new if c not in old]
            removed = [f"class-{c}" for c in old if c not in new]
            return [(op.pid, e) for e in added + removed] or [(op.pid, "attr:class=?")]
        if op.name == "style" and node is not None:
            old, new = css_declarations(node.get("style")), css_declarations(op.value)
            changed = [f"style+{d}" for d in new if d not in old] + [f"style-{d}" for d in old if d not in new]
            return [(op.pid, e) for e in changed] or [(op.pid, "attr:style=?")]
        count = _count_effect(node.get(op.name) or "", op.value or "", f"attr:{op.name}") \
            if node is not None and op.name in COUNTED_ATTRS else None
        if count is not None:
            return [(op.pid, count)]
        eff = f"attr:{op.name}={'<none>' if op.value is None else op.value}"
        return [(op.pid, eff if keep(eff) else f"attr:{op.name}=?")]
    if isinstance(op, SetText):
        if typed and op.text == " ".join(typed.split()):
            return [(op.pid, "text=typed")]
        node = index.get(op.pid)
        count = _count_effect(text_of(node), op.text) if node is not None else None
        if count is not None:
            return [(op.pid, count)]
        parts = target_parts(index.get(target_pid) if target_pid is not None else None)
        if op.text in parts:
            return [(op.pid, f"text=part{parts.index(op.text)}")]
        eff = f"text={op.text}"
        return [(op.pid, eff if keep(eff) else "text=?")]
    if isinstance(op, RemoveNode):
        return [(op.pid, "remove")]
    if isinstance(op, AddNode):
        return [(op.parent, "add=?")]
    if isinstance(op, Navigate):
        if target_pid is None:
            return []
        node = index.get(target_pid)
        href = node.get("href") if node is not None else None
        ok = op.html is None and href is not None and base_url is not None \
            and urllib.parse.urljoin(base_url, href) == op.url
        return [(target_pid, "navigate" if ok else "navigate=?")]
    return []


_NUMBER = re.compile(r"(?<![\w.-])-\d+|\d+")  # a minus sign counts unless it joins two words ("3-4", "a-1")
COUNTED_ATTRS = ("aria-valuenow", "aria-valuetext")  # attributes a spinner counts (others, such as a tabindex
# going from 0 to -1, are states written as literals)
COUNT_EFFECT = re.compile(r"(?:text|value|attr:[^=]+)=n(\*|\d+)[+-]1")  # the counter effects (:func:`_count_effect`)


def _count_effect(old: str, new: str, field: str = "text") -> str | None:
    """``<field>=nI±1`` / ``<field>=n*±1`` when ``new`` is ``old`` with numbers counted by one (else None)."""
    a, b = _NUMBER.findall(old), _NUMBER.findall(new)
    if not a or len(a) != len(b) or _NUMBER.sub("#", old) != _NUMBER.sub("#", new):
        return None
    steps = [int(y) - int(x) for x, y in zip(a, b, strict=True)]
    moved = [i for i, d in enumerate(steps) if d]
    if not moved or any(steps[i] not in (1, -1) for i in moved) or len({steps[i] for i in moved}) > 1:
        return None
    sign = "+1" if steps[moved[0]] > 0 else "-1"
    if len(moved) == len(a) and len(a) > 1:
        return f"{field}=n*{sign}"
    return f"{field}=n{moved[0]}{sign}" if len(moved) == 1 else None


def _counted(text: str, effect: str) -> str | None:
    """``text`` with the numbers of a counter effect (``text=n...``, ``value=n...``, ``attr:N=n...``) counted
    (None when it has no such number)."""
    which, step = effect[effect.rindex("=n") + 2:-2], int(effect[-2:])
    nums = _NUMBER.findall(text)
    if which != "*" and int(which) >= len(nums):
        return None
    at = iter(range(len(nums)))

    def shift(m: re.Match) -> str:
        i = next(at)
        return str(int(m.group()) + step) if which == "*" or i == int(which) else m.group()

    return _NUMBER.sub(shift, text)


def delta_effects(ops: list[Op], index: dict[int, Node], action: Action, target_pid: int | None,
                  base_url: str | None = None, draft: str | None = None) -> list[tuple[int, str]]:
    """The effects of a whole delta: :func:`effect_labels` of each op, except that

    - an element whose old children are removed and new ones inserted is labelled ``rerender`` once
      (for those ops); when the list grew, the inserted children that no old child looks like are
      labelled ``add=draft`` (when they are :func:`draft_child` of ``draft``) or ``add=?``; when it
      shrank, the old children that no new child looks like are labelled ``remove``;
    - any other insertion that :func:`draft_child` of ``draft`` writes is ``add=draft``.
    """
    removed_by_parent: dict[int, list[int]] = {}
    for op in ops:
        if isinstance(op, RemoveNode) and op.pid in index and index[op.pid].parent is not None:
            parent = index[op.pid].parent.pid
            if parent is not None:
                removed_by_parent.setdefault(parent, []).append(op.pid)
    adds: dict[int, list[AddNode]] = {}
    for op in ops:
        if isinstance(op, AddNode):
            adds.setdefault(op.parent, []).append(op)
    redrawn = {p for p in removed_by_parent if p in adds}
    out: list[tuple[int, str]] = []

    def add_effect(op: AddNode) -> str:
        node = index.get(op.parent)
        made = draft_child(node, draft) if draft and node is not None else None
        return "add=draft" if made is not None and _looks(made) == op.key()[2:] else "add=?"

    def unmatched(items: list[tuple[Any, tuple]], others: list[tuple[Any, tuple]]) -> list[Any]:
        pool = [look for _, look in others]
        left = []
        for item, look in items:
            if look in pool:
                pool.remove(look)
            else:
                left.append(item)
        return left

    for p in sorted(redrawn):
        out.append((p, "rerender"))
        old = [(pid, _looks(index[pid])) for pid in removed_by_parent[p]]
        new = [(a, a.key()[2:]) for a in adds[p]]
        if len(new) > len(old):
            out.extend((p, add_effect(a)) for a in unmatched(new, old))
        elif len(new) < len(old):
            out.extend((pid, "remove") for pid in unmatched(old, new))
    for op in ops:
        if isinstance(op, RemoveNode) and any(op.pid in removed_by_parent.get(p, ()) for p in redrawn):
            continue
        if isinstance(op, AddNode):
            if op.parent not in redrawn:
                out.append((op.parent, add_effect(op)))
            continue
        out.extend(effect_labels(op, index, action, target_pid, base_url=base_url))
    return out


def _looks(node: Node) -> tuple[str, str]:
    """What an inserted element is compared by (:meth:`AddNode.key` without the parent)."""
    return (node.tag, text_content(node))


def rerender_ops(node: Node, drop: set[int] | frozenset = frozenset()) -> list[Op]:
    """``rerender`` as ops: every element child of ``node`` removed and inserted again (without its labels),
    except those in ``drop``, which are only removed."""
    ops: list[Op] = []
    at = 0
    for kid in element_children(node):
        if kid.pid is None:
            continue
        ops.append(RemoveNode(kid.pid))
        if kid.pid in drop:
            continue
        copy = kid.clone()
        for n in copy.walk():
            n.set("data-pid", None)
        ops.append(AddNode(node.pid, at, copy.html()))
        at += 1
    return ops


def target_parts(target: Node | None, limit: int = 4) -> list[str]:
    """The texts inside the action's target, in document order (each trimmed of spaces and dashes; the first
    ``limit``): what an opened item shows again elsewhere (``text=partN``)."""
    if target is None:
        return []
    out: list[str] = []

    def visit(node: Node) -> None:
        for c in node.children:
            if len(out) >= limit:
                return
            if isinstance(c, Node):
                visit(c)
                continue
            t = " ".join(c.split()).strip(" \u2013\u2014-:|\u00b7")
            if t and t not in out:
                out.append(t)

    visit(target)
    return out


def instantiate(effect: str, node: Node, action: Action, ops_so_far: dict[int, dict[str, Any]],
                target: Node | None = None) -> Op | None:
    """The op an effect stands for on ``node`` (None for the ``?`` effects and ``add``).

    Class and style effects on one element are merged through ``ops_so_far`` (label → {"class": tokens,
    "style": declarations}); the caller turns each into one :class:`SetAttr` with :func:`class_op`.
    """
    pid = node.pid
    typed = action.text or ""
    if effect.endswith("=?") or effect.startswith("add"):
        return None
    if effect in ("checked=1", "checked=0"):
        return SetChecked(pid, effect == "checked=1")
    if effect == "focus":
        return SetFocus(pid)
    if effect == "blur":
        return SetFocus(None)
    if effect.startswith("value="):
        old = (text_content(node) if node.tag == "textarea" else node.get("value")) or ""
        if COUNT_EFFECT.fullmatch(effect):
            new = _counted(old, effect)
            return SetValue(pid, new) if new is not None else None
        if effect == "value=empty":
            return SetValue(pid, "")
        return SetValue(pid, typed_value(node, old, typed, effect == "value=typed"))
    if effect.startswith(("class+", "class-", "style+", "style-")):
        name = effect[:5]
        slot = ops_so_far.setdefault(pid, {})
        if name not in slot:
            slot[name] = _class_tokens(node.get("class")) if name == "class" else css_declarations(node.get("style"))
        tok = effect[6:]
        if effect[5] == "+" and name == "style":  # a declaration replaces the property's old one
            prop = tok.split(":", 1)[0]
            slot[name] = [d for d in slot[name] if d.split(":", 1)[0] != prop] + [tok]
        elif effect[5] == "+" and tok not in slot[name]:
            slot[name].append(tok)
        elif effect[5] == "-" and tok in slot[name]:
            slot[name].remove(tok)
        return None
    if effect.startswith("attr:"):
        name, _, value = effect[5:].partition("=")
        if COUNT_EFFECT.fullmatch(effect):
            new = _counted(node.get(name) or "", effect)
            return SetAttr(pid, name, new) if new is not None else None
        return SetAttr(pid, name, None if value == "<none>" else value)
    if effect.startswith("text="):
        if effect.startswith("text=part") and effect[9:].isdigit():
            parts = target_parts(target)
            if int(effect[9:]) >= len(parts):
                return None
            text = parts[int(effect[9:])]
        elif COUNT_EFFECT.fullmatch(effect):
            text = _counted(text_of(node), effect)
            if text is None:
                return None
        else:
            text = typed if effect == "text=typed" else effect[5:]
        runs = text_runs(node)
        return SetText(pid, (text, *[""] * (len(runs) - 1)))
    if effect == "remove":
        return RemoveNode(pid)
    if effect == "navigate":
        href = node.get("href")
        return Navigate(href) if href else None  # made absolute by the caller
    return None


def class_op(pid: int, node: Node, tokens: list[str], name: str = "class") -> Op | None:
    """One :class:`SetAttr` for the merged ``class`` (or ``style``) effects of an element: its class
    tokens (style declarations) after them; None when nothing changes."""
    if name == "style":
        new = canonical_style("; ".join(tokens))
        if canonical_style(node.get("style")) == new:
            return None
        return SetAttr(pid, "style", new or None)
    new = canonical_class(" ".join(tokens))
    if canonical_class(node.get("class")) == new:
        return None
    return SetAttr(pid, "class", new or None)
