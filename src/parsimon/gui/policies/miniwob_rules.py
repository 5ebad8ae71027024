"""Hand-written DOM rules for MiniWoB++ tasks: the ``rule`` policy's knowledge of each page.

Each rule reads the instruction and the element table of the current :class:`Observation` (never the
page's scripts or the reward) and returns the next action, a list of actions to run in order, or None
when it has nothing left to do. Rules see the page again after each action, so multi-screen tasks
(tabs, menus, e-mail threads, trees, pagination) are solved by looking. :data:`RULES` maps task names
to rules; a task without one is not solved by this policy.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from parsimon.gui.actions import Action, Element

__all__ = ["RULES", "Rule"]

Rule = Callable[[Any, dict], "Action | list[Action] | None"]
RULES: dict[str, Rule] = {}

_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9,
             "10th": 10, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register a rule for these tasks."""
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn
    return deco


# -- helpers
def quoted(goal: str) -> list[str]:
    """The strings in double quotes in the instruction."""
    return re.findall(r'"([^"]*)"', goal)


def click(e: Any) -> Action:
    """Click an element."""
    return Action("click", target=Element(e.pid))


def type_into(e: Any, text: str, *, enter: bool = False) -> Action:
    """Replace an input's text."""
    return Action("type", target=Element(e.pid), text=text, clear=True, enter=enter)


def els(obs: Any, *, tag: str | None = None, cls: str | None = None, text: str | None = None,
        name: str | None = None, id: str | None = None, typ: str | None = None, visible: bool = False) -> list:
    """Elements matching every given field (``cls`` is one class among the element's classes)."""
    out = []
    for e in obs.elements:
        if tag is not None and e.tag != tag:
            continue
        if cls is not None and cls not in (e.cls or "").split():
            continue
        if text is not None and e.text != text:
            continue
        if name is not None and e.name != name:
            continue
        if id is not None and e.id != id:
            continue
        if typ is not None and e.type != typ:
            continue
        if visible and not e.visible:
            continue
        out.append(e)
    return out


def first(items: list) -> Any:
    """The first item or None."""
    return items[0] if items else None


def button(obs: Any, label: str) -> Any:
    """A button (or submit-like element) whose text is ``label`` (case-insensitive)."""
    low = label.lower()
    for e in obs.elements:
        if e.tag == "button" and (e.text.lower() == low or e.name.lower() == low):
            return e
        if e.tag == "input" and e.type in ("submit", "button") and (e.value or "").lower() == low:
            return e
    return None


def submit(obs: Any) -> Any:
    """The page's Submit button."""
    return button(obs, "submit") or first(els(obs, id="subbtn")) or first(els(obs, id="submit"))


def children(obs: Any, parent: Any) -> list:
    """Direct children of an element."""
    return [e for e in obs.elements if e.parent == parent.pid]


def descendants(obs: Any, root: Any) -> list:
    """All elements below ``root``."""
    below, frontier = [], {root.pid}
    for e in obs.elements:  # document order: parents come before children
        if e.parent in frontier:
            below.append(e)
            frontier.add(e.pid)
    return below


def ancestor(obs: Any, e: Any, cls: str) -> Any:
    """The nearest ancestor with class ``cls``."""
    by_pid = {x.pid: x for x in obs.elements}
    p = by_pid.get(e.parent)
    while p is not None:
        if cls in (p.cls or "").split():
            return p
        p = by_pid.get(p.parent)
    return None


def textboxes(obs: Any) -> list:
    """Text inputs and textareas, in document order."""
    return [e for e in obs.elements if (e.tag == "input" and e.type in ("text", "password", "number", "search",
                                                                           "email", "tel", None))
            or e.tag == "textarea"]


def checkbox_for(obs: Any, label: str) -> Any:
    """The checkbox or radio whose label is ``label``."""
    for e in obs.elements:
        if e.tag == "input" and e.type in ("checkbox", "radio") and e.name == label:
            return e
    return None


def once(mem: dict, key: str) -> bool:
    """True the first time ``key`` is asked for in this episode."""
    if key in mem:
        return False
    mem[key] = True
    return True


