"""DAG-based task synthesis for our apps: atomic operations with pre- and post-conditions.

Each app (to-do list, inbox, settings form, inventory table, checkout) has a Python model of its state
(the same JSON the page keeps) and a set of atomic operations. An operation has

* a precondition on the model state (``complete "milk"`` needs an open task "milk");
* an effect, applied to the model exactly as the page applies it;
* the state paths it sets (its postcondition), e.g. ``("items", "milk", "done") = True``;
* an instruction template, and a regular expression that reads the template back.

A task is sampled as a walk over operations whose preconditions hold in the state left by the
previous ones, so later operations can depend on earlier ones (``add "milk"`` then ``complete "milk"``;
settings changes then ``save``; anything then ``pay``). Those dependencies are the edges of the task's
DAG (:attr:`SynthTask.edges`): B depends on A when both touch the same entity, or B is a commit
(``save``, ``pay``) that finalises A. The goal is the value of every touched path after all operations,
computed on the model; :func:`check` compares it with the page's real state. Task count and difficulty
scale with the walk length (1–6 here). Our reading of GUI-Owl-1.5's "DAG-based task synthesis" (the
paper's exact construction is not public).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["APPS", "APP_TITLES", "Op", "SynthTask", "check", "initial_state", "parse_instruction", "read_path",
           "render_instruction", "synthesize"]

APPS = ("todo", "inbox", "settings", "table", "checkout")
APP_TITLES = {"todo": "To-do", "inbox": "Inbox", "settings": "Settings", "table": "Inventory",
              "checkout": "Checkout"}
ABSENT = "<absent>"

_TASKS = ["buy milk", "call mom", "pay rent", "book dentist", "water plants", "fix bike", "send invoice",
          "clean garage", "renew passport", "walk dog", "plan trip", "read report", "order paint", "back up photos"]
_PEOPLE = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun"]
_SUBJECTS = ["Lunch on Friday", "Quarterly numbers", "Server outage", "Team photo", "Holiday plans",
             "Invoice 42", "Design review", "Parking permit", "New laptop", "Book club"]
_REPLIES = ["Sounds good", "Thanks!", "I will be there", "Please resend", "Approved", "Let me check"]
_GOODS = ["bolts", "nuts", "washers", "hinges", "screws", "nails", "brackets", "clamps", "rivets", "springs"]
_SHOP = [("Coffee beans", 12), ("Tea box", 8), ("Mug", 6), ("Kettle", 30), ("Filter papers", 4), ("Grinder", 45)]
_NAMES = ["Sam Lee", "Ana Ruiz", "Kim Park", "Tom Berg", "Ida Nilsen"]
_EMAILS = ["sam@example.org", "ana@example.org", "kim@example.org", "tom@example.org", "ida@example.org"]


def initial_state(app: str, rng: random.Random) -> dict[str, Any]:
    """A seeded starting state of ``app`` (the JSON its page keeps)."""
    if app == "todo":
        texts = rng.sample(_TASKS[:10], rng.randint(3, 5))
        return {"items": [{"text": t, "done": rng.random() < 0.3} for t in texts]}
    if app == "inbox":
        subjects = rng.sample(_SUBJECTS, rng.randint(3, 5))
        return {"messages": [{"from": rng.choice(_PEOPLE), "subject": s, "body": f"About {s.lower()}.",
                              "starred": rng.random() < 0.25, "archived": False, "read": False, "replies": []}
                             for s in subjects]}
    if app == "settings":
        return {"saved": {"name": rng.choice(_NAMES), "email": rng.choice(_EMAILS),
                          "notifications": rng.random() < 0.5, "theme": rng.choice(["Light", "Dark", "System"]),
                          "language": rng.choice(["English", "French", "German", "Spanish"])}}
    if app == "table":
        names = rng.sample(_GOODS[:7], rng.randint(3, 5))
        return {"rows": [{"name": n, "qty": rng.randint(1, 20), "price": rng.randint(1, 9)} for n in names],
                "sort": "none"}
    if app == "checkout":
        goods = rng.sample(_SHOP, rng.randint(2, 4))
        return {"cart": [{"name": n, "qty": rng.randint(1, 3), "price": p} for n, p in goods], "coupon": None,
                "coupons": {"SAVE10": 10, "HALF": 50}, "shipping": "standard", "paid": False, "locked": False}
    raise ConfigError(f"`app` must be one of {list(APPS)}, got {app!r}")


def _find(rows: list[dict], key: str, value: Any) -> dict | None:
    return next((r for r in rows if r[key] == value), None)


def read_path(app: str, state: dict, path: tuple) -> Any:
    """The value at a goal path (``(collection, key, field)``; field None asks whether the entity exists)."""
    coll, key, fld = path
    if app == "settings" and coll == "saved":
        return state.get("saved", {}).get(fld, ABSENT)
    if key is None:
        return state.get(coll, ABSENT)
    natural = {"items": "text", "messages": "subject", "rows": "name", "cart": "name"}[coll]
    row = _find(state.get(coll, []), natural, key)
    if fld is None:
        return row is not None
    return ABSENT if row is None else row.get(fld, ABSENT)


@dataclass(frozen=True)
class Op:
    """One atomic operation: ``kind`` (``todo.add``) and its arguments."""

    kind: str
    args: tuple = ()

    @property
    def app(self) -> str:
        """The app it belongs to."""
        return self.kind.split(".", 1)[0]

    @property
    def spec(self) -> _Spec:
        """Its definition."""
        return SPECS[self.kind]

    def text(self) -> str:
        """The instruction clause."""
        return self.spec.template.format(*self.args)


@dataclass(frozen=True)
class _Spec:
    template: str  # str.format template with the arguments in order
    pre: Callable[[dict, tuple], bool]
    apply: Callable[[dict, tuple], None]
    touches: Callable[[tuple], list[tuple]]
    candidates: Callable[[dict, random.Random], list[tuple]]
    parse: tuple[Callable[[str], Any], ...] = ()  # argument converters (default: strings)
    commit: bool = False  # finalises everything before it (save, pay)


def _items(s: dict) -> list[dict]:
    return s["items"]


def _msg(s: dict, subj: str) -> dict | None:
    return _find(s["messages"], "subject", subj)


def _row(s: dict, name: str) -> dict | None:
    return _find(s["rows"], "name", name)


def _cart(s: dict, name: str) -> dict | None:
    return _find(s["cart"], "name", name)


def _live_settings(s: dict) -> dict:
    return s.setdefault("draft", copy.deepcopy(s["saved"]))


def _set_draft(fld: str) -> Callable[[dict, tuple], None]:
    def apply(s: dict, a: tuple) -> None:
        _live_settings(s)[fld] = a[0] if fld != "notifications" else a[0] == "on"
    return apply


def _draft_differs(fld: str) -> Callable[[dict, tuple], bool]:
    def pre(s: dict, a: tuple) -> bool:
        v = a[0] if fld != "notifications" else a[0] == "on"
        return _live_settings(s)[fld] != v
    return pre


def _save(s: dict, a: tuple) -> None:
    s["saved"] = copy.deepcopy(_live_settings(s))


_FIELDS = {"name": _NAMES, "email": _EMAILS, "theme": ["Light", "Dark", "System"],
           "language": ["English", "French", "German", "Spanish"], "notifications": ["on", "off"]}

SPECS: dict[str, _Spec] = {
    # to-do list
    "todo.add": _Spec('add the task "{}"', lambda s, a: _find(_items(s), "text", a[0]) is None,
                      lambda s, a: _items(s).append({"text": a[0], "done": False}),
                      lambda a: [("items", a[0], None), ("items", a[0], "done")],
                      lambda s, r: [(t,) for t in _TASKS if _find(_items(s), "text", t) is None]),
    "todo.complete": _Spec('mark "{}" as done', lambda s, a: (it := _find(_items(s), "text", a[0])) is not None
                           and not it["done"], lambda s, a: _find(_items(s), "text", a[0]).update(done=True),
                           lambda a: [("items", a[0], "done")],
                           lambda s, r: [(it["text"],) for it in _items(s) if not it["done"]]),
    "todo.reopen": _Spec('mark "{}" as not done', lambda s, a: (it := _find(_items(s), "text", a[0])) is not None
                         and it["done"], lambda s, a: _find(_items(s), "text", a[0]).update(done=False),
                         lambda a: [("items", a[0], "done")],
                         lambda s, r: [(it["text"],) for it in _items(s) if it["done"]]),
    "todo.delete": _Spec('delete the task "{}"', lambda s, a: _find(_items(s), "text", a[0]) is not None,
                         lambda s, a: _items(s).remove(_find(_items(s), "text", a[0])),
                         lambda a: [("items", a[0], None)], lambda s, r: [(it["text"],) for it in _items(s)]),
    # inbox
    "inbox.star": _Spec('star the message "{}"', lambda s, a: (m := _msg(s, a[0])) is not None and not m["starred"]
                        and not m["archived"], lambda s, a: _msg(s, a[0]).update(starred=True),
                        lambda a: [("messages", a[0], "starred")],
                        lambda s, r: [(m["subject"],) for m in s["messages"] if not m["starred"] and not m["archived"]]),
    "inbox.unstar": _Spec('unstar the message "{}"', lambda s, a: (m := _msg(s, a[0])) is not None and m["starred"]
                          and not m["archived"], lambda s, a: _msg(s, a[0]).update(starred=False),
                          lambda a: [("messages", a[0], "starred")],
                          lambda s, r: [(m["subject"],) for m in s["messages"] if m["starred"] and not m["archived"]]),
    "inbox.archive": _Spec('archive the message "{}"', lambda s, a: (m := _msg(s, a[0])) is not None
                           and not m["archived"], lambda s, a: _msg(s, a[0]).update(archived=True),
                           lambda a: [("messages", a[0], "archived")],
                           lambda s, r: [(m["subject"],) for m in s["messages"] if not m["archived"]]),
    "inbox.reply": _Spec('reply "{1}" to the message "{0}"', lambda s, a: (m := _msg(s, a[0])) is not None
                         and not m["archived"] and not m["replies"],
                         lambda s, a: _msg(s, a[0])["replies"].append(a[1]),
                         lambda a: [("messages", a[0], "replies")],
                         lambda s, r: [(m["subject"], r.choice(_REPLIES)) for m in s["messages"]
                                       if not m["archived"] and not m["replies"]]),
    # settings (changes reach the saved state only through save)
    "settings.name": _Spec('change the display name to "{}"', _draft_differs("name"), _set_draft("name"),
                           lambda a: [], lambda s, r: [(v,) for v in _NAMES]),
    "settings.email": _Spec('change the email to "{}"', _draft_differs("email"), _set_draft("email"),
                            lambda a: [], lambda s, r: [(v,) for v in _EMAILS]),
    "settings.notifications": _Spec("turn {} email notifications", _draft_differs("notifications"),
                                    _set_draft("notifications"), lambda a: [],
                                    lambda s, r: [("on",), ("off",)]),
    "settings.theme": _Spec("set the theme to {}", _draft_differs("theme"), _set_draft("theme"), lambda a: [],
                            lambda s, r: [(v,) for v in _FIELDS["theme"]]),
    "settings.language": _Spec("set the language to {}", _draft_differs("language"), _set_draft("language"),
                               lambda a: [], lambda s, r: [(v,) for v in _FIELDS["language"]]),
    "settings.save": _Spec("save the settings", lambda s, a: _live_settings(s) != s["saved"], _save,
                           lambda a: [("saved", None, f) for f in _FIELDS], lambda s, r: [()], commit=True),
    # inventory table
    "table.qty": _Spec('set the quantity of "{}" to {}', lambda s, a: (w := _row(s, a[0])) is not None
                       and w["qty"] != a[1], lambda s, a: _row(s, a[0]).update(qty=a[1]),
                       lambda a: [("rows", a[0], "qty")],
                       lambda s, r: [(w["name"], r.randint(1, 50)) for w in s["rows"]], parse=(str, int)),
    "table.price": _Spec('set the price of "{}" to {}', lambda s, a: (w := _row(s, a[0])) is not None
                         and w["price"] != a[1], lambda s, a: _row(s, a[0]).update(price=a[1]),
                         lambda a: [("rows", a[0], "price")],
                         lambda s, r: [(w["name"], r.randint(1, 20)) for w in s["rows"]], parse=(str, int)),
    "table.add": _Spec('add a row "{}"', lambda s, a: _row(s, a[0]) is None,
                       lambda s, a: s["rows"].append({"name": a[0], "qty": 0, "price": 0}),
                       lambda a: [("rows", a[0], None), ("rows", a[0], "qty"), ("rows", a[0], "price")],
                       lambda s, r: [(n,) for n in _GOODS if _row(s, n) is None]),
    "table.delete": _Spec('delete the row "{}"', lambda s, a: _row(s, a[0]) is not None,
                          lambda s, a: s["rows"].remove(_row(s, a[0])), lambda a: [("rows", a[0], None)],
                          lambda s, r: [(w["name"],) for w in s["rows"]]),
    "table.sort": _Spec("sort the table by {}", lambda s, a: s["sort"] != a[0],
                        lambda s, a: s.update(sort=a[0]), lambda a: [("sort", None, None)],
                        lambda s, r: [(c,) for c in ("name", "qty", "price")]),
    # checkout (pay is irreversible and ends the task)
    "checkout.qty": _Spec('change the quantity of "{}" to {}', lambda s, a: (c := _cart(s, a[0])) is not None
                          and c["qty"] != a[1] and not s["paid"], lambda s, a: _cart(s, a[0]).update(qty=a[1]),
                          lambda a: [("cart", a[0], "qty")],
                          lambda s, r: [(c["name"], r.randint(1, 5)) for c in s["cart"]], parse=(str, int)),
    "checkout.remove": _Spec('remove "{}" from the cart', lambda s, a: _cart(s, a[0]) is not None
                             and len(s["cart"]) > 1 and not s["paid"],
                             lambda s, a: s["cart"].remove(_cart(s, a[0])), lambda a: [("cart", a[0], None)],
                             lambda s, r: [(c["name"],) for c in s["cart"]]),
    "checkout.coupon": _Spec("apply the coupon {}", lambda s, a: s["coupon"] is None and not s["paid"],
                             lambda s, a: s.update(coupon=a[0]), lambda a: [("coupon", None, None)],
                             lambda s, r: [("SAVE10",), ("HALF",)]),
    "checkout.shipping": _Spec("choose {} shipping", lambda s, a: s["shipping"] != a[0] and not s["paid"],
                               lambda s, a: s.update(shipping=a[0]), lambda a: [("shipping", None, None)],
                               lambda s, r: [(o,) for o in ("standard", "express", "pickup")]),
    "checkout.pay": _Spec("pay for the order", lambda s, a: bool(s["cart"]) and not s["paid"],
                          lambda s, a: s.update(paid=True, locked=True), lambda a: [("paid", None, None)],
                          lambda s, r: [()], commit=True),
}


@dataclass
class SynthTask:
    """A synthesized task: the app, the starting state, the operations, their DAG and the goal."""

    app: str
    state: dict
    ops: list[Op]
    edges: list[tuple[int, int]] = field(default_factory=list)  # (i, j): op j depends on op i
    goal: dict = field(default_factory=dict)  # {"app": ..., "expect": [[path, value], ...]}

    @property
    def instruction(self) -> str:
        """The instruction a person (or an agent) reads."""
        return render_instruction(self.app, self.ops)


def render_instruction(app: str, ops: list[Op]) -> str:
    """``In the <App> app, <op 1>, then <op 2>, ... .``"""
    return f"In the {APP_TITLES[app]} app, " + ", then ".join(op.text() for op in ops) + "."


def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{\d*\})", template)
    out = []
    for p in parts:
        if re.fullmatch(r"\{\d*\}", p):
            out.append(r"(.+?)")
        else:
            out.append(re.escape(p))
    return re.compile("".join(out) + "$")


_REGEX = {kind: _template_regex(spec.template) for kind, spec in SPECS.items()}


def parse_instruction(text: str) -> tuple[str, list[Op]]:
    """Read an instruction written by :func:`render_instruction` back into (app, operations).

    Raises:
        ConfigError: the text does not follow the grammar.
    """
    m = re.match(r"In the (.+?) app, (.*)\.$", text.strip())
    titles = {v: k for k, v in APP_TITLES.items()}
    if not m or m.group(1) not in titles:
        raise ConfigError(f"not an app instruction: {text!r}")
    app = titles[m.group(1)]
    ops = []
    for clause in m.group(2).split(", then "):
        for kind, rx in _REGEX.items():
            if not kind.startswith(app + "."):
                continue
            hit = rx.match(clause)
            if hit:
                spec = SPECS[kind]
                groups = hit.groups()
                if "{1}" in spec.template:  # arguments written out of order
                    order = [int(i) for i in re.findall(r"\{(\d)\}", spec.template)]
                    groups = tuple(g for _, g in sorted(zip(order, groups, strict=True)))
                conv = spec.parse or (str,) * len(groups)
                ops.append(Op(kind, tuple(c(g) for c, g in zip(conv, groups, strict=True))))
                break
        else:
            raise ConfigError(f"cannot read the step {clause!r} of {app}")
    return app, ops


def synthesize(app: str, length: int, rng: random.Random, state: dict | None = None) -> SynthTask:
    """Sample a task of ``length`` operations on ``app`` (see the module docstring)."""
    if not 1 <= length <= 10:
        raise ConfigError(f"`length` must be in [1, 10], got {length}")
    start = state if state is not None else initial_state(app, rng)
    for _ in range(20):  # a walk can run out of possible steps early; try again
        ops = _walk(app, length, rng, start)
        if len(ops) == length:
            break
    else:
        raise ConfigError(f"could not synthesize a {app} task of length {length} from this state")
    task = SynthTask(app, start, ops)
    task.edges = [(a, b) for b in range(len(ops)) for a in range(b) if _depends(ops[a:a + 1], ops[b])]
    task.goal = goal_of(app, start, ops)
    return task


def _walk(app: str, length: int, rng: random.Random, start: dict) -> list[Op]:
    model = copy.deepcopy(start)
    ops: list[Op] = []
    touched: set[tuple] = set()
    kinds = [k for k in SPECS if k.startswith(app + ".")]
    for i in range(length):
        last = i == length - 1
        options = []
        for kind in kinds:
            spec = SPECS[kind]
            if spec.commit and not last:
                continue  # save and pay come once, at the end
            if app == "settings" and last and not spec.commit:
                continue
            if app == "settings" and any(o.kind == kind for o in ops):
                continue
            for args in spec.candidates(model, rng):
                if spec.pre(model, args) and not _undoes(app, start, model, touched, Op(kind, args)):
                    options.append(Op(kind, args))
        if not options:
            break
        # prefer steps that build on earlier ones (longer dependency chains)
        dependent = [o for o in options if ops and _depends(ops, o)]
        op = rng.choice(dependent if dependent and rng.random() < 0.5 else options)
        op.spec.apply(model, op.args)
        ops.append(op)
        touched.update(op.spec.touches(op.args))
    return ops


def _undoes(app: str, start: dict, model: dict, touched: set, op: Op) -> bool:
    """Whether ``op`` would put a path an earlier step changed back to its starting value."""
    after = copy.deepcopy(model)
    op.spec.apply(after, op.args)
    return any(p in touched and read_path(app, after, p) == read_path(app, start, p)
               for p in op.spec.touches(op.args))


def _entity_args(op: Op) -> set:
    return {(p[0], p[1]) for p in op.spec.touches(op.args)} | ({("args", op.args[0])} if op.args else set())


def _depends(before: list[Op], op: Op) -> bool:
    if op.spec.commit:
        return True
    mine = _entity_args(op)
    return any(mine & _entity_args(b) for b in before)


def goal_of(app: str, start: dict, ops: list[Op]) -> dict:
    """The values of every path the operations touch, after applying them to ``start``."""
    model = copy.deepcopy(start)
    paths: list[tuple] = []
    for op in ops:
        if not op.spec.pre(model, op.args):
            raise ConfigError(f"step {op.text()!r} is not possible in the state before it")
        op.spec.apply(model, op.args)
        for p in op.spec.touches(op.args):
            if p not in paths:
                paths.append(p)
    if app == "checkout" and ("paid", None, None) not in paths:
        paths.append(("paid", None, None))  # never pay unless told to
    return {"app": app, "expect": [[list(p), read_path(app, model, p)] for p in paths]}


def check(goal: dict, state: dict | None) -> bool:
    """The oracle: does the app's real ``state`` hold every expected value of ``goal``?"""
    if not state:
        return False
    app = goal["app"]
    return all(read_path(app, state, tuple(p)) == v for p, v in goal["expect"])
