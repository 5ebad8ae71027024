"""A value function learned from outcomes: how likely a candidate action leads to a solved task.

The search scores each candidate with :class:`ValueFunction` (or the policy as judge). Its features
come in three groups, one per search mode (CUWM's none / text / image, and both):

* **action** (every mode): the proposal's score and rank, the verb, the target (checkbox, field,
  button, link; checked; irreversible), how the target's text overlaps the instruction and where the
  instruction first mentions it, whether typed text goes into the field the instruction names before
  it, whether the target is (or is not) the element the instruction counts to ("the 2nd radio
  button": :func:`ordinals`), whether it acts on the earliest thing the instruction mentions that the
  episode has not acted on yet, or on a later one (:func:`order_features`: "click ONE, then TWO"),
  whether the action was already taken (the very action, and the same verb on an element of the same
  tag and label, which finds it again on a page drawn anew: :class:`Trail`), how many steps have passed;
* **state** (every mode): how far the page is from the instruction (:func:`state_features`): the
  current page in modes ``none`` and ``render``, the imagined page after the candidate in the ``text``
  modes;
* **text** (``text`` modes): the imagined delta read against the instruction: does it check a box the
  instruction names or one it does not, uncheck one it names, type a string the instruction quotes,
  reveal (expand, show, select) or add text the instruction mentions, navigate or remove elements,
  change nothing; the world model's confidence; and whether the imagined page is one the episode
  has already been on (:func:`page_signature`: a step that leads back);
* **render** (``render`` modes): the imagined screenshot against the current one: the share of pixels
  that change in the task area, and how much of the change falls on elements whose text the
  instruction mentions, plus the render's confidence flags.

It is fit on the transition store, each step labelled by its episode's outcome: a step is positive when
its episode ended solved and the step really changed the page or itself solved the task
(``progress-nostop``: a click that changed nothing or only moved the focus is not credited even in a
solved episode, nor is stopping; ``progress`` credits a stop that ended the episode solved;
``progress-named``, the default: ``progress-nostop``, but a click that changed nothing visible is credited
when the instruction names its target, as in "click button ONE, then button TWO"), or every step of a
solved episode (``episode``), see :func:`step_labels`. Training uses the *true* next states (and real
screenshots), prediction the imagined ones, so a better world model gives the value function inputs
closer to what it learned from. One gradient boosting classifier (scikit-learn) per mode, constrained
to never score a candidate higher for repeating an action or for leading back to a page already seen
(without that, solved episodes that go back to the list before stopping taught it that going back and
opening the message again is progress, and a searched episode went round in circles), and, in the text
modes, for an imagined page that leaves more text fields empty (it clicked Submit with one of two
password fields filled: the store has few episodes that submit a form half filled).

Beside them it fits a **done model** (:meth:`ValueFunction.done`): the chance that the task is done now,
from the current page against the instruction and what the episode did so far (:func:`done_features`).
Its labels are the environment's own, where it logged whether the task stood solved after each step
(:func:`solved_now`; our apps do), else the states where a solved episode stopped against every other
state. The search's ``stop="done"`` scores a stop with it; by default a stop is scored like any other
candidate and, never credited as progress, loses to any candidate above the margin, so a searched
episode that has finished its task can go on (ticking the item it has just added) until the step
limit; the search's done check (``SearchConfig.done_check``) stops it once the done model reads the task
as done, best with a done model that also learned from the search's own episodes (``done_transitions``
of :meth:`ValueFunction.fit`).
"""

from __future__ import annotations

import os
import pickle
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.world_model.base import target_element
from parsimon.gui.world_model.delta import (
    AddNode,
    Delta,
    Navigate,
    PageState,
    RemoveNode,
    SetAttr,
    SetChecked,
    SetFocus,
    SetText,
    SetValue,
    apply,
)
from parsimon.gui.world_model.dom import Node, parse, text_content

__all__ = ["LABELS", "MODES", "Trail", "ValueFunction", "action_signature", "default_value_path", "done_features",
           "goal_words", "page_signature", "step_labels", "value_features"]

MODES = ("none", "text", "render", "text+render")
LABELS = ("episode", "progress", "progress-nostop", "progress-named")
FORMAT = "parsimon.gui.world_model.value/5"  # 2: the ordinal features; 3: the trail features; 4: the done model;
# 5: the order features (the action group is two wider, so earlier files cannot score its rows)
_STOP = frozenset("a an the to of and or in on at into for with by from then this that is as be it its your you "
                  "please click select enter type press hit button field text box".split())
