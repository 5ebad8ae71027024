"""MiniWoB++ rules for clicking what the instruction names and for filling forms."""

from __future__ import annotations

import itertools
import re
from typing import Any

from parsimon.gui.actions import Action, Element
from parsimon.gui.policies.miniwob.common import (
    ORDINALS,
    Rule,
    button,
    checkbox_for,
    children,
    click,
    els,
    first,
    once,
    quoted,
    registrar,
    submit,
    textboxes,
    type_into,
)

__all__ = ["RULES"]

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

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
    n = ORDINALS.get(m.group(1).lower())
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
    r, t = ORDINALS.get(m.group(1), 0), ORDINALS.get(m.group(3), 0)
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


