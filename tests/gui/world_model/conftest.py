"""Pages without a browser: observations built from HTML, and synthetic transitions with known dynamics."""

from __future__ import annotations

import random

import pytest

from parsimon.gui.actions import Action, Element
from parsimon.gui.web.observe import ElementInfo, Observation
from parsimon.gui.world_model.delta import Delta, PageState, SetAttr, SetChecked, SetFocus, SetText, apply
from parsimon.gui.world_model.dom import parse, text_content
from parsimon.gui.world_model.store import Transition

_ROLES = {"a": "link", "button": "button", "input": "textbox", "li": "listitem", "ul": "list", "label": "label"}


def make_obs(html: str, goal: str = "", url: str = "http://127.0.0.1:1/page.html", focused: int | None = None) -> Observation:
    """An observation of ``html`` (every labelled element visible and boxed in a column)."""
    doc = parse(html)
    elements = []
    for pid, node in sorted(doc.index().items()):
        if pid < 0:
            continue
        typ = node.get("type") if node.tag == "input" else None
        role = ("checkbox" if typ == "checkbox" else "radio" if typ == "radio" else _ROLES.get(node.tag, "generic"))
        interactive = node.tag in ("a", "button", "input", "select", "textarea", "label")
        elements.append(ElementInfo(pid=pid, tag=node.tag, role=role, text=text_content(node)[:200],
                                    bbox=(0.0, 20.0 * pid, 100.0, 18.0), interactive=interactive,
                                    type=typ, checked=node.has("checked") if typ in ("checkbox", "radio") else None,
                                    value=node.get("value"), id=node.get("id"),
                                    irreversible=node.has("data-irreversible")))
    return Observation(goal=goal, url=url, screenshot=b"", size=(320, 480), elements=tuple(elements), dom=html,
                       focused=focused)


def synthetic_page(rng: random.Random, family: str) -> tuple[str, dict]:
    """A page of one of three widget families, with invented ids and texts so that families generalise
    across "tasks" only through their structure."""
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "zeta", "theta", "lambda"]
    pid = iter(range(100))
    uid = rng.choice(["box", "panel", "pane", "zone", "area", "card"]) + str(rng.randint(0, 99))
    body = []
    meta: dict = {"family": family}
    if family == "checks":
        items = rng.sample(words, rng.randint(2, 5))
        for w in items:
            p1, p2 = next(pid), next(pid)
            checked = " checked" if rng.random() < 0.3 else ""
            body.append(f'<label data-pid="{p1}"><input type="checkbox" data-pid="{p2}"{checked}>{w}</label>')
        p = next(pid)
        body.append(f'<button data-pid="{p}">Submit</button>')
    elif family == "accordion":
        for w in rng.sample(words, rng.randint(2, 4)):
            h, c = next(pid), next(pid)
            body.append(f'<h3 class="hdr" aria-expanded="false" tabindex="0" data-pid="{h}">{w}</h3>'
                        f'<div class="content" aria-hidden="true" style="display: none;" data-pid="{c}">about {w}</div>')
    else:  # list with delete buttons
        ul = next(pid)
        lis = []
        for w in rng.sample(words, rng.randint(2, 5)):
            li, b = next(pid), next(pid)
            lis.append(f'<li data-pid="{li}">{w} <button class="del" data-pid="{b}">x</button></li>')
        body.append(f'<ul id="{uid}" data-pid="{ul}">{"".join(lis)}</ul>')
    html = (f'<!DOCTYPE html>\n<html><head><title>{uid}</title></head><body><div id="{uid}-wrap" data-pid="{next(pid)}">'
            + "".join(body) + "</div></body></html>")
    return html, meta


def synthetic_step(obs: Observation, rng: random.Random) -> tuple[Action, Observation]:
    """A click on a random interactive element and the page the family's dynamics lead to."""
    doc = parse(obs.dom)
    index = doc.index()
    clickable = [n for p, n in index.items() if p >= 0 and n.tag in ("input", "h3", "button")]
    node = rng.choice(clickable)
    action = Action("click", target=Element(node.pid))
    ops = []
    if node.tag == "input":
        ops = [SetChecked(node.pid, not node.has("checked")), SetFocus(node.pid)]
    elif node.tag == "h3":
        opened = node.get("aria-expanded") == "true"
        content = node.parent.children[node.parent.children.index(node) + 1]
        ops = [SetAttr(node.pid, "aria-expanded", "false" if opened else "true"),
               SetAttr(content.pid, "aria-hidden", "true" if opened else "false"),
               SetAttr(content.pid, "style", "display: none;" if opened else "display: block;"), SetFocus(node.pid)]
    elif node.tag == "button" and "del" in (node.get("class") or ""):
        from parsimon.gui.world_model.delta import RemoveNode

        ops = [RemoveNode(node.parent.pid)]
    elif node.tag == "button":
        ops = [SetFocus(node.pid), SetText(node.pid, ("Sent",))]
    after = apply(PageState.from_observation(obs), Delta(ops))
    return action, make_obs(after.html, obs.goal, after.url, after.focused)


def synthetic_transitions(task: str, family: str, episodes: int, seed: int) -> list[Transition]:
    """``episodes`` random three-step episodes of one synthetic task."""
    rng = random.Random(f"{task}:{seed}")
    out = []
    for e in range(episodes):
        html, _ = synthetic_page(rng, family)
        obs = make_obs(html, goal=f"do {family}")
        for step in range(1, 4):
            action, nxt = synthetic_step(obs, rng)
            out.append(Transition(f"{task}#{e}", task, e, step, obs, action, nxt, 0.0, False, False, "synthetic"))
            obs = nxt
            if not [n for p, n in parse(obs.dom).index().items() if p >= 0 and n.tag in ("input", "h3", "button")]:
                break
    return out


def task_split(make, name: str, train: range, test: range) -> tuple[list[Transition], list[Transition]]:
    """Transitions of synthetic tasks ``synth/<name>-<k>`` (``make(task, k)``): those of the ``train`` ks,
    then those of the ``test`` ks (tasks the model never saw)."""
    return ([t for k in train for t in make(f"synth/{name}-{k}", k)],
            [t for k in test for t in make(f"synth/{name}-{k}", k)])


@pytest.fixture
def obs_from_html():
    """``make_obs`` as a fixture."""
    return make_obs