_SUBMIT = frozenset({"submit", "search", "login", "log in", "ok", "save", "send", "done", "go", "next", "apply",
                     "pay now", "send reply", "reply", "forward", "delete", "archive", "add"})
_REVEAL = ("aria-expanded", "aria-hidden", "aria-selected", "hidden", "style", "class", "open")


def default_value_path() -> Path:
    """``$PARSIMON_HOME/gui/world_model/value.pkl``."""
    from parsimon.paths import home

    return home() / "gui" / "world_model" / "value.pkl"


def goal_words(goal: str) -> set[str]:
    """The instruction's content words (lower case, stop words removed)."""
    return {w for w in re.findall(r"[a-z0-9@#.$]+", goal.lower().replace("'", "")) if w not in _STOP}


def _quoted(goal: str) -> list[str]:
    found = re.findall(r'"([^"]+)"', goal) or re.findall(r"\b\d+\b", goal)
    return list(dict.fromkeys(found))


def _overlap(text: str, words: set[str]) -> int:
    return len(goal_words(text) & words)


def _label(node: Node | None) -> str:
    if node is None:
        return ""
    if node.tag == "input" and node.parent is not None and node.parent.tag == "label":
        return text_content(node.parent)
    return text_content(node) or node.get("aria-label") or node.get("value") or ""


_ORDINAL = re.compile(r"\b(?:(\d+)(?:st|nd|rd|th)|(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|"
                      r"tenth))\b((?:\s+[a-z-]+){1,3})")
_ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
# the element kinds an instruction counts ("the 2nd radio button"), by the words that name them, in the
# order they are tried ("radio button" is a radio, not a button)
_KIND_WORDS = (("radio", ("radio",)), ("checkbox", ("checkbox", "check")), ("text", ("textbox", "text", "input", "field")),
               ("button", ("button",)), ("link", ("link",)))


def _kind(el: Any) -> str | None:
    """Which countable kind an element is (see :data:`_KIND_WORDS`), or None."""
    typ = (el.type or "").lower()
    if typ in ("radio", "checkbox"):
        return typ
    if el.tag == "textarea" or (el.tag == "input" and typ not in ("submit", "button", "reset", "hidden", "image")):
        return "text"
    if el.tag == "button" or typ in ("submit", "button"):
        return "button"
    return "link" if el.tag == "a" else None


def ordinals(goal: str) -> dict[str, set[int]]:
    """The positions the instruction names per element kind: "the 2nd radio button" → ``{"radio": {2}}``."""
    out: dict[str, set[int]] = {}
    for m in _ORDINAL.finditer(goal.lower()):
        n = int(m.group(1)) if m.group(1) else _ORDINAL_WORDS.index(m.group(2)) + 1
        after = m.group(3).split()
        kind = next((k for k, names in _KIND_WORDS if any(w.startswith(names) for w in after)), None)
        if kind is not None:
            out.setdefault(kind, set()).add(n)
    return out


def ordinal_features(obs: Any, el: Any) -> list[float]:
    """Whether the target is, or is not, the element the instruction counts to ("the 3rd textbox"): its
    position among the page's visible elements of its kind against the positions the instruction names."""
    kind = _kind(el) if el is not None else None
    want = ordinals(obs.goal).get(kind) if kind is not None else None
    if not want:
        return [0.0, 0.0]
    same = [e.pid for e in obs.elements if e.visible and _kind(e) == kind]
    pos = same.index(el.pid) + 1 if el.pid in same else 0
    return [float(pos in want), float(pos not in want)]


def mention_at(goal: str, text: str | None) -> int:
    """Where ``goal`` first mentions ``text`` as whole words (case aside), -1 where it does not (or
    ``text`` is empty, a single character or a stop word)."""
    t = " ".join((text or "").lower().split())
    if len(t) < 2 or t in _STOP:
        return -1
    m = re.search(r"(?<![a-z0-9])" + re.escape(t) + r"(?![a-z0-9])", " ".join(goal.lower().split()))
    return m.start() if m else -1


