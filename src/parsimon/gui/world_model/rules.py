"""The ``rule`` world model: what the browser itself does for an action, without the page's scripts.

Rules follow HTML's built-in behaviour:

* a click on a checkbox toggles it, on a radio checks it and unchecks the others of its group, on a
  ``<label>`` does the same for the field it labels; the clicked element (or the labelled field) takes
  the focus if it can, otherwise the focus leaves;
* typing sets the field's value (appends unless ``clear``) and focuses it; a number field
  (``<input type=number>``) keeps only the characters a number can hold, and its value is empty unless
  they make one (:func:`typed_value`);
* ``select`` picks the option;
* a link with a real ``href`` navigates (to a page the model cannot see, so the confidence is low);
* ``Tab`` moves the focus to the next focusable element;
* scrolling, hovering, waiting, answering and stopping change nothing in the DOM.

What a page's own scripts do on top (a submit handler, a tab panel that opens, a counter) is not
known, so the confidence is lower wherever scripts could act: buttons, links, Enter. Four script
conventions shared across widget libraries are known (:func:`convention_ops`; the learned model takes
them as well, since a store may hold no example of them):

* a click on a spin button's up / down arrow (a button beside an element with ARIA role
  ``spinbutton``, its class, label or title saying up / down, increase / decrease, increment /
  decrement, plus / minus) counts the field's value and its ``aria-valuenow`` up / down by its ``step``
  (within ``aria-valuemin`` / ``aria-valuemax``) and focuses the field;
* a click on a dialog's close control (a button, or inside one, whose class, ARIA label, title or text
  says *close* or *dismiss*, or whose text is ×) hides the dialog around it (the nearest ancestor with
  ARIA role ``dialog`` / ``alertdialog``: ``display: none``; a ``<dialog>`` loses ``open``) and the
  focus leaves;
* choosing an option of a sort control (a ``<select>`` whose id, name, ARIA label, title or
  ``<label>`` says *sort* or *order*) draws the page's list again (its largest ``ul`` / ``ol`` /
  ``tbody`` / list whose items carry ``data-*`` keys): the same items, in a new order (choosing the
  option already chosen fires the change event too, so the list is drawn again, in the same order);
* a click on an item of a roving-tabindex group (WAI-ARIA's pattern for tabs, accordion headers, trees,
  menus: the element clicked, or one of its two nearest ancestors, has an ARIA role and ``tabindex="-1"``,
  and exactly one sibling of the same tag and role has ``tabindex="0"``) moves the ``0`` to it and the
  ``-1`` to that sibling.
"""

from __future__ import annotations

import itertools
import re
import time
import urllib.parse
from typing import Any

from parsimon.gui.actions import Action
from parsimon.gui.world_model.base import WORLD_MODELS, Context, Prediction, WorldModel, target_element
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
    SetValue,
    canonical_style,
    css_declarations,
)
from parsimon.gui.world_model.dom import Node, element_children, text_content
from parsimon.gui.world_model.summary import summarize

__all__ = ["RuleWorldModel", "convention_ops", "focusable", "merge_ops", "typed_value"]

_POINTER = ("click", "double_click", "triple_click", "long_press")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def typed_value(field: Node, old: str, text: str, clear: bool) -> str:
    """The value ``field`` holds after ``text`` is typed into it (after ``old``, unless ``clear``).

    A number field takes only the keys a number is written with (digits, sign, point, exponent) and
    reports an empty value while what it holds is not a number: typing a word into one leaves it empty
    (when cleared) or as it was."""
    if field.tag != "input" or (field.get("type") or "").lower() != "number":
        return text if clear else old + text
    raw = ("" if clear else old) + "".join(ch for ch in text if ch in "0123456789+-.eE")
    return raw if _NUMBER.fullmatch(raw) else ""


_TEXT_TYPES = ("text", "password", "search", "email", "number", "tel", "url", "")


def focusable(node: Node | None) -> bool:
    """Whether a click focuses the element (form fields, buttons, links with href, tabindex)."""
    if node is None:
        return False
    if node.has("disabled"):
        return False
    if node.has("tabindex"):
        return True
    if node.tag in ("input", "select", "textarea", "button"):
        return (node.get("type") or "").lower() != "hidden"
    return node.tag == "a" and node.has("href")


