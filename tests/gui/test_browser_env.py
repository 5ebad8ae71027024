"""BrowserEnv on a local test page: observations, every executor verb, the virtual clock, determinism."""

from __future__ import annotations

import pytest

from parsimon.errors import ResetNeeded
from parsimon.gui.actions import WINDOW, Action, Element, Point
from parsimon.gui.suites.base import TaskStatus, WebTask
from parsimon.gui.web.env import BrowserEnv

pytestmark = pytest.mark.browser


class Playground(WebTask):
    suite, name, hidden, viewport, settle_ms = "test", "playground", ("#reward-display",), (400, 300), 100

    def __init__(self, url):
        self.url = url

    def path(self):
        return self.url

    def setup(self, page, seed):
        return "Play with the controls."

    def status(self, page, answer=None, *, ended=False):
        return TaskStatus(0.0, ended, False)


@pytest.fixture(scope="module")
def env(session, pages_server):
    e = BrowserEnv(Playground(pages_server.url("/t/playground.html")), session=session)
    yield e
    e.close()


def _pid(obs, id_):
    return next(e.pid for e in obs.elements if e.id == id_)


def _events(env):
    return env.page.evaluate("() => window.events")


def test_observation_parts(env):
    obs, info = env.reset(seed=0)
    assert info["goal"] == "Play with the controls." and obs.size == (400, 300)
    assert obs.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'[{_pid(obs, "btn")}] button "Press"' in obs.axtree
    assert f'[{_pid(obs, "name")}] textbox "Name"' in obs.axtree
    assert "Last reward" not in obs.axtree and "Last reward" not in obs.dom  # hidden from every view
    assert f'[{_pid(obs, "btn")}]: <button> "Press";' in obs.som_text()
    assert obs.som_image() != obs.screenshot and obs.som_image()[:4] == b"\x89PNG"
    name = obs.element(_pid(obs, "name"))
    assert name.value == "old" and name.interactive and name.visible


def test_every_pointer_and_key_verb(env):
    obs, _ = env.reset(seed=0)
    pid = lambda i: Element(_pid(obs, i))  # noqa: E731
    for action in (Action("click", target=pid("btn")), Action("double_click", target=pid("dbl")),
                   Action("right_click", target=pid("ctx")), Action("middle_click", target=pid("mid")),
                   Action("hover", target=pid("hover"))):
        obs, _, _, _, info = env.step(action)
        assert info["valid"] and info["error"] is None
    assert _events(env)[:5] == ["click", "dblclick", "contextmenu", "aux1", "hover"]
    obs, *_ = env.step(Action("triple_click", target=pid("name")))
    obs, *_, info = env.step(Action("type", target=pid("name"), text="new name", clear=True, enter=True))
    assert obs.element(_pid(obs, "name")).value == "new name" and "enter-in-name" in _events(env)
    obs, *_ = env.step(Action("key", keys=("ctrl", "a")))
    assert "key:Ctrl+a" in _events(env)
    obs, *_ = env.step(Action("click", target=pid("agree")))
    obs, *_ = env.step(Action("select", target=pid("color"), option="Blue"))
    assert obs.element(_pid(obs, "agree")).checked is True and obs.element(_pid(obs, "color")).value == "Blue"
    # the frozen DOM carries the live form state
    assert 'value="new name"' in obs.dom and "checked" in obs.dom.split('id="agree"')[1][:60]
    assert "selected" in obs.dom.split(">Blue<")[0][-40:]
    # choosing the option already chosen fires the change event again (the world model's sort convention
    # counts on it)
    env.step(Action("select", target=pid("color"), option="Blue"))
    assert [e for e in _events(env) if e.startswith("change:")] == ["change:Blue", "change:Blue"]


def test_scroll_drag_navigation_and_invalid_targets(env):
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(Action("scroll", target=Element(_pid(obs, "scroller")), direction="down", amount=40))
    assert env.page.evaluate("() => document.getElementById('scroller').scrollTop") > 0
    obs, *_ = env.step(Action("scroll", target=WINDOW, direction="down"))
    assert obs.scroll[1] > 0
    obs, *_ = env.step(Action("scroll", direction="up", amount=5000))
    assert obs.scroll[1] == 0
    x, y, w, h = obs.element(_pid(obs, "pad")).bbox
    # a wheel is waited for only where something under the pointer has room to scroll that way
    assert env.executor._can_scroll(x + 10, y + 10, 0, 100) and not env.executor._can_scroll(x + 10, y + 10, 0, -100)
    start, end = Point(x + 10, y + 10, "px"), Point(x + 150, y + 20, "px")
    obs, *_ = env.step(Action("drag", target=start, end=end))
    assert "down:10" in _events(env) and "up:150" in _events(env)
    obs, *_ = env.step(Action("click", target=Element(_pid(obs, "next"))))
    assert obs.url.endswith("#/next")
    obs, *_ = env.step(Action("go_back"))
    assert not obs.url.endswith("#/next")
    obs, _, _, _, info = env.step(Action("click", target=Element(9999)))
    assert info["valid"] is False and "no element labelled 9999" in info["error"]
    obs, _, _, _, info = env.step(Action("select", target=Element(_pid(obs, "btn")), option="x"))
    assert info["valid"] is False and "not a <select>" in info["error"]


def test_virtual_clock_only_moves_when_time_passes(env):
    obs, _ = env.reset(seed=0)
    later = lambda o: o.element(_pid(o, "later")).text  # noqa: E731
    assert later(obs) == ""  # 100 ms of page time so far
    obs, *_ = env.step(Action("wait", seconds=1.5))
    assert later(obs) == ""
    obs, *_ = env.step(Action("wait", seconds=0.5))
    assert later(obs) == "appeared"
    assert env.page.evaluate("() => Date.now()") == 1767225600000 + 2100


def test_terminal_actions_and_reset_needed(env):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(Action("terminate", status="success"))
    assert terminated and not truncated and reward == 0.0
    with pytest.raises(ResetNeeded):
        env.step(Action("wait", seconds=1))


def test_same_seed_same_pages(session):
    from parsimon.gui.suites.miniwob import MiniWoBTask

    env = BrowserEnv(session=session, observe_dom=False)
    try:
        first = [env.reset(seed=s, options={"task": MiniWoBTask("click-checkboxes")}) for s in (4, 4, 5)]
        shots = [o.screenshot_sha256 for o, _ in first]
        goals = [i["goal"] for _, i in first]
        assert shots[0] == shots[1] and goals[0] == goals[1] and goals[0] != goals[2]
        sample = env.action_space.sample()
        assert env.action_space.contains(sample) and env.observation_space.contains(first[2][0])
    finally:
        env.close()
