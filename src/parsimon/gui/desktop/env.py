"""``DesktopEnv``: ``computer_use`` actions on a real X display (Xvfb + xdotool) driving a Tk application.

## Description
A private X server (Debian's ``Xvfb``) runs the Notes app of :mod:`parsimon.gui.desktop.app`; actions are
real X input events sent with ``xdotool`` (pointer moves, clicks, drags, wheel clicks, key chords, typing),
and screenshots are grabbed from the display. The app writes its state after every change, which gives
the task oracle and an element table (widget names and screen boxes) for non-visual policies.

## Action Space
:class:`~parsimon.gui.actions.Action` with point targets (norm1000 or pixels): click, double, triple,
right and middle click, hover, drag (from the pointer when no start is given), scroll (one wheel click per
40 px; a scroll without an amount is 5 clicks), type, key, wait, answer, terminate. Element labels resolve
to the widget's centre.

## Observation Space
:class:`~parsimon.gui.web.observe.Observation`: the screen as PNG, the widgets as elements, an
accessibility-tree text of the widgets, ``url`` ``x11:notes``.

## Rewards
1 when the agent stops (``terminate``/``answer``) and the saved state equals the goal, else 0.

## Episode End
``terminated`` when the agent stops; ``truncated`` after the task's ``max_steps``.

## Arguments
``screen``: the display size (default 640 x 480).

## Version History
* v0: first version.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

from parsimon.errors import ConfigError, DependencyNotInstalled, InvalidAction, ResetNeeded
from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.coords import to_pixels
from parsimon.gui.desktop.suite import DesktopTask
from parsimon.gui.suites.base import TaskStatus
from parsimon.gui.web.observe import ElementInfo, Observation

__all__ = ["DesktopEnv", "XDOTOOL_KEYS"]

XDOTOOL_KEYS = {"ctrl": "ctrl", "control": "ctrl", "shift": "shift", "alt": "alt", "cmd": "super", "win": "super",
                "super": "super", "meta": "super", "enter": "Return", "return": "Return", "esc": "Escape",
                "escape": "Escape", "tab": "Tab", "backspace": "BackSpace", "delete": "Delete", "del": "Delete",
                "space": "space", "up": "Up", "down": "Down", "left": "Left", "right": "Right", "home": "Home",
                "end": "End", "pageup": "Prior", "pagedown": "Next", "insert": "Insert"}
WHEEL_PX = 40  # pixels per wheel click


def _x_key(name: str) -> str:
    low = name.strip().lower()
    if low in XDOTOOL_KEYS:
        return XDOTOOL_KEYS[low]
    if re.fullmatch(r"f\d{1,2}", low):
        return low.upper()
    return name


class DesktopEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, *, screen: tuple[int, int] = (640, 480)) -> None:
        for tool in ("Xvfb", "xdotool"):
            if shutil.which(tool) is None:
                raise DependencyNotInstalled(tool, "gui", f"the desktop environment (apt-get install {tool.lower()})")
        self.screen = screen
        self.tmp = Path(tempfile.mkdtemp(prefix="parsimon-x11-"))
        self.display = self._start_x()
        self.app: subprocess.Popen | None = None
        self.task: DesktopTask | None = None
        self.goal, self.steps, self._done = "", 0, True
        self.pointer = (0.0, 0.0)
        self.last_obs: Observation | None = None
        self._status = TaskStatus()
        self.page = None
        self.action_space = gym.spaces.Space()
        self.observation_space = gym.spaces.Space()

    def _start_x(self) -> str:
        for n in range(90, 400):
            if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
                continue
            proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{self.screen[0]}x{self.screen[1]}x24",
                                     "-nolisten", "tcp", "-nocursor"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    self.xvfb = proc
                    return f":{n}"
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            proc.kill()
        raise ConfigError("could not start Xvfb on any display :90-:399")

    def _env(self) -> dict[str, str]:
        return dict(os.environ, DISPLAY=self.display)

    def _xdo(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self._env(), check=True, capture_output=True, timeout=20)

    def _read_state(self) -> dict | None:
        try:
            return json.loads((self.tmp / "state.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _wait_state(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._read_state()
            if state is not None:
                return state
            if self.app is not None and self.app.poll() is not None:
                raise ConfigError(f"the Notes app exited with code {self.app.returncode}")
            time.sleep(0.05)
        raise ConfigError("the Notes app did not start within 10 s")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Observation, dict]:
        """Start the app on ``options["task"]``'s scenario."""
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = options["task"]
        if self.task is None:
            raise ConfigError("reset() needs options={'task': DesktopTask(...)}")
        seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self._stop_app()
        self.goal = self.task.start(seed)
        state_file = self.tmp / "state.json"
        state_file.unlink(missing_ok=True)
        self.app = subprocess.Popen([sys.executable, "-m", "parsimon.gui.desktop.app", str(state_file),
                                     json.dumps(self.task.scenario)], env=self._env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_state()
        self._xdo("mousemove", "0", "0")
        self.pointer, self.steps, self._done = (0.0, 0.0), 0, False
        self._settle()
        self._status = self.task.status(self._read_state(), False)
        return self._observe(), {"task": self.task.id, "seed": seed, "goal": self.goal, "platform": "computer",
                                 "state": self._read_state()}

    def _settle(self, seconds: float = 0.15) -> None:
        time.sleep(seconds)  # Tk redraws and writes its state asynchronously

    def _observe(self) -> Observation:
        from PIL import ImageGrab

        img = ImageGrab.grab(xdisplay=self.display)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        state = self._read_state() or {"widgets": []}
        elements, lines, pid = [], ["window \"Notes\""], 0
        for w in state["widgets"]:
            role = {"textbox": "textbox", "checkbox": "checkbox", "listbox": "listbox", "button": "button"}[w["kind"]]
            elements.append(ElementInfo(pid, w["kind"], role, name=w["name"], bbox=tuple(w["box"]), interactive=True,
                                        value=w.get("value"), checked=w.get("checked")))
            lines.append(f"  [{pid}] {role} \"{w['name']}\"" + (f" value={w['value']!r}" if "value" in w else "")
                         + (" checked" if w.get("checked") else ""))
            parent, pid = pid, pid + 1
            for item in w.get("items", []):
                if item["box"] is not None:
                    elements.append(ElementInfo(pid, "option", "option", text=item["text"], bbox=tuple(item["box"]),
                                                interactive=True, parent=parent, selected=item["selected"]))
                    lines.append(f"    [{pid}] option \"{item['text']}\"" + (" selected" if item["selected"] else ""))
                    pid += 1
        obs = Observation(goal=self.goal, url="x11:notes", screenshot=buf.getvalue(), size=tuple(img.size),
                          elements=tuple(elements), axtree="\n".join(lines), title="Notes", step=self.steps)
        self.last_obs = obs
        return obs

    def _point(self, target: Any) -> tuple[float, float]:
        if isinstance(target, Point):
            p = to_pixels(target, self.screen)
            return float(p.x), float(p.y)
        if isinstance(target, Element) and self.last_obs is not None:
            e = self.last_obs.element(target.id)
            if e is not None:
                return e.center
        raise InvalidAction(f"cannot point at {target!r} on the desktop")

    def _run(self, a: Action) -> None:
        k = a.kind
        if k in ("click", "double_click", "triple_click", "right_click", "middle_click", "hover"):
            x, y = self._point(a.target)
            self._xdo("mousemove", str(round(x)), str(round(y)))
            self.pointer = (x, y)
            if k != "hover":
                button = {"right_click": "3", "middle_click": "2"}.get(k, "1")
                repeat = {"double_click": "2", "triple_click": "3"}.get(k, "1")
                self._xdo("click", "--repeat", repeat, "--delay", "60", button)
        elif k == "drag":
            start = self.pointer if a.target is None else self._point(a.target)
            end = self._point(a.end)
            self._xdo("mousemove", str(round(start[0])), str(round(start[1])), "mousedown", "1",
                      "mousemove", str(round(end[0])), str(round(end[1])), "mouseup", "1")
            self.pointer = end
        elif k == "scroll":
            if a.target is not None:
                x, y = self._point(a.target)
                self._xdo("mousemove", str(round(x)), str(round(y)))
            clicks = 5 if a.amount is None else max(1, round(a.amount / WHEEL_PX)) if a.amount else 0
            button = {"up": "4", "down": "5", "left": "6", "right": "7"}[a.direction]
            if clicks:
                self._xdo("click", "--repeat", str(clicks), "--delay", "20", button)
        elif k == "type":
            if a.target is not None:
                # a triple click selects the whole field (Tk's Ctrl+A moves to the line start)
                self._run(Action("triple_click" if a.clear else "click", target=a.target))
                if a.clear:
                    self._xdo("key", "BackSpace")
            elif a.clear:
                self._xdo("key", "ctrl+a", "BackSpace")
            self._xdo("type", "--delay", "8", "--", a.text or "")
            if a.enter:
                self._xdo("key", "Return")
        elif k == "key":
            self._xdo("key", "+".join(_x_key(key) for key in a.keys or ()))
        elif k == "wait":
            time.sleep(min(5.0, a.seconds if a.seconds is not None else 1.0))
        else:
            raise InvalidAction(f"the desktop cannot perform {k!r}")

    def step(self, action: Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Perform one action with X input events."""
        if self._done:
            raise ResetNeeded("step() called on a finished or never-started episode; call reset() first")
        t0 = time.perf_counter()
        self.steps += 1
        info: dict[str, Any] = {"valid": True, "error": None}
        if action.terminal:
            self._status = self.task.status(self._read_state(), True)
        else:
            try:
                self._run(action)
            except InvalidAction as exc:
                info.update(valid=False, error=str(exc))
            except subprocess.SubprocessError as exc:
                info.update(error=f"xdotool failed: {exc}")
            self._settle()
            self._status = self.task.status(self._read_state(), False)
        self._done = self._status.done
        truncated = not self._done and self.steps >= self.task.max_steps
        obs = self._observe()
        self._done = self._done or truncated
        info.update(success=self._status.success, task=self.task.id, step=self.steps, state=self._read_state(),
                    step_s=time.perf_counter() - t0)
        return obs, float(self._status.reward), self._status.done, truncated, info

    @property
    def status(self) -> TaskStatus:
        """The task's status after the last step."""
        return self._status

    def element_at(self, action: Action) -> None:
        """Desktop actions name no irreversible elements."""
        return None

    def _stop_app(self) -> None:
        if self.app is not None and self.app.poll() is None:
            self.app.terminate()
            try:
                self.app.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.app.kill()
        self.app = None

    def close(self) -> None:
        """Stop the app and the X server."""
        self._stop_app()
        if getattr(self, "xvfb", None) is not None and self.xvfb.poll() is None:
            self.xvfb.terminate()
            try:
                self.xvfb.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.xvfb.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._done = True


