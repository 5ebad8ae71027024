"""Deltas on the frozen DOM: diff(a, b) applied to a gives b (property test), serialisation, errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsimon.errors import ConfigError
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
    diff,
    op_from_dict,
)
from parsimon.gui.world_model.dom import BODY, Node, element_children, parse, text_runs

TAGS = ["div", "span", "p", "ul", "li", "b", "button"]
WORDS = ["a", "b c", " d ", "e&f", "<g>", "h\u00a0i", ""]


def _tree(rng: random.Random, counter: list[int], depth: int = 0) -> Node:
    tag = rng.choice(TAGS)
    node = Node(tag, [("data-pid", str(counter[0]))])
    counter[0] += 1
    if rng.random() < 0.3:
        node.set("class", rng.choice(["x", "y z", "active"]))
    n = 0 if depth > 2 else rng.randint(0, 3)
    node.append(rng.choice(WORDS))
    for _ in range(n):
        if rng.random() < 0.2:
            leaf = Node("input", [("data-pid", str(counter[0])), ("type", rng.choice(["checkbox", "text"]))])
            counter[0] += 1
            if rng.random() < 0.5:
                leaf.set("checked" if leaf.get("type") == "checkbox" else "value", "" if rng.random() < 0.5 else "v")
            node.append(leaf)
        else:
            node.append(_tree(rng, counter, depth + 1))
        node.append(rng.choice(WORDS))
    return node


def _page(rng: random.Random) -> tuple[PageState, list[int]]:
    counter = [0]
    body = Node("body")
    for _ in range(rng.randint(1, 3)):
        body.append(_tree(rng, counter))
    html = Node("html")
    html.append(Node("head"))
    html.append(body)
    return PageState("http://x/p.html", "<!DOCTYPE html>\n" + html.html(), None), counter


def _mutate(state: PageState, rng: random.Random, counter: list[int]) -> PageState:
    """Random edits made directly on the tree (not through ops), as a page's scripts would make them."""
    doc = parse(state.html)
    url, focused = state.url, state.focused
    for _ in range(rng.randint(1, 6)):
        index = doc.index()
        nodes = [n for p, n in index.items() if p != BODY]
        if not nodes:
            break
        node = rng.choice(nodes)
        what = rng.randrange(8)
        if what == 0:
            node.set("class", rng.choice([None, "x", "q r"]))
        elif what == 1:
            kids = element_children(node)
            node.children = []
            node.append(rng.choice(WORDS))
            for k in kids:
                node.append(k)
                node.append(rng.choice(WORDS))
        elif what == 2 and node.parent is not None:
            node.parent.children.remove(node)
        elif what == 3 and node.tag != "input":
            new = Node(rng.choice(TAGS), [("data-pid", str(counter[0]))])
            counter[0] += 1
            new.append(rng.choice(WORDS))
            pos = rng.randint(0, len(node.children))
            node.children.insert(pos, new)
            new.parent = node
        elif what == 4 and node.parent is not None:
            # a move: to the end of another element that is not inside it
            node.parent.children.remove(node)
            targets = [n for n in doc.index().values()
                       if n is not node and node not in list(n.ancestors()) and n.tag != "input"]
            dest = rng.choice(targets)
            dest.append(node)
        elif what == 5 and node.tag == "input":
            node.set("checked", None if node.has("checked") else "")
            node.set("value", rng.choice(["", "typed", None]))
        elif what == 6:
            focused = rng.choice([None, node.pid])
        else:
            url = rng.choice([url, url + "#top"])
    if focused not in doc.index():  # a snapshot only ever names an element that is on the page
        focused = None
    return PageState(url, doc.html(), focused)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_diff_then_apply_gives_the_target(seed):
    rng = random.Random(seed)
    a, counter = _page(rng)
    b = _mutate(a, rng, counter)
    d = diff(a, b)
    assert apply(a, d).canonical() == b.canonical()
    # and the ops survive a JSON round trip
    again = Delta.from_dict(d.to_dict())
    assert apply(a, again).canonical() == b.canonical()


def test_diff_of_equal_states_is_empty():
    a, _ = _page(random.Random(3))
    assert diff(a, a).ops == []


def test_a_replaced_document_is_one_navigation():
    a = PageState("http://x/1.html", '<html><head><title>1</title></head><body><p data-pid="0">one</p></body></html>')
    b = PageState("http://x/2.html", '<html><head><title>2</title></head><body><div data-pid="0">two</div></body></html>',
                  0)
    d = diff(a, b)
    assert [type(op) for op in d.ops] == [Navigate, SetFocus]
    assert d.ops[0].html is not None and d.ops[0].key() == ("navigate", "http://x/2.html")
    assert apply(a, d).canonical() == b.canonical()


def test_typed_ops_on_form_fields():
    a = PageState("u", '<html><head></head><body><input data-pid="1" type="checkbox"><input data-pid="2" value="x">'
                  '<textarea data-pid="3">old</textarea><select data-pid="4"><option data-pid="5" selected>A</option>'
                  '<option data-pid="6">B</option></select></body></html>')
    b = apply(a, Delta([SetChecked(1, True), SetValue(2, "typed"), SetValue(3, "new text"), SetValue(4, "B"),
                        SetFocus(2)]))
    keys = sorted(map(str, diff(a, b).keys()))
    assert keys == sorted(map(str, [("checked", 1, True), ("value", 2, "typed"), ("value", 3, "new text"),
                                    ("attr", 5, "selected", None), ("attr", 6, "selected", ""), ("focus", 2)]))


def test_text_runs_around_children():
    a = PageState("u", '<html><head></head><body><p data-pid="1">a <b data-pid="2">b</b> c</p></body></html>')
    b = apply(a, Delta([SetText(1, ("x ", " y"))]))
    assert text_runs(parse(b.html).index()[1]) == ("x ", " y")
    with pytest.raises(ConfigError, match="text runs"):
        apply(a, Delta([SetText(1, ("only one", "two", "three"))]))


def test_ops_on_missing_elements_fail_strictly_and_are_skipped_otherwise():
    from parsimon.gui.world_model.delta import apply_report

    a = PageState("u", '<html><head></head><body><p data-pid="1">a</p></body></html>')
    bad = Delta([RemoveNode(9), SetAttr(8, "class", "x"), AddNode(7, 0, "<i>n</i>"), SetFocus(6)])
    with pytest.raises(ConfigError, match="no element labelled 9"):
        apply(a, bad)
    state, skipped = apply_report(a, bad)
    assert state.canonical() == a.canonical()
    assert len(skipped) == 4


def test_op_dicts_are_checked():
    assert op_from_dict({"op": "checked", "pid": 3, "checked": True}) == SetChecked(3, True)
    with pytest.raises(ConfigError, match="`op` in"):
        op_from_dict({"op": "explode", "pid": 1})
    with pytest.raises(ConfigError, match="missing fields"):
        op_from_dict({"op": "value", "pid": 1})
    with pytest.raises(ConfigError, match="unknown fields"):
        op_from_dict({"op": "remove", "pid": 1, "why": "x"})