# -- clicking things named in the instruction
@rule("click-button", "unicode-test")
def _click_button(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    return click(button(obs, q[0])) if q and button(obs, q[0]) else None


@rule("click-test")
def _click_test(obs: Any, mem: dict) -> Any:
    return click(first(els(obs, tag="button"))) if once(mem, "c") else None


@rule("click-test-2", "click-test-transfer")
def _click_test2(obs: Any, mem: dict) -> Any:
    m = re.search(r"button (\w+)", obs.goal)
    return click(button(obs, m.group(1))) if m and button(obs, m.group(1)) else None


@rule("click-button-sequence", "button-delay")
def _sequence(obs: Any, mem: dict) -> Any:
    stage = mem.setdefault("stage", 0)
    mem["stage"] = stage + 1
    if stage == 0:
        seconds = re.search(r"wait (\d+) second", obs.goal)
        one = click(button(obs, "ONE"))
        # one second of page time passes after every action (the environment's settle time)
        return [one, Action("wait", seconds=max(0.0, float(seconds.group(1)) - 1))] if seconds else one
    two = button(obs, "TWO")
    return click(two) if stage == 1 and two else None


@rule("click-link")
def _click_link(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    e = first([e for e in els(obs, cls="alink") if q and e.text == q[0]])
    return click(e) if e else None


@rule("click-dialog", "click-dialog-2")
def _dialog(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    label = q[0] if q else "x"
    target = button(obs, "Close") if label.lower() == "x" else button(obs, label)
    return click(target) if target and once(mem, "d") else None


@rule("click-widget")
def _widget(obs: Any, mem: dict) -> Any:
    kind = first(quoted(obs.goal))
    pick = {"button": lambda e: e.tag == "button",
            "checkbox": lambda e: e.tag == "input" and e.type == "checkbox",
            "radio": lambda e: e.tag == "input" and e.type == "radio",
            "text": lambda e: e.tag == "input" and e.type == "text",
            "textarea": lambda e: e.tag == "textarea"}.get(kind or "")
    if pick is None or not once(mem, "w"):
        return None
    return click(first([e for e in obs.elements if pick(e)]))


@rule("click-tab")
def _click_tab(obs: Any, mem: dict) -> Any:
    m = re.search(r"Tab #(\d+)", obs.goal)
    e = first([e for e in obs.elements if e.tag == "a" and m and e.text == f"Tab #{m.group(1)}"])
    return click(e) if e and once(mem, "t") else None


@rule("click-tab-2", "click-tab-2-easy", "click-tab-2-medium", "click-tab-2-hard")
def _click_tab2(obs: Any, mem: dict) -> Any:
    want = first(quoted(obs.goal))
    link = first([e for e in els(obs, cls="alink") if e.text == want and e.visible])
    if link:
        return click(link)
    tabs = [e for e in obs.elements if e.tag == "a" and "ui-tabs-anchor" in (e.cls or "")]
    done = mem.setdefault("tabs", 0)
    if done + 1 >= len(tabs):
        return None
    mem["tabs"] = done + 1
    return click(tabs[done + 1])


@rule("click-collapsible", "click-collapsible-nodelay")
def _collapsible(obs: Any, mem: dict) -> Any:
    if once(mem, "open"):
        return click(first(els(obs, tag="h3")))
    sub = submit(obs)
    return click(sub) if sub and sub.visible and once(mem, "sub") else None


@rule("click-collapsible-2", "click-collapsible-2-nodelay")
def _collapsible2(obs: Any, mem: dict) -> Any:
    want = first(quoted(obs.goal))
    link = first([e for e in els(obs, cls="alink") if e.text == want and e.visible])
    if link:
        return click(link)
    heads = els(obs, tag="h3")
    i = mem.setdefault("sec", 0)
    if i >= len(heads):
        return None
    mem["sec"] = i + 1
    return click(heads[i])


@rule("click-menu-2")
def _menu2(obs: Any, mem: dict) -> Any:
    want = quoted(obs.goal)
    if len(want) < 2:
        return None
    item = first([e for e in obs.elements if e.visible and e.text == want[1] and e.role == "menuitem"])
    if item is not None:
        return click(item) if once(mem, "item") else None
    parents = [e for e in obs.elements if e.visible and e.role == "menuitem"
               and any("ui-icon-caret-1-e" in (c.cls or "") for c in children(obs, e))]
    tried = mem.setdefault("hovered", [])
    for p in parents:
        if p.text not in tried:
            tried.append(p.text)
            return Action("hover", target=Element(p.pid))
    opener = button(obs, want[0])
    return click(opener) if opener and once(mem, "open") else None


@rule("click-menu")
def _menu(obs: Any, mem: dict) -> Any:
    path = [p.strip() for p in obs.goal.split("Select", 1)[-1].split(">")]
    i = mem.setdefault("level", 0)
    if i >= len(path):
        return None
    item = first([e for e in obs.elements if e.visible and e.role == "menuitem" and e.text == path[i]])
    if item is None:
        return None
    mem["level"] = i + 1
    return click(item) if i == len(path) - 1 else Action("hover", target=Element(item.pid))


# -- forms
@rule("click-checkboxes", "click-checkboxes-large", "click-checkboxes-transfer", "click-option")
def _checkboxes(obs: Any, mem: dict) -> Any:
    if not once(mem, "boxes"):
        return None
    m = re.search(r"Select (.*?) and click Submit", obs.goal)
    words = [] if not m or m.group(1).strip() == "nothing" else [w.strip() for w in m.group(1).split(",")]
    out = [click(box) for w in words if (box := checkbox_for(obs, w)) is not None and not box.checked]
    return out + [click(submit(obs))]


@rule("choose-list")
def _choose_list(obs: Any, mem: dict) -> Any:
    m = re.search(r"Select (.*) from the list", obs.goal)
    sel = first(els(obs, tag="select"))
    if not (m and sel) or not once(mem, "l"):
        return None
    return [Action("select", target=Element(sel.pid), option=m.group(1).strip()), click(submit(obs))]


@rule("click-scroll-list")
def _scroll_list(obs: Any, mem: dict) -> Any:
    m = re.search(r"Select (.*) from the scroll list", obs.goal)
    sel = first(els(obs, tag="select"))
    if not (m and sel) or not once(mem, "l"):
        return None
    names = [w.strip() for w in m.group(1).split(",")]
    if len(names) > 1:
        return None  # a multiple selection needs Ctrl+click, which the action space has no verb for
    return [Action("select", target=Element(sel.pid), option=names[0]), click(submit(obs))]


def _fill_and_submit(obs: Any, mem: dict, text: str, box: Any = None) -> Any:
    box = box or first(textboxes(obs))
    if box is None or not once(mem, "fill"):
        return None
    return [type_into(box, text), click(submit(obs))]


@rule("enter-text", "enter-text-dynamic")
def _enter_text(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    return _fill_and_submit(obs, mem, q[0]) if q else None


@rule("enter-text-2")
def _enter_text2(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    if not q:
        return None
    text = q[0].upper() if "upper case" in obs.goal else q[0].lower()
    return _fill_and_submit(obs, mem, text)


@rule("enter-password")
def _password(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    boxes = [e for e in obs.elements if e.tag == "input" and e.type == "password"]
    if not q or not once(mem, "p"):
        return None
    return [type_into(b, q[0]) for b in boxes] + [click(submit(obs))]


@rule("login-user", "login-user-popup")
def _login(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    popup = first(els(obs, id="popup-cancel", visible=True))
    if popup is not None:
        return click(popup)
    user, pw = first(els(obs, id="username")), first(els(obs, id="password"))
    if len(q) < 2 or user is None or pw is None:
        return None
    if user.value != q[0]:
        return type_into(user, q[0])
    if pw.value != q[1]:
        return type_into(pw, q[1])
    login = first(els(obs, id="subbtn"))
    return click(login) if login and once(mem, "login") else None


@rule("focus-text")
def _focus(obs: Any, mem: dict) -> Any:
    box = first(textboxes(obs))
    return click(box) if box and once(mem, "f") else None


@rule("focus-text-2")
def _focus2(obs: Any, mem: dict) -> Any:
    m = re.search(r"(\d+)(?:st|nd|rd|th) input", obs.goal)
    boxes = textboxes(obs)
    if not m or int(m.group(1)) > len(boxes) or not once(mem, "f"):
        return None
    return click(boxes[int(m.group(1)) - 1])


@rule("find-word")
def _find_word(obs: Any, mem: dict) -> Any:
    m = re.search(r"the (\w+) word", obs.goal)
    para = first(els(obs, tag="p"))
    if not (m and para):
        return None
    n = _ORDINALS.get(m.group(1).lower())
    words = para.text.split()
    return _fill_and_submit(obs, mem, words[n - 1], first(els(obs, id="answer-input"))) if n and n <= len(words) \
        else None


@rule("read-table")
def _read_table(obs: Any, mem: dict) -> Any:
    m = re.search(r"value of (.*?) into", obs.goal)
    cells = els(obs, tag="td")
    for a, b in itertools.pairwise(cells):
        if m and a.text == m.group(1) and a.parent == b.parent:
            return _fill_and_submit(obs, mem, b.text, first(els(obs, id="tt")))
    return None


@rule("read-table-2")
def _read_table2(obs: Any, mem: dict) -> Any:
    if not once(mem, "t"):
        return None
    cells = els(obs, tag="td")
    table = {a.text: b.text for a, b in itertools.pairwise(cells) if a.parent == b.parent and a.parent is not None}
    out = []
    for lab in els(obs, tag="label"):
        key = lab.text.rstrip(":").strip()
        box = first([e for e in children(obs, first([p for p in obs.elements if p.pid == lab.parent]))
                     if e.tag == "input"]) if lab.parent is not None else None
        if key in table and box is not None:
            out.append(type_into(box, table[key]))
    return out + [click(submit(obs))]


def _solve_arithmetic(text: str) -> str | None:
    m = re.match(r"\s*(-?\d+)\s*([-+x*/])\s*(-?\d+)", text)
    if not m:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    value = {"+": a + b, "-": a - b, "x": a * b, "*": a * b, "/": a // b if b else 0}[op]
    return str(value)


@rule("simple-arithmetic")
def _arith(obs: Any, mem: dict) -> Any:
    prob = first(els(obs, id="math-problem"))
    ans = _solve_arithmetic(prob.text) if prob else None
    return _fill_and_submit(obs, mem, ans, first(els(obs, id="math-answer"))) if ans is not None else None


@rule("simple-algebra")
def _algebra(obs: Any, mem: dict) -> Any:
    prob = first(els(obs, id="math-problem"))
    if prob is None:
        return None
    s = prob.text.replace(" ", "")
    m = re.fullmatch(r"(-?\d+)?([-+])?x([-+]\d+)?=(-?\d+)", s) or re.fullmatch(r"(-?\d+)([-+])x=(-?\d+)", s)
    x = None
    if m and len(m.groups()) == 4:
        a, sign, c, r = m.groups()
        if a is None:  # x + c = r
            x = int(r) - int(c or 0)
        elif sign == "+":  # a + x (+ c) = r
            x = int(r) - int(a) - int(c or 0)
        else:  # a - x (+ c) = r
            x = int(a) + int(c or 0) - int(r)
    elif m:
        a, sign, r = m.groups()
        x = int(r) - int(a) if sign == "+" else int(a) - int(r)
    return _fill_and_submit(obs, mem, str(x), first(els(obs, id="math-answer"))) if x is not None else None


@rule("scroll-text")
def _scroll_text(obs: Any, mem: dict) -> Any:
    area = first(els(obs, tag="textarea"))
    words = (area.value or area.text).split() if area else []
    return _fill_and_submit(obs, mem, words[-1], first(els(obs, id="answer-input"))) if words else None


@rule("scroll-text-2")
def _scroll_text2(obs: Any, mem: dict) -> Any:
    area = first(els(obs, tag="textarea"))
    if area is None or not once(mem, "s"):
        return None
    direction = "up" if "top" in obs.goal else "down"
    return [Action("scroll", target=Element(area.pid), direction=direction, amount=5000), click(submit(obs))]


@rule("text-transform")
def _captcha(obs: Any, mem: dict) -> Any:
    cap = first(els(obs, id="captcha"))
    if cap is None:
        return None
    text = "".join(e.text for e in children(obs, cap))
    return _fill_and_submit(obs, mem, text, first(els(obs, id="tt")))


@rule("use-spinner")
def _spinner(obs: Any, mem: dict) -> Any:
    m = re.search(r"Select (-?\d+)", obs.goal)
    box = first(els(obs, id="spinner"))
    if not (m and box):
        return None
    try:
        current = int(box.value or 0)
    except ValueError:
        return None
    target = int(m.group(1))
    if current == target:
        return click(submit(obs)) if once(mem, "s") else None
    arrow = first(els(obs, cls="ui-spinner-up" if target > current else "ui-spinner-down"))
    return click(arrow) if arrow else None


@rule("form-sequence-2")
def _form_seq2(obs: Any, mem: dict) -> Any:
    m = re.search(r"Check the (\w+) radio button and enter the number \"(-?\d+)\" into the (\w+) textbox", obs.goal)
    if not m or not once(mem, "f"):
        return None
    radios = [e for e in obs.elements if e.tag == "input" and e.type == "radio"]
    boxes = [e for e in obs.elements if e.tag == "input" and e.type == "text"]
    r, t = _ORDINALS.get(m.group(1), 0), _ORDINALS.get(m.group(3), 0)
    if not (0 < r <= len(radios) and 0 < t <= len(boxes)):
        return None
    return [click(radios[r - 1]), type_into(boxes[t - 1], m.group(2)), click(submit(obs))]


@rule("form-sequence-3")
def _form_seq3(obs: Any, mem: dict) -> Any:
    m = re.search(r"Choose (.*) from the dropdown, then click the button labeled \"(.*)\"", obs.goal)
    sel = first(els(obs, tag="select"))
    if not (m and sel) or not once(mem, "f"):
        return None
    return [Action("select", target=Element(sel.pid), option=m.group(1)), click(button(obs, m.group(2)))]


@rule("multi-layouts", "multi-orderings")
def _movies(obs: Any, mem: dict) -> Any:
    if not once(mem, "m"):
        return None
    m = re.search(r"Search for (\w+) movies directed by (\w+) from year (\d+)", obs.goal)
    if not m:
        return None
    values = {"genre": m.group(1), "director": m.group(2), "year": m.group(3)}
    out = []
    for box in [e for e in obs.elements if e.tag == "input"]:
        near = [e for e in obs.elements if e.text.lower() in values and e.text]
        # the label nearest to the box on the page
        best = min(near, key=lambda e: abs(e.center[1] - box.center[1]) + 0.1 * abs(e.center[0] - box.center[0]),
                   default=None)
        if best is not None:
            out.append(type_into(box, values[best.text.lower()]))
    go = first([e for e in obs.elements if e.text in ("Submit", "Search") and e.tag != "b"])
    return out + ([click(go)] if go else [])


@rule("use-autocomplete", "use-autocomplete-nodelay")
def _autocomplete(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    box = first(els(obs, id="tags")) or first(textboxes(obs))
    if not q or box is None:
        return None
    start, end = q[0], (q[1] if len(q) > 1 else "")
    items = [e for e in obs.elements if e.visible and "ui-menu-item-wrapper" in (e.cls or "")]
    match = first([e for e in items if e.text.startswith(start) and e.text.endswith(end)])
    if match:
        return [click(match), click(submit(obs))] if once(mem, "pick") else None
    return Action("type", target=Element(box.pid), text=start, clear=True) if once(mem, "typed") else None


# -- reading values off the page
@rule("buy-ticket")
def _buy_ticket(obs: Any, mem: dict) -> Any:
    if not once(mem, "b"):
        return None
    flights = els(obs, cls="flight")
    rows = []
    for f in flights:
        inner = descendants(obs, f)
        dur = first([e for e in inner if "time-duration" in (e.cls or "")])
        buy = first([e for e in inner if e.tag == "button"])
        if dur and buy:
            h, m = re.search(r"(\d+)h", dur.text), re.search(r"(\d+)m", dur.text)
            minutes = (int(h.group(1)) if h else 0) * 60 + (int(m.group(1)) if m else 0)
            price = int(re.sub(r"[^\d]", "", buy.text) or 0)
            rows.append((minutes, price, buy))
    if not rows:
        return None
    g = obs.goal
    key = {"shortest": lambda r: r[0], "longest": lambda r: -r[0], "cheapest": lambda r: r[1],
           "most expensive": lambda r: -r[1]}
    for word, fn in key.items():
        if word in g:
            return click(min(rows, key=fn)[2])
    return None


@rule("odd-or-even")
def _odd_even(obs: Any, mem: dict) -> Any:
    if not once(mem, "oe"):
        return None
    out = []
    for row in els(obs, cls="row"):
        inner = descendants(obs, row)
        num = first([e for e in inner if "display-number" in (e.cls or "")])
        if num is None:
            continue
        want = "even" if int(num.text) % 2 == 0 else "odd"
        btn = first([e for e in inner if e.tag == "button" and want in (e.cls or "").split()])
        if btn:
            out.append(click(btn))
    return out + [click(submit(obs))]


@rule("generate-number")
def _generate(obs: Any, mem: dict) -> Any:
    m = re.search(r"number (less|greater|higher|lower) than (\d+)", obs.goal)
    parity = re.search(r"an (even|odd) number", obs.goal)
    shown = first(els(obs, id="display-number"))
    if not ((m or parity) and shown):
        return None
    if shown.text.lstrip("-").isdigit():
        n = int(shown.text)
        if parity:
            ok = (n % 2 == 0) == (parity.group(1) == "even")
        else:
            ok = n < int(m.group(2)) if m.group(1) in ("less", "lower") else n > int(m.group(2))
        if ok:
            return click(first(els(obs, id="submit"))) if once(mem, "s") else None
    mem["tries"] = mem.get("tries", 0) + 1
    return click(first(els(obs, id="generate"))) if mem["tries"] < 15 else None


@rule("guess-number")
def _guess(obs: Any, mem: dict) -> Any:
    lo, hi = mem.setdefault("lo", 0), mem.setdefault("hi", 9)
    box = first(els(obs, id="feedback"))
    feedback = " ".join(e.text.lower() for e in descendants(obs, box) if e.visible) if box else ""
    last = mem.get("last")
    if last is not None:
        if "higher" in feedback:
            mem["lo"] = lo = last + 1
        elif "lower" in feedback:
            mem["hi"] = hi = last - 1
    if lo > hi:
        return None
    guess = (lo + hi) // 2
    mem["last"] = guess
    entry = first(els(obs, id="tt"))
    return [type_into(entry, str(guess)), click(submit(obs))] if entry else None


@rule("navigate-tree")
def _tree(obs: Any, mem: dict) -> Any:
    want = first(quoted(obs.goal))
    hit = first([e for e in obs.elements if e.visible and e.text == want and e.tag == "span"])
    if hit:
        return click(hit) if once(mem, "hit") else None
    opened = mem.setdefault("opened", set())
    for f in obs.elements:
        if f.visible and f.tag == "span" and "folder" in (f.cls or "").split() and f.pid not in opened:
            parent = first([e for e in obs.elements if e.pid == f.parent])
            if parent is not None and "expandable" in (parent.cls or "").split():
                opened.add(f.pid)
                return click(f)
    return None


@rule("phone-book")
def _phone(obs: Any, mem: dict) -> Any:
    m = re.search(r"Find (.*) in the contact book and click on their (\w+)", obs.goal)
    if not m:
        return None
    name, what = m.group(1), m.group(2)
    cls = {"phone": "phone", "email": "email", "address": "address"}.get(what, what)
    if first([e for e in els(obs, tag="h2") if e.text == name]):
        target = first(els(obs, cls=cls))
        return click(target) if target and once(mem, "done") else None
    nxt = first([e for e in obs.elements if e.tag == "a" and e.text == ">"])
    mem["pages"] = mem.get("pages", 0) + 1
    return click(nxt) if nxt and mem["pages"] < 20 else None


@rule("search-engine")
def _search(obs: Any, mem: dict) -> Any:
    q = quoted(obs.goal)
    m = re.search(r"click the (\w+) search result", obs.goal)
    if not (q and m):
        return None
    n = _ORDINALS.get(m.group(1), 0)
    if once(mem, "query"):
        return [type_into(first(els(obs, id="search-text")), q[0]), click(first(els(obs, id="search")))]
    results = [e for e in obs.elements if e.tag == "a" and e.visible and "search-title" in (e.cls or "")]
    page = mem.setdefault("page", 1)
    per_page = mem.setdefault("per_page", len(results) or 3)
    index = n - (page - 1) * per_page
    if 0 < index <= len(results):
        return click(results[index - 1]) if once(mem, "clicked") else None
    nxt = first([e for e in obs.elements if e.tag == "a" and e.visible and e.text == str(page + 1)])
    if nxt:
        mem["page"] = page + 1
        return click(nxt)
    return None


# -- apps inside the page
def _email_thread(obs: Any, sender: str) -> Any:
    for t in els(obs, cls="email-thread"):
        if any(e.text == sender and "email-sender" in (e.cls or "") for e in descendants(obs, t)):
            return t
    return None


@rule("email-inbox", "email-inbox-reply", "email-inbox-forward", "email-inbox-delete", "email-inbox-important",
      "email-inbox-noscroll", "email-inbox-star-reply", "email-inbox-forward-nl", "email-inbox-forward-nl-turk",
      "email-inbox-nl-turk")
def _email(obs: Any, mem: dict) -> Any:
    g = obs.goal
    q = quoted(g)
    m = (re.search(r"(\w+)'s e-?mail", g) or re.search(r"e-?mails? by (\w+)", g)
         or re.search(r"e-?mails? from (\w+)", g) or re.search(r"(?:sent|written) by (\w+)", g)
         or re.search(r"e-?mail (\w+) sent", g) or re.search(r"information from (\w+)", g)
         or re.search(r"from (\w+)", g) or re.search(r"by (\w+)", g))
    if not m:
        return None
    sender = m.group(1)
    low = g.lower()
    waiting = re.search(r"^(\w+) (?:wants|is waiting for|needs)", g)
    if "forward" in low or "give it to" in low or waiting or re.search(r"send the e-?mail from \w+ to", low):
        to = waiting or re.search(r"\bto (?!you\b|me\b)(\w+)", g)
        goal, arg = "forward", to.group(1) if to else None
    elif "reply" in low or "respond" in low:
        goal, arg = "reply", q[-1] if q else None
    elif "star" in low or "important" in low:
        goal, arg = "star", None
    elif "trash" in low or "delete" in low:
        goal, arg = "trash", None
    else:
        return None
    fwd_box = first(els(obs, cls="forward-sender"))
    if goal == "forward" and fwd_box is not None and fwd_box.visible and arg:
        return [type_into(fwd_box, arg), click(first(els(obs, id="send-forward")))] if once(mem, "send") else None
    reply_box = first(els(obs, id="reply-text"))
    if goal == "reply" and reply_box is not None and reply_box.visible and arg is not None:
        return [type_into(reply_box, arg), click(first(els(obs, id="send-reply")))] if once(mem, "send") else None
    open_mail = first(els(obs, id="email"))
    if open_mail is not None and open_mail.visible:
        inner = {e.cls: e for e in descendants(obs, open_mail) if e.cls}
        pick = {"forward": "email-forward", "reply": "email-reply", "star": "star", "trash": "trash"}[goal]
        target = inner.get(pick)
        return click(target) if target and once(mem, "act") else None
    thread = _email_thread(obs, sender)
    if thread is None:
        return None
    if goal in ("star", "trash"):
        icon = first([e for e in descendants(obs, thread) if goal in (e.cls or "").split()])
        if icon is not None and icon.bbox[2] > 0 and icon.bbox[3] > 0:
            return click(icon) if once(mem, "act") else None
    return click(thread) if once(mem, "open") else None


@rule("social-media-all", "social-media-some")
def _social_like(obs: Any, mem: dict) -> Any:
    if not once(mem, "s"):
        return None
    user = first([w for w in quoted(obs.goal) + obs.goal.split() if w.startswith("@")])
    m = re.search(r"on (\d+) posts?", obs.goal)
    limit = int(m.group(1)) if m else None
    user = (user or "").rstrip(".")
    kind = (first(quoted(obs.goal)) or "Like").lower()
    out = []
    for media in els(obs, cls="media"):
        inner = descendants(obs, media)
        if any("username" in (e.cls or "") and e.text == user for e in inner):
            like = first([e for e in inner if kind in (e.cls or "").split()])
            if like and (limit is None or len(out) < limit):
                out.append(click(like))
    return out + [click(submit(obs))]


@rule("terminal")
def _terminal(obs: Any, mem: dict) -> Any:
    box = first(els(obs, id="terminal-target"))
    if box is None:
        return None
    if once(mem, "ls"):
        return Action("type", target=Element(box.pid), text="ls", enter=True)
    files = [t for e in obs.elements if "output" in (e.cls or "").split() for t in e.text.split()]
    if "no file extension" in obs.goal:
        cands = [f for f in files if "." not in f and f not in ("Welcome!", "Type", "help", "for", "a", "list",
                                                               "of", "available", "Last", "login:")]
    else:
        ext = re.search(r"ending with (\.\w+)|extension (\.?\w+)", obs.goal)
        suffix = ext and (ext.group(1) or ext.group(2))
        cands = [f for f in files if suffix and f.endswith(suffix if suffix.startswith(".") else "." + suffix)]
    if not cands or not once(mem, "rm"):
        return None
    return Action("type", target=Element(box.pid), text=f"rm {cands[-1]}", enter=True)


@rule("text-editor")
def _editor(obs: Any, mem: dict) -> Any:
    m = re.search(r"give everything the style (\w+)", obs.goal)
    editor = first(els(obs, cls="ql-editor"))
    if not (m and editor) or not once(mem, "e"):
        return None
    word = {"italics": "italic", "italic": "italic", "underlined": "underline", "underline": "underline",
            "bold": "bold"}.get(m.group(1).lower(), m.group(1).lower())
    style = first(els(obs, cls=f"ql-{word}"))
    if style is None:
        return None
    return [click(editor), Action("key", keys=("ctrl", "a")), click(style), click(submit(obs))]


@rule("tic-tac-toe")
def _tic_tac_toe(obs: Any, mem: dict) -> Any:
    cells = sorted([e for e in obs.elements if (e.id or "").startswith("ttt-")], key=lambda e: int(e.id[4:]))
    if len(cells) != 9:
        return None
    board = ["X" if "mark-x" in (e.cls or "") else "O" if "mark-o" in (e.cls or "") else "" for e in cells]
    lines = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
    for who in ("X", "O"):  # win, else block
        for a, b, c in lines:
            trio = [board[a], board[b], board[c]]
            if trio.count(who) == 2 and trio.count("") == 1:
                return click(cells[(a, b, c)[trio.index("")]])
    for i in (4, 0, 2, 6, 8, 1, 3, 5, 7):
        if board[i] == "":
            return click(cells[i])
    return None


_COLORS = {
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0), "black": (0, 0, 0),
    "white": (255, 255, 255), "orange": (255, 165, 0), "purple": (128, 0, 128), "pink": (255, 192, 203),
    "brown": (165, 42, 42), "grey": (128, 128, 128), "gray": (128, 128, 128), "olive": (128, 128, 0),
    "navy": (0, 0, 128), "teal": (0, 128, 128), "aqua": (0, 255, 255), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "fuchsia": (255, 0, 255), "lime": (0, 255, 0), "maroon": (128, 0, 0),
    "silver": (192, 192, 192),
}


def _rgb(css: str | None) -> tuple[int, ...] | None:
    m = re.match(r"rgba?\((\d+), (\d+), (\d+)", css or "")
    return tuple(int(v) for v in m.groups()) if m else None


@rule("click-color")
def _click_color(obs: Any, mem: dict) -> Any:
    m = re.search(r"Click on the (\w+) colored box", obs.goal)
    want = _COLORS.get(m.group(1).lower()) if m else None
    area = first(els(obs, id="area"))
    boxes = [e for e in (descendants(obs, area) if area else []) if "color" in (e.cls or "").split()]
    hit = first([b for b in boxes if _rgb(b.bg) == want])
    return click(hit) if hit and once(mem, "c") else None


@rule("click-shades")
def _shades(obs: Any, mem: dict) -> Any:
    import colorsys

    m = re.search(r"shades of (\w+)", obs.goal)
    if not m or not once(mem, "s"):
        return None
    hues = {"red": 0.0, "yellow": 1 / 6, "green": 1 / 3, "blue": 2 / 3}
    want = hues.get(m.group(1).lower())
    if want is None:
        return None
    out = []
    for e in els(obs, tag="span"):
        rgb = _rgb(e.bg)
        if rgb is None:
            continue
        h, _, s = colorsys.rgb_to_hls(*(v / 255 for v in rgb))
        d = min(abs(h - want), 1 - abs(h - want))
        if s > 0.2 and d < 1 / 12:
            out.append(click(e))
    return out + [click(submit(obs))]
