"""Phone emulation: every mobile_use action, decoded from a tool call, does what it says on our mobile apps."""

from __future__ import annotations

import pytest

from parsimon.governance import CallbackSink, FeedbackEmitter
from parsimon.gui.actions import Action, Point
from parsimon.gui.agent import run_episode
from parsimon.gui.codecs import decode
from parsimon.gui.policies.replay import ReplayPolicy
from parsimon.gui.policies.rule import RulePolicy
from parsimon.gui.suites.apps import AppTask
from parsimon.gui.web.env import BrowserEnv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env(session):
    e = BrowserEnv(session=session, observe_dom=False, observe_axtree=False)
    yield e
    e.close()


def mobile(env, args):
    """Decode a mobile_use call and run it."""
    obs, reward, term, trunc, info = env.step(decode("mobile", args))
    assert info["valid"] and info["error"] is None, info
    return obs


def at(obs, pred):
    e = next(e for e in obs.elements if pred(e))
    x, y = e.center
    return [round(x / obs.size[0] * 1000), round(y / obs.size[1] * 1000)]


def state(env, app):
    return env.page.evaluate("(a) => JSON.parse(localStorage.getItem('parsimon.app.' + a))", app)


def test_phone_context(env):
    obs, info = env.reset(seed=0, options={"task": AppTask("todo-L1-0", mobile=True)})
    assert obs.size == (393, 727) and info["platform"] == "mobile" and obs.url.endswith("/launcher.html")
    assert env.page.evaluate("() => navigator.maxTouchPoints > 0 && matchMedia('(pointer: coarse)').matches")
    assert env.page.evaluate("() => window.devicePixelRatio") == 2.75


def test_every_mobile_use_action(env):
    obs, _ = env.reset(seed=0, options={"task": AppTask("todo-L2-0", mobile=True)})
    obs = mobile(env, {"action": "open", "text": "To-do"})
    assert obs.url.endswith("/todo.html")
    first = state(env, "todo")["items"][0]
    obs = mobile(env, {"action": "click", "coordinate": at(obs, lambda e: e.name == f"Done: {first['text']}")})
    assert state(env, "todo")["items"][0]["done"] is (not first["done"])
    obs = mobile(env, {"action": "click", "coordinate": at(obs, lambda e: e.id == "new-todo")})
    obs = mobile(env, {"action": "type", "text": "milkx"})
    obs = mobile(env, {"action": "key", "text": "del"})  # an adb key event: backspace
    assert next(e for e in obs.elements if e.id == "new-todo").value == "milk"
    obs = mobile(env, {"action": "system_button", "button": "Enter"})
    assert state(env, "todo")["items"][-1] == {"text": "milk", "done": False}
    label = lambda e: e.text == "milk" and "label" in (e.cls or "")  # noqa: E731
    obs = mobile(env, {"action": "long_press", "coordinate": at(obs, label), "time": 1})
    assert next(e for e in obs.elements if e.id == "sheet-delete").visible
    obs = mobile(env, {"action": "click", "coordinate": at(obs, lambda e: e.id == "sheet-delete")})
    assert all(it["text"] != "milk" for it in state(env, "todo")["items"])
    obs = mobile(env, {"action": "system_button", "button": "Menu"})
    assert next(e for e in obs.elements if e.id == "clear-done").visible
    obs = mobile(env, {"action": "system_button", "button": "Home"})
    assert obs.url.endswith("/launcher.html")
    env.reset(seed=0, options={"task": AppTask("inbox-L2-0", mobile=True)})
    obs = mobile(env, {"action": "open", "text": "Inbox"})
    subject = state(env, "inbox")["messages"][0]["subject"]
    obs = mobile(env, {"action": "click", "coordinate": at(obs, lambda e: e.name == f"Open {subject}")})
    assert "#/m/0" in obs.url
    obs = mobile(env, {"action": "system_button", "button": "Back"})
    assert "#/m/" not in obs.url
    row = next(e for e in obs.elements if e.tag == "li")
    x, y, w, h = row.bbox
    obs = mobile(env, {"action": "swipe", "coordinate": [round((x + 0.9 * w) / 393 * 1000), round((y + h / 2) / 727 * 1000)],
                       "coordinate2": [round((x + 0.1 * w) / 393 * 1000), round((y + h / 2) / 727 * 1000)]})
    assert state(env, "inbox")["messages"][0]["archived"] is True and "#/m/" not in obs.url
    before = env.page.evaluate("() => Date.now()")
    mobile(env, {"action": "wait", "time": 2})
    assert env.page.evaluate("() => Date.now()") - before == 2000
    obs, reward, terminated, truncated, info = env.step(decode("mobile", {"action": "terminate", "status": "success"}))
    assert terminated
    env.reset(seed=0, options={"task": AppTask("todo-L2-0", mobile=True)})
    obs, reward, terminated, truncated, info = env.step(decode("mobile", {"action": "answer", "text": "done"}))
    assert terminated


def test_interact_waits_for_a_person(env):
    events = []
    pol = ReplayPolicy([Action("interact", text="Please sign in for me")])
    res = run_episode(env, pol, AppTask("todo-L1-0", mobile=True), 0, approve="deny",
                      feedback=FeedbackEmitter("verbose", sinks=[CallbackSink(events.append)]))
    assert res.ended_by == "refused" and res.steps == 0
    assert any(e.kind == "needs_user" and "Please sign in" in e.message for e in events)
    res = run_episode(env, ReplayPolicy([Action("interact", text="ok?"), Action("click", target=Point(500, 500))]),
                      AppTask("todo-L1-0", mobile=True), 0, approve="auto")
    assert res.ended_by == "agent" and res.steps == 3  # interact, the click, then the log runs out


@pytest.mark.parametrize("slot", ["todo-L4-2", "inbox-L4-0"])
def test_rule_policy_with_phone_gestures(env, slot):
    res = run_episode(env, RulePolicy(), AppTask(slot, mobile=True), 1)
    kinds = {r.action["kind"] for r in res.records if r.action}
    assert res.success, [r.error for r in res.records]
    assert "open" in kinds