def _labelled(node: Node, index: dict[int, Node]) -> Node | None:
    """The field a ``<label>`` stands for (``for=`` or the field inside it)."""
    target = node.get("for")
    if target:
        return next((n for n in index.values() if n.get("id") == target), None)
    return next((n for n in node.walk() if n is not node and n.tag in ("input", "select", "textarea")), None)


def _click_ops(node: Node, index: dict[int, Node]) -> tuple[list[Op], float]:
    pid = node.pid
    typ = (node.get("type") or "").lower()
    field = node
    label = node.tag == "label" or (node.tag != "input" and next(
        (a for a in node.ancestors() if a.tag == "label"), None) is not None)
    if label:
        lab = node if node.tag == "label" else next(a for a in node.ancestors() if a.tag == "label")
        found = _labelled(lab, index)
        if found is not None:
            field, pid, typ = found, found.pid, (found.get("type") or "").lower()
    ops: list[Op] = []
    conf = 0.5
    if field.tag == "input" and typ == "checkbox":
        ops.append(SetChecked(pid, not field.has("checked")))
        conf = 0.85
    elif field.tag == "input" and typ == "radio":
        if not field.has("checked"):
            ops.append(SetChecked(pid, True))
            name = field.get("name")
            if name:
                for other in index.values():
                    if other is not field and other.tag == "input" and other.get("name") == name \
                            and other.has("checked"):
                        ops.append(SetChecked(other.pid, False))
        conf = 0.85
    elif field.tag in ("input", "textarea", "select") and typ in (*_TEXT_TYPES, "select", "textarea"):
        conf = 0.8
    elif field.tag == "a" and field.has("href"):
        href = field.get("href") or ""
        if href and not href.startswith(("#", "javascript:")):
            ops.append(Navigate(href))
            conf = 0.3
        else:
            conf = 0.4
    elif field.tag == "button" or typ in ("submit", "button", "reset"):
        conf = 0.35  # a script or a form submission probably reacts
    if focusable(field):
        ops.append(SetFocus(pid))
    else:
        ops.append(SetFocus(None))
    return ops, conf


_UP = {"up", "increase", "increment", "inc", "plus", "more", "next"}
_DOWN = {"down", "decrease", "decrement", "dec", "minus", "less", "prev", "previous"}
_CLOSE = {"close", "dismiss"}
_SORT = {"sort", "order", "sortby", "orderby"}


def _words_of(node: Node, *attrs: str) -> set[str]:
    return {w for a in attrs for w in re.split(r"[^a-z]+", (node.get(a) or "").lower()) if w}


def _number(text: str | None) -> float | None:
    try:
        return float((text or "").strip())
    except ValueError:
        return None


def _button_of(node: Node) -> Node | None:
    """The link or button ``node`` is, or lies inside (a click on an icon in a button is the button's)."""
    return next((a for a in (node, *node.ancestors()) if a.tag in ("a", "button") or a.get("role") == "button"), None)


def _button_words(button: Node) -> set[str]:
    """The words of a button's class, ARIA label, title and text (lower case)."""
    return _words_of(button, "class", "aria-label", "title") | set(re.split(r"[^a-z]+", text_content(button).lower()))


def _spin_ops(node: Node) -> list[Op]:
    """A click on a spin button's arrow (see the module docstring); [] when ``node`` is not one."""
    button = _button_of(node)
    if button is None or button.parent is None:
        return []
    words = _button_words(button)
    up, down = bool(words & _UP), bool(words & _DOWN)
    if up == down:
        return []
    field = next((k for k in element_children(button.parent) if k.get("role") == "spinbutton"), None)
    if field is None or field.pid is None:
        return []
    now = _number(field.get("value"))
    now = _number(field.get("aria-valuenow")) if now is None else now
    step = _number(field.get("step")) or 1.0
    new = (now or 0.0) + (step if up else -step)
    lo, hi = _number(field.get("aria-valuemin") or field.get("min")), _number(field.get("aria-valuemax") or field.get("max"))
    new = max(new, lo) if lo is not None else new
    new = min(new, hi) if hi is not None else new
    text = str(int(new)) if float(new).is_integer() else f"{new:g}"
    return [SetValue(field.pid, text), SetAttr(field.pid, "aria-valuenow", text), SetFocus(field.pid)]