def acted_on(obs: Any, action: Action) -> str:
    """What an action names: the text it types, the option it selects, else its target's label."""
    if action.kind == "type":
        return action.text or ""
    if action.kind == "select":
        return action.option or ""
    el = target_element(obs, action)
    return (el.label if el is not None else "") or ""


def mentions(obs: Any) -> frozenset[int]:
    """Where the instruction mentions something the page offers to act on: a visible control's label, a
    list's option, a quoted string (something to type)."""
    goal = obs.goal
    texts = re.findall(r'"([^"]+)"', goal)
    for e in obs.elements:
        if e.visible and e.interactive:
            texts.append(e.label)
            texts += list(e.options or ())
    return frozenset(at for at in (mention_at(goal, t) for t in dict.fromkeys(texts)) if at >= 0)


def order_features(obs: Any, action: Action, trail: Trail | None) -> list[float]:
    """Whether the action acts on the earliest thing the instruction mentions that the episode has not
    acted on yet ("click ONE, then TWO"; "choose 5ft 9in, then click No"), or on a later one."""
    at = mention_at(obs.goal, acted_on(obs, action))
    if at < 0:
        return [0.0, 0.0]
    if trail is None:
        todo = mentions(obs)
    else:  # the page's mentions as the trail saw them (a search scores each candidate on the same page)
        todo = (trail.page_mentions if trail.seen is obs else mentions(obs)) - trail.mentions
    first = min(todo, default=-1)
    return [float(at == first), float(first >= 0 and at > first)]


def page_signature(state: PageState) -> int:
    """A hash of what the page shows, equal for the same page drawn again: the URL and the body's tags,
    attributes and text, without ``data-*`` attributes (element ids change when a script draws a list
    again) and with ``style`` and ``class`` written canonically."""
    from parsimon.gui.world_model.delta import canonical_class, canonical_style

    body = parse(state.html).body
    parts: list[Any] = [state.url]
    for n in body.walk() if body is not None else []:
        attrs = tuple(sorted((k, canonical_style(v) if k == "style" else canonical_class(v) if k == "class" else v)
                             for k, v in n.attrs if not k.startswith("data-")))
        parts.append((n.tag, attrs, tuple(c.strip() for c in n.children if isinstance(c, str) and c.strip())))
    return hash(tuple(parts))


def action_signature(obs: Any, action: Action) -> tuple:
    """An action without element ids: its verb, arguments and the target's tag and label."""
    el = target_element(obs, action)
    args = {k: v for k, v in action.to_dict().items() if k != "target"}
    return (tuple(sorted((k, str(v)) for k, v in args.items())),
            (el.tag, (el.label or "").strip().lower()[:80]) if el is not None else str(action.target))


@dataclass
class Trail:
    """What an episode did so far, as the value function reads it: the pages it was on (the current one
    included) and the actions it took, both by :func:`page_signature` and :func:`action_signature`, so that a
    page drawn again, with new element ids, is still recognised. A search records each observation with
    :meth:`see` before scoring and the chosen action with :meth:`took`."""

    pages: set[int] = field(default_factory=set)
    actions: set[tuple] = field(default_factory=set)
    mentions: set[int] = field(default_factory=set)  # where the instruction mentions what the actions acted on
    first: int | None = None  # the first page's signature
    current: int | None = None  # the latest page's signature
    last: tuple | None = None  # the latest action's signature
    seen: Any = field(default=None, repr=False, compare=False)  # the latest observation
    page_mentions: frozenset[int] = frozenset()  # its :func:`mentions`

    def see(self, obs: Any) -> None:
        """Record the page of ``obs``."""
        self.seen, self.page_mentions = obs, mentions(obs)
        self.current = page_signature(PageState.from_observation(obs))
        self.first = self.current if self.first is None else self.first
        self.pages.add(self.current)

    def took(self, obs: Any, action: Action) -> None:
        """Record ``action``, taken on ``obs``."""
        self.last = action_signature(obs, action)
        self.actions.add(self.last)
        at = mention_at(obs.goal, acted_on(obs, action)) if action.kind != "type" else -1
        if at >= 0:  # text to type stays to do: an instruction may want it in more than one field
            self.mentions.add(at)


