"""MiniWoB++ rules that read values off the page and work small apps inside it (e-mail, social media,
terminal, editor, tic-tac-toe, colours)."""

from __future__ import annotations

import re
from typing import Any

from parsimon.gui.actions import Action, Element
from parsimon.gui.policies.miniwob.common import (
    ORDINALS,
    Rule,
    click,
    descendants,
    els,
    first,
    once,
    quoted,
    registrar,
    submit,
    type_into,
)

__all__ = ["RULES"]

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

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
    n = ORDINALS.get(m.group(1), 0)
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