def _dialog_close_ops(node: Node) -> list[Op]:
    """A click on a dialog's close control (see the module docstring); [] when ``node`` is not one."""
    button = _button_of(node)
    if button is None:
        return []
    words = _button_words(button)
    if not words & _CLOSE and text_content(button).strip() not in ("×", "✕"):
        return []
    dialog = next((a for a in button.ancestors() if a.get("role") in ("dialog", "alertdialog") or a.tag == "dialog"),
                  None)
    if dialog is None or dialog.pid is None:
        return []
    if dialog.tag == "dialog":
        hide = SetAttr(dialog.pid, "open", None)
    else:
        kept = [d for d in css_declarations(dialog.get("style")) if d.split(":", 1)[0].strip() != "display"]
        hide = SetAttr(dialog.pid, "style", canonical_style("; ".join([*kept, "display: none"])))
    return [hide, SetFocus(None)]


def _sort_ops(node: Node, action: Action, index: dict[int, Node]) -> list[Op]:
    """An option chosen in a sort control (see the module docstring); [] when ``node`` is not one."""
    from parsimon.gui.world_model.features import is_list, keyed_items, rerender_ops

    if node.tag != "select":
        return []
    words = _words_of(node, "id", "name", "aria-label", "title")
    ident = node.get("id")
    if ident:
        for lab in index.values():
            if lab.tag == "label" and lab.get("for") == ident:
                words |= set(re.split(r"[^a-z]+", text_content(lab).lower()))
    if not words & _SORT:
        return []
    chosen = next((o for o in node.walk() if o.tag == "option"
                   and (text_content(o) == (action.option or "") or o.get("value") == action.option)), None)
    if chosen is None:
        return []
    # the option already chosen draws the list again too: choosing it fires the change event (our executor's
    # ``select_option`` always does), and a list drawn again is made of new elements in the same order

    lists = [n for p, n in index.items() if p is not None and p >= 0 and is_list(n)
             and (n.tag in ("ul", "ol", "tbody") or keyed_items(n, deep=False)) and n is not node
             and not any(a is n for a in node.ancestors())]
    if not lists:
        return []
    best = max(lists, key=lambda n: len(element_children(n)))
    return rerender_ops(best)


def _roving_ops(node: Node) -> list[Op]:
    """A click on an item of a roving-tabindex group (see the module docstring); [] when ``node`` is not in
    one."""
    def tabindex(n: Node) -> str:
        return (n.get("tabindex") or "").strip()

    item = next((a for a in (node, *itertools.islice(node.ancestors(), 2))
                 if a.has("tabindex") and a.get("role") not in (None, "", "presentation", "none")), None)
    if item is None or item.pid is None or item.parent is None or tabindex(item) != "-1":
        return []
    role = item.get("role")
    peers = [k for k in element_children(item.parent) if k is not item and k.tag == item.tag
             and k.get("role") == role and tabindex(k) == "0"]
    if len(peers) != 1 or peers[0].pid is None:
        return []
    return [SetAttr(item.pid, "tabindex", "0"), SetAttr(peers[0].pid, "tabindex", "-1")]


def convention_ops(action: Action, node: Node | None, index: dict[int, Node], skip: tuple[str, ...] = ()) -> list[Op]:
    """The ops of the script conventions in the module docstring ([] when none applies); ``skip`` names
    conventions not to apply (``"spin"``, ``"sort"``)."""
    if node is None:
        return []
    if action.kind == "click":
        ops = _spin_ops(node) if "spin" not in skip else []
        ops = ops or (_dialog_close_ops(node) if "dialog" not in skip else [])
        return ops + (_roving_ops(node) if "roving" not in skip else [])
    if action.kind == "select" and "sort" not in skip:
        return _sort_ops(node, action, index)
    return []


def _tab_order(index: dict[int, Node]) -> list[int]:
    body = index.get(-1)
    if body is None:
        return []
    return [n.pid for n in body.walk() if n.pid is not None and n.pid >= 0 and focusable(n)
            and (n.get("tabindex") or "0").strip() != "-1"]


