"""The X desktop: computer_use actions through xdotool on a Tk app, screenshots from the display."""

from __future__ import annotations

import io
import shutil

import pytest

from parsimon.gui.actions import Action, Point
from parsimon.gui.agent import run_episode
from parsimon.gui.codecs import decode
from parsimon.gui.desktop.suite import DesktopTask, parse_notes_instruction
from parsimon.gui.policies.rule import RulePolicy

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool")]


@pytest.fixture(scope="module")
def env():
    from parsimon.gui.desktop.env import DesktopEnv

    e = DesktopEnv()
    yield e
    e.close()


def computer(env, args):
    obs, reward, term, trunc, info = env.step(decode("computer", args))
    assert info["valid"] and info["error"] is None, info
    return obs, info["state"]


def norm(obs, name):
    e = next(e for e in obs.elements if e.name == name or e.text == name)
    x, y = e.center
    return [round(x / obs.size[0] * 1000), round(y / obs.size[1] * 1000)]


def test_screen_and_widgets(env):
    from PIL import Image

    obs, info = env.reset(seed=0, options={"task": DesktopTask("notes-L3-0")})
    img = Image.open(io.BytesIO(obs.screenshot)).convert("RGB")
    assert img.size == (640, 480) == obs.size
    assert len(img.crop((0, 0, 480, 360)).getcolors(maxcolors=100000)) > 5  # the app is drawn, not blank
    assert img.getpixel((600, 450)) == (0, 0, 0)  # outside the window: the bare X root
    assert {e.name for e in obs.elements if e.name} >= {"Profile name", "Sync", "Notes", "Add", "Delete", "Save"}
    assert '"Sync"' in obs.axtree and info["platform"] == "computer"
    assert parse_notes_instruction(info["goal"])[-1] == ("save", "")


def test_computer_use_actions(env):
    obs, info = env.reset(seed=1, options={"task": DesktopTask("notes-L2-0")})
    sync0 = info["state"]["draft"]["sync"]
    obs, st = computer(env, {"action": "left_click", "coordinate": norm(obs, "Sync")})
    assert st["draft"]["sync"] is (not sync0)
    obs, st = computer(env, {"action": "triple_click", "coordinate": norm(obs, "Profile name")})
    obs, st = computer(env, {"action": "type", "text": "Zed"})
    assert st["draft"]["name"] == "Zed"
    obs, st = computer(env, {"action": "double_click", "coordinate": norm(obs, "Profile name")})  # selects the word
    obs, st = computer(env, {"action": "key", "keys": ["backspace"]})
    assert st["draft"]["name"] == ""
    obs, st = computer(env, {"action": "type", "text": "Ann"})
    obs, st = computer(env, {"action": "key", "keys": ["shift", "home"]})
    obs, st = computer(env, {"action": "key", "keys": ["delete"]})
    assert st["draft"]["name"] == ""
    first = st["draft"]["notes"][0]
    obs, st = computer(env, {"action": "left_click", "coordinate": norm(obs, first)})
    obs, st = computer(env, {"action": "left_click", "coordinate": norm(obs, "Delete")})
    assert first not in st["draft"]["notes"]
    obs, st = computer(env, {"action": "mouse_move", "coordinate": [100, 100]})
    obs, st = computer(env, {"action": "left_click_drag", "coordinate": [120, 100]})
    obs, st = computer(env, {"action": "scroll", "pixels": -120, "coordinate": norm(obs, "Notes")})
    obs, st = computer(env, {"action": "right_click", "coordinate": [900, 900]})
    obs, st = computer(env, {"action": "wait", "time": 0.1})
    assert st["saved"] != st["draft"]  # nothing was saved
    obs, st = computer(env, {"action": "left_click", "coordinate": norm(obs, "Save")})
    assert st["saved"] == st["draft"] and st["status"] == "Saved"
    obs, reward, terminated, _, info = env.step(Action("terminate", status="failure"))
    assert terminated and reward == 0.0  # the saved state is not the task's goal


def test_rule_policy_solves_with_screen_points(env):
    res = run_episode(env, RulePolicy(), DesktopTask("notes-L5-2"), 0)
    assert res.success, [r.error for r in res.records]
    assert all(r.action["target"]["point"] for r in res.records if r.action and "target" in r.action)
    assert isinstance(Point(*res.records[0].action["target"]["point"]), Point)