def action_features(obs: Any, action: Action, score: float, rank: int, k: int, history: list[Action],
                    trail: Trail | None = None) -> list[float]:
    """The action group (see the module docstring)."""
    words = goal_words(obs.goal)
    el = target_element(obs, action)
    label = (el.label if el is not None else "") or ""
    quoted = [q.lower() for q in _quoted(obs.goal)]
    typ = (el.type or "") if el is not None else ""
    kind = action.kind
    low = obs.goal.lower()
    # where the instruction first mentions the target (earlier mentions are usually done first)
    pos = low.find(label.strip().lower()) if label.strip() else -1
    mention = pos / max(len(low), 1) if pos >= 0 else 1.0
    # typing a quoted string into the field the instruction names just before that string
    field_match = 0.0
    if kind == "type" and action.text and el is not None:
        at = low.find(action.text.lower())
        before = goal_words(low[max(0, at - 40): at]) if at >= 0 else set()
        field_words = goal_words(" ".join(x for x in (el.name, el.id or "", el.label) if x))
        field_match = float(bool(before & field_words))
    return [max(-5.0, min(10.0, score)), rank / max(k, 1), float(rank == 0), mention, field_match,
            float(kind in ("click", "double_click", "long_press")), float(kind == "type"), float(kind == "select"),
            float(kind == "terminate"), float(kind not in ("click", "double_click", "long_press", "type", "select",
                                                           "terminate")),
            float(typ in ("checkbox", "radio")), float(el is not None and el.tag in ("input", "textarea")
                                                       and typ not in ("checkbox", "radio", "submit", "button")),
            float(el is not None and (el.tag == "button" or typ in ("submit", "button"))),
            float(el is not None and el.tag == "a"), float(bool(el is not None and el.checked)),
            float(bool(el is not None and el.irreversible)), float(label.strip().lower() in _SUBMIT),
            float(_overlap(label, words)), float(bool(label) and label.strip().lower() in quoted),
            float(bool(action.text) and action.text.lower() in [q.lower() for q in quoted]),
            float(action in history), min(len(history), 10) / 10.0, *ordinal_features(obs, el),
            *order_features(obs, action, trail), float(trail is not None and action_signature(obs, action) in trail.actions)]


def _mentioned(node: Node | None, goal: str, words: set[str]) -> bool:
    label = _label(node).strip()
    return bool(label) and (label.lower() in goal.lower() or _overlap(label, words) > 0)


def text_features(before: PageState, delta: Delta, goal: str, confidence: float) -> list[float]:
    """The text group: the imagined delta read against the instruction."""
    words = goal_words(goal)
    quoted = [q.lower() for q in _quoted(goal)]
    index = before.doc().index()
    f = dict.fromkeys(("noop", "n_ops", "check_named", "check_other", "uncheck_named", "uncheck_other",
                       "value_quoted", "value_other", "reveal_named", "reveal_other", "text_named", "text_other",
                       "navigate", "replace", "remove", "focus_field"), 0.0)
    real = [op for op in delta.ops if not isinstance(op, SetFocus)]
    f["noop"] = float(not real)
    f["n_ops"] = min(len(real), 10) / 10.0
    for op in delta.ops:
        if isinstance(op, SetChecked):
            named = _mentioned(index.get(op.pid), goal, words)
            f[("check_" if op.checked else "uncheck_") + ("named" if named else "other")] += 1
        elif isinstance(op, SetValue):
            f["value_quoted" if op.value.strip().lower() in quoted or (op.value and _overlap(op.value, words))
              else "value_other"] += 1
        elif isinstance(op, SetAttr) and op.name in _REVEAL:
            node = index.get(op.pid)
            text = text_content(node) if node is not None else ""
            if node is not None and node.parent is not None and not text:
                text = text_content(node.parent)
            f["reveal_named" if _overlap(text, words) else "reveal_other"] += 1
        elif isinstance(op, (SetText, AddNode)):
            text = op.text if isinstance(op, SetText) else " ".join(op.key()[2:])
            f["text_named" if _overlap(text, words) else "text_other"] += 1
        elif isinstance(op, Navigate):
            f["replace" if op.html is not None else "navigate"] += 1
        elif isinstance(op, RemoveNode):
            f["remove"] += 1
        elif isinstance(op, SetFocus) and op.pid is not None:
            node = index.get(op.pid)
            f["focus_field"] = float(node is not None and node.tag in ("input", "textarea", "select"))
    out = [min(v, 5.0) for v in f.values()]
    return out + [float(confidence)]