class RuleWorldModel(WorldModel):
    """See the module docstring."""

    name = "rule"

    def ops(self, obs: Any, action: Action, index: dict[int, Node] | None = None,
            conventions: bool = False) -> tuple[list[Op], float]:
        """The predicted ops and the confidence (before de-duplication against the current page).

        Args:
            obs: The page.
            action: The action.
            index: The page's parsed DOM (label → node), if the caller has it already.
            conventions: Also the script conventions (:func:`convention_ops`), in place of the built-in
                ops they cover.
        """
        if index is None:
            index = PageState.from_observation(obs).doc().index()
        ops, conf = self._builtin_ops(obs, action, index)
        if conventions:
            el = target_element(obs, action)
            extra = convention_ops(action, index.get(el.pid) if el is not None else None, index)
            if extra:
                ops = merge_ops(ops, extra)
        return ops, conf

    def _builtin_ops(self, obs: Any, action: Action, index: dict[int, Node]) -> tuple[list[Op], float]:
        k = action.kind
        if k in ("terminate", "answer", "interact", "hover", "scroll", "wait"):
            return [], 0.95 if k in ("terminate", "answer", "interact") else 0.7
        el = target_element(obs, action)
        node = index.get(el.pid) if el is not None else None
        if k in _POINTER:
            if node is None:
                return [], 0.3
            return _click_ops(node, index)
        if k == "type":
            field = node if node is not None else index.get(obs.focused) if obs.focused is not None else None
            if field is None or field.tag not in ("input", "textarea"):
                return [], 0.2
            old = (text_content(field) if field.tag == "textarea" else field.get("value")) or ""
            new = typed_value(field, old, action.text or "", action.clear)
            ops: list[Op] = [SetValue(field.pid, new), SetFocus(field.pid)]
            return ops, 0.4 if action.enter else 0.8
        if k == "select":
            if node is None or node.tag != "select":
                return [], 0.2
            ops = []
            for opt in node.walk():
                if opt.tag != "option":
                    continue
                want = text_content(opt) == (action.option or "") or opt.get("value") == action.option
                if want != opt.has("selected"):
                    ops.append(SetAttr(opt.pid, "selected", "" if want else None))
            return ops + [SetFocus(node.pid)], 0.8
        if k == "key":
            keys = [x.lower() for x in action.keys or ()]
            if keys == ["tab"]:
                order = _tab_order(index)
                if not order:
                    return [], 0.5
                nxt = order[0] if obs.focused not in order else order[(order.index(obs.focused) + 1) % len(order)]
                return [SetFocus(nxt)], 0.6
            return [], 0.3
        if k in ("go_back", "home", "open"):
            return [], 0.1
        return [], 0.3

    def predict(self, obs: Any, action: Action, context: Context | None = None) -> Prediction:  # noqa: D102
        t0 = time.perf_counter()
        ops, conf = self.ops(obs, action, conventions=True)
        ops = _resolve(ops, obs)
        delta = Delta(ops)
        delta.summary = summarize(PageState.from_observation(obs), action.describe(), delta)
        return Prediction(action, delta, conf, self.name, time.perf_counter() - t0)


def _slot(op: Op) -> tuple:
    """What an op changes, without the new value: two ops with one slot cannot both hold."""
    if isinstance(op, SetFocus):
        return ("focus",)
    if isinstance(op, SetAttr):
        return ("attr", op.pid, op.name)
    if isinstance(op, AddNode):
        return ("children", op.parent)
    if isinstance(op, RemoveNode):
        return ("node", op.pid)
    return (type(op).__name__, getattr(op, "pid", None))


def merge_ops(ops: list[Op], extra: list[Op]) -> list[Op]:
    """``ops`` with ``extra`` added, dropping the ops of ``ops`` that change what ``extra`` changes (a list
    drawn again replaces any other insertion into it or removal from it)."""
    slots = {_slot(op) for op in extra}
    parents = {op.parent for op in extra if isinstance(op, AddNode)}
    keep = [op for op in ops if _slot(op) not in slots and not (isinstance(op, AddNode) and op.parent in parents)]
    return keep + list(extra)


def _resolve(ops: list[Op], obs: Any) -> list[Op]:
    """Drop ops that change nothing (focus already there), make link targets absolute."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, SetFocus) and op.pid == obs.focused:
            continue
        if isinstance(op, Navigate) and op.html is None:
            op = Navigate(urllib.parse.urljoin(obs.url, op.url))
        out.append(op)
    return out


WORLD_MODELS.register("rule", RuleWorldModel, describe="HTML's built-in behaviour (toggle, type, select, focus, links)")