def render_features(obs: Any, image: bytes | None, flags: tuple[str, ...]) -> list[float]:
    """The render group: the imagined screenshot against the current one."""
    import numpy as np

    from parsimon.gui.world_model.render import task_box
    from parsimon.gui.world_model.store import png_array

    if image is None or not obs.screenshot:
        return [0.0, 0.0, 0.0, 1.0, float(len(flags))]
    a, b = png_array(obs.screenshot), png_array(image)
    if a.shape != b.shape:
        return [1.0, 0.0, 0.0, 0.0, float(len(flags))]
    changed = np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 16
    sx, sy = a.shape[1] / max(obs.size[0], 1), a.shape[0] / max(obs.size[1], 1)
    box = task_box(obs)
    if box is not None:
        x, y, w, h = (int(v) for v in (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
        area = changed[max(y, 0): y + h, max(x, 0): x + w]
    else:
        area = changed
    frac = float(area.mean()) if area.size else 0.0
    words = goal_words(obs.goal)
    named = np.zeros_like(changed)
    for e in obs.elements:
        if e.visible and _overlap(e.label, words):
            x, y, w, h = e.bbox
            named[max(int(y * sy), 0): int((y + h) * sy), max(int(x * sx), 0): int((x + w) * sx)] = True
    on_named = float((changed & named).sum() / max(changed.sum(), 1))
    return [min(frac * 10, 1.0), on_named, float(changed.sum() == 0), 0.0, float(len(flags))]


GOAL_VERBS = (("add", "create", "new"), ("delete", "remove"), ("mark", "complete", "done", "check", "tick"),
              ("uncheck", "untick"), ("star",), ("archive",), ("reply", "send", "forward"),
              ("set", "change", "switch", "select", "choose"), ("type", "enter", "fill"), ("submit",), ("pay",),
              ("save",), ("sort",), ("clear",), ("click",), ("expand", "open", "tab"))


def state_features(state: PageState, goal: str) -> list[float]:
    """The state group: how far the page (current, or imagined after the candidate) is from the instruction.

    The instruction's quoted strings found in the page's text and in its fields, checkboxes the
    instruction names that are checked or not, checked ones it does not name, empty text fields, and
    which GUI verbs it uses (add, delete, mark, star, reply, pay, ...).
    """
    doc = parse(state.html)
    body = doc.body
    words = goal_words(goal)
    quoted = [q.lower() for q in _quoted(goal)]
    texts, fields = [], []
    named_on = named_off = other_on = empty = 0
    for n in body.walk() if body is not None else []:
        if n.tag in ("script", "style"):
            continue
        if n.tag in ("input", "textarea"):
            typ = (n.get("type") or "").lower()
            if typ in ("checkbox", "radio"):
                named = _mentioned(n, goal, words)
                on = n.has("checked")
                named_on += named and on
                named_off += named and not on
                other_on += (not named) and on
            elif typ not in ("submit", "button", "reset", "hidden"):
                value = (text_content(n) if n.tag == "textarea" else n.get("value") or "").lower()
                fields.append(value)
                empty += not value.strip()
        elif n.tag == "option" and n.has("selected"):
            fields.append(text_content(n).lower())
        else:
            texts.extend(c.lower() for c in n.children if isinstance(c, str) and c.strip())
    page = " ".join(" ".join(texts).split())
    in_text = sum(q in page for q in quoted)
    in_fields = sum(any(q == f.strip() or q in f for f in fields) for q in quoted)
    nq = max(len(quoted), 1)
    low = goal.lower()
    verbs = [float(any(re.search(rf"\b{v}\b", low) for v in group)) for group in GOAL_VERBS]
    return [in_text / nq, in_fields / nq, float(len(quoted) > 0), min(named_on, 5), min(named_off, 5),
            min(other_on, 5), min(empty, 5), min(len(fields), 5), *verbs]


_EMPTY = 6  # the column of the empty text fields in :func:`state_features`


def value_features(mode: str, obs: Any, action: Action, *, score: float, rank: int, k: int, history: list[Action],
                   delta: Delta | None = None, confidence: float = 1.0, image: bytes | None = None,
                   flags: tuple[str, ...] = (), trail: Trail | None = None) -> list[float]:
    """The feature vector of one candidate for ``mode`` (see the module docstring); ``trail``: the
    episode so far (without it, nothing counts as taken or visited before)."""
    if mode not in MODES:
        raise ConfigError(f"`mode` must be one of {list(MODES)}, got {mode!r}")
    f = action_features(obs, action, score, rank, k, history, trail)
    before = PageState.from_observation(obs)
    if "text" in mode:
        after = apply(before, delta, strict=False) if delta is not None and delta.ops else before
        f += state_features(after, obs.goal)
        f += text_features(before, delta or Delta([]), obs.goal, confidence)
        # the imagined page is one the episode has already been on (a step that leads back)
        f.append(float(trail is not None and page_signature(after) in trail.pages))
    else:
        f += state_features(before, obs.goal)
    if "render" in mode:
        f += render_features(obs, image, flags)
    return f


def _taken(sig: tuple, goal: str) -> tuple[bool, bool, bool, bool]:
    """What an action (by :func:`action_signature`) did, read against the instruction: clicked a submit-like
    control, clicked something the instruction names, typed one of its quoted strings, typed something else."""
    args, target = dict(sig[0]), sig[1]
    kind, label = args.get("kind"), (target[1] if isinstance(target, tuple) else "")
    click = kind in ("click", "double_click", "long_press")
    typed = kind == "type" and bool(args.get("text"))
    quoted = typed and args["text"].lower() in [q.lower() for q in _quoted(goal)]
    return (click and label in _SUBMIT, click and _overlap(label, goal_words(goal)) > 0, quoted, typed and not quoted)


def progress_features(goal: str, trail: Trail | None) -> list[float]:
    """What the episode did so far, read against the instruction: whether it clicked a submit-like control,
    clicked something the instruction names, typed one of its quoted strings, typed other text."""
    taken = [_taken(sig, goal) for sig in (trail.actions if trail is not None else ())]
    return [float(any(t[i] for t in taken)) for i in range(4)]


def done_features(obs: Any, history: list[Action], trail: Trail | None, stop_rank: int,
                  best_other: float) -> list[float]:
    """The features of "is the task done now" (:meth:`ValueFunction.done`): the current page against the
    instruction (:func:`state_features`), what the episode did so far (steps, distinct actions, a
    submit-like click, a click on something the instruction names, a quoted string typed, other text
    typed; the same four for the latest action), whether the page is the one the episode started on, and
    how the proposal ranks stopping (its rank, the best other candidate's score)."""
    f = state_features(PageState.from_observation(obs), obs.goal)
    trail = trail or Trail()
    last = [float(x) for x in _taken(trail.last, obs.goal)] if trail.last is not None else [0.0] * 4
    return f + [min(len(history), 10) / 10.0, min(len(trail.actions), 10) / 10.0, *progress_features(obs.goal, trail),
                *last, float(trail.first is not None and trail.current == trail.first), min(stop_rank, 5) / 5.0,
                max(-5.0, min(10.0, best_other))]


def _trail_columns(t: Any) -> tuple[int, int]:
    """The columns of the trail features (taken before; the imagined page visited) in a text-mode row."""
    before = PageState.from_observation(t.state)
    n_action = len(action_features(t.state, t.action, 0.0, 0, 5, []))
    n_text = len(state_features(before, t.state.goal)) + len(text_features(before, Delta([]), t.state.goal, 1.0))
    return n_action - 1, n_action + n_text


@dataclass
class _Row:
    features: dict[str, list[float]]
    label: int
    group: str


def _episodes(transitions: Iterable[Any]) -> list[list[Any]]:
    """Split a transition stream into episodes (a step counter that restarts starts a new one)."""
    out: list[list[Any]] = []
    last = None
    for t in transitions:
        key = (t.source, t.episode)
        if last is None or key != last[0] or t.step <= last[1]:
            out.append([])
        out[-1].append(t)
        last = (key, t.step)
    return out


def step_labels(episode: list[Any], label: str = "progress-named", deltas: list[Delta] | None = None) -> list[int]:
    """The training label of each step of one episode (its transitions in order; ``deltas``: their true
    deltas where the caller has them already).

    ``episode``: every step gets the episode's outcome (1 solved, 0 not). ``progress``: a step is 1 when
    the episode ends solved and the step really changed the page (a step that changed nothing, or only
    moved the focus, made no progress even in an episode that ended solved), or when the step itself
    solved the task (a submit click often changes nothing but the focus before the environment scores
    it); stopping changes nothing and is labelled with the outcome, since stopping there is exactly what
    ended the episode.
    ``progress-nostop``: the same, but stopping is never credited (labelled 0): the scorer then keeps a
    stop only when the proposal policy ranks it first and no other candidate promises progress.
    ``progress-named``: ``progress-nostop``, and a click in a solved episode that changed nothing on the
    page is credited too when the instruction names its target (every content word of the element's name
    and text is in the instruction) and the episode did not repeat it: the step changed state the page does
    not show ("Click button ONE, then click button TWO": ONE changes nothing visible, yet without it TWO
    fails), which ``progress-nostop`` labels 0 and so teaches the scorer to click TWO first.
    """
    _check_label(label)
    solved = int(any(t.success for t in episode))
    if label == "episode":
        return [solved] * len(episode)
    deltas = deltas if deltas is not None else [_true_delta(t) for t in episode]
    stop = solved if label == "progress" else 0
    labels = [stop if t.action.terminal else
              int(solved and (bool(t.success) or any(not isinstance(op, SetFocus) for op in d.ops)))
              for t, d in zip(episode, deltas, strict=True)]
    if label == "progress-named" and solved:
        taken = Counter(t.action for t in episode)
        for i, t in enumerate(episode):
            if not labels[i] and t.action.kind == "click" and taken[t.action] == 1 and _names_target(t.state, t.action):
                labels[i] = 1
    return labels


def _names_target(obs: Any, action: Action) -> bool:
    """Whether the instruction names the action's target: every content word of its name and text."""
    el = target_element(obs, action)
    words = goal_words(" ".join(x for x in (el.name, el.text) if x)) if el is not None else set()
    return bool(words) and words <= goal_words(obs.goal)


def solved_now(episode: list[Any]) -> list[bool] | None:
    """Whether the task stood solved after each step, where the environment logged it (our apps do;
    MiniWoB ends an episode when it is solved), else None.

    It labels the done model only. As progress labels (the steps up to the one that first solved the
    task count, even in an episode that never stopped; none after it) it made the search worse on the
    apps' development seeds (learned text K=5 61.1% -> 38.9%), so :func:`step_labels` does not use it."""
    now = [t.meta.get("solved_now") if isinstance(getattr(t, "meta", None), dict) else None for t in episode]
    return None if any(x is None for x in now) else [bool(x) for x in now]


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise ConfigError(f"`label` must be one of {list(LABELS)}, got {label!r}")


def _true_delta(t: Any) -> Delta:
    from parsimon.gui.world_model.metrics import true_delta

    return true_delta(PageState.from_observation(t.state), PageState.from_observation(t.next_state))


class ValueFunction:
    """One classifier per search mode, P(episode solved | candidate features).

    Args:
        path: A file written by :meth:`save` (default :func:`default_value_path`); ignored with ``state``.
        state: A fitted model's contents, as :meth:`fit` makes them.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, state: dict | None = None) -> None:
        if state is None:
            path = Path(path) if path is not None else default_value_path()
            if not path.is_file():
                raise ConfigError(f"no value function at {path}: train one first with `parsimon gui wm train`")
            with open(path, "rb") as fh:
                state = pickle.load(fh)  # noqa: S301 - our own file, written by save()
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise ConfigError(f"{path} is not a value function written by this version ({FORMAT})")
        self.state = state

    @classmethod
    def fit(cls, transitions: Iterable[Any], *, seed: int = 0, render: bool = True,
            label: str = "progress-named", done_transitions: Iterable[Any] = ()) -> ValueFunction:
        """Fit on logged transitions (``render``: the render group too, from the logged screenshots; the
        transitions must then carry them).

        ``label``: how steps are labelled (:func:`step_labels`). ``done_transitions``: more episodes for the
        done model only, such as the search's own: whether the task stood solved after each step is the
        environment's word, while their outcomes as progress labels are confounded by the search's
        stopping (fit on all of a searched round, the apps' development seeds fell from 53.7% to 40.7%)."""
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier

        from parsimon.gui.policies.proposal import propose

        _check_label(label)
        rows: list[_Row] = []
        done_x: list[list[float]] = []
        done_y: list[int] = []
        first = None
        for ep, progress in [(ep, True) for ep in _episodes(transitions)] + \
                [(ep, False) for ep in _episodes(done_transitions)]:
            first = first or ep[0]
            history: list[Action] = []
            trail = Trail()
            deltas = [_true_delta(t) for t in ep] if progress else [Delta([])] * len(ep)
            now = solved_now(ep)
            labels = step_labels(ep, label, deltas) if progress else [0] * len(ep)
            for t, delta, ok in zip(ep, deltas, labels, strict=True):
                trail.see(t.state)
                cands = propose(t.state, history)
                stop_rank = next((i for i, c in enumerate(cands) if c.action.terminal), len(cands))
                others = [c.score for c in cands if not c.action.terminal]
                done_x.append(done_features(t.state, history, trail, stop_rank, others[0] if others else -5.0))
                done_y.append(int(t.action.terminal and any(e.success for e in ep)) if now is None else
                              int(len(history) > 0 and now[len(history) - 1]))
                if not progress:
                    history.append(t.action)
                    trail.took(t.state, t.action)
                    continue
                rank = next((i for i, c in enumerate(cands) if c.action == t.action), len(cands))
                score = cands[rank].score if rank < len(cands) else -1.0
                feats = {}
                for mode in MODES:
                    if "render" in mode and not render:
                        continue
                    feats[mode] = value_features(mode, t.state, t.action, score=score, rank=min(rank, 5), k=5,
                                                 history=history, delta=delta, confidence=1.0,
                                                 image=t.next_state.screenshot or None, trail=trail)
                rows.append(_Row(feats, ok, t.task))
                history.append(t.action)
                trail.took(t.state, t.action)
        if not rows or len({r.label for r in rows}) < 2:
            raise ConfigError("the value function needs transitions from both solved and unsolved episodes")
        def classifier(**kw: Any) -> Any:
            return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=15,
                                                  l2_regularization=1.0, random_state=seed,
                                                  min_samples_leaf=5, **kw)  # 20 (the default) hides rare features

        models = {}
        y = np.asarray([r.label for r in rows])
        repeat, revisit = _trail_columns(first)
        for mode in rows[0].features:
            x = np.asarray([r.features[mode] for r in rows], dtype=float)
            # an action taken before, or a step back to a page already seen, never makes a candidate better
            cst = np.zeros(x.shape[1], dtype=int)
            cst[repeat] = -1
            if "text" in mode:
                cst[revisit] = -1
                # nor does one whose imagined page leaves more text fields empty (Submit with a field to fill)
                cst[repeat + 1 + _EMPTY] = -1
            models[mode] = classifier(monotonic_cst=cst).fit(x, y)
        state = {"format": FORMAT, "models": models, "rows": len(rows), "positive": int(y.sum()), "label": label,
                 "done": None, "done_rows": len(done_y), "done_positive": int(sum(done_y))}
        if 0 < sum(done_y) < len(done_y):
            # is the task done now: the states logged as solved (else where a solved episode stopped)
            state["done"] = classifier().fit(np.asarray(done_x), done_y)
        return cls(state=state)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the model (atomically) to ``path`` (default :func:`default_value_path`)."""
        path = Path(path) if path is not None else default_value_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(self.state, fh)
        os.replace(tmp, path)
        return path

    @property
    def modes(self) -> list[str]:
        """The modes it was fit for."""
        return list(self.state["models"])

    @property
    def has_done(self) -> bool:
        """Whether it has a done model (one fit on a store that never shows a solved state has none; the
        search's ``stop="done"`` then refuses it)."""
        return self.state.get("done") is not None

    def done(self, features: list[float]) -> float:
        """P(the task is done now) from :func:`done_features`."""
        import numpy as np

        if not self.has_done:
            raise ConfigError("this value function has no done model; retrain it with `parsimon gui wm train`")
        return float(self.state["done"].predict_proba(np.asarray([features], dtype=float))[0, 1])

    def score(self, mode: str, rows: list[list[float]]) -> list[float]:
        """P(solved) for each candidate's features."""
        import numpy as np

        if mode not in self.state["models"]:
            raise ConfigError(f"this value function was not fit for mode {mode!r}; it has {self.modes}")
        if not rows:
            return []
        return [float(p) for p in self.state["models"][mode].predict_proba(np.asarray(rows, dtype=float))[:, 1]]
