"""``BrowserEnv``: a Gymnasium environment over a real Chromium page (desktop or an emulated phone).

## Description
Each episode opens a fresh browser context on one :class:`~parsimon.gui.suites.base.WebTask` (a MiniWoB
page, one of our apps, a mobile web app), starts the task with the episode's seed and hands out
observations until the task ends, the agent stops or the step limit is reached.

## Action Space
:class:`~parsimon.gui.actions.Action` (the unified action space). ``answer`` and ``terminate`` end the
episode; ``interact`` asks for a person (the agent loop escalates it; the environment does nothing).

## Observation Space
:class:`~parsimon.gui.web.observe.Observation`: screenshot, element table with Set-of-Marks labels,
accessibility tree, frozen DOM, URL, goal.

## Rewards
The task's own: MiniWoB's reward (time-discounted on the virtual clock; ``info["raw_reward"]`` is the
undiscounted one) when its episode ends; for our apps 1 when ``check(goal, state)`` holds at the end and
0 otherwise. ``info["success"]`` says whether the task is solved.

## Starting State
The task's page after ``setup(seed)`` and ``settle_ms`` of virtual time (``settle_ms`` also passes after
every action except ``wait``, which lets exactly its own seconds pass). With ``freeze_time`` (default)
the page runs on a virtual clock (see :mod:`parsimon.gui.web.js`), so the same seed and actions give the
same pages.

## Episode End
``terminated``: the task ended (MiniWoB's episode, an irreversible checkout) or the agent answered or
terminated. ``truncated``: ``max_steps`` actions were taken.

## Arguments
``task`` (a :class:`WebTask`, or given per episode as ``reset(options={"task": ...})``), ``session`` (a
shared :class:`~parsimon.gui.web.browser.BrowserSession`; one is started if None), ``observe_axtree``,
``observe_dom``, ``observe_screenshot``, ``screenshot_scale`` (``"css"``, the default: one image pixel per CSS
pixel, four times cheaper on a 2.75x phone; ``"device"``: the phone's full resolution).

## Version History
* v0: first version.
"""

from __future__ import annotations

import json
import time
from typing import Any

import gymnasium as gym

from parsimon.errors import ConfigError, InvalidAction, ResetNeeded
from parsimon.gui.actions import Action, Element
from parsimon.gui.suites.base import TaskStatus, WebTask, shared_server
from parsimon.gui.web.browser import BrowserSession, phone_profile
from parsimon.gui.web.executor import Executor
from parsimon.gui.web.js import VIRTUAL_CLOCK
from parsimon.gui.web.observe import Observation, observe

__all__ = ["ActionSpace", "BrowserEnv", "ObservationSpace"]

_HIDE_STYLE = """
((selectors) => {
  if (!selectors.length) return;
  const add = () => { const s = document.createElement('style'); s.setAttribute('data-parsimon', 'hide');
    s.textContent = selectors.join(', ') + ' { display: none !important; }';
    (document.head || document.documentElement).appendChild(s); };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', add); else add();
})(%s);
"""


class ActionSpace(gym.Space):
    """The unified actions; ``sample()`` clicks a random visible interactive element of the last page."""

    def __init__(self, env: BrowserEnv) -> None:
        super().__init__()
        self._env = env

    def contains(self, x: Any) -> bool:  # noqa: D102 - Gymnasium's contract
        return isinstance(x, Action)

    def sample(self, mask: Any = None, probability: Any = None) -> Action:  # noqa: D102
        obs = self._env.last_obs
        cands = obs.interactive() if obs is not None else []
        if not cands:
            return Action("wait", seconds=1)
        pick = cands[int(self._env.np_random.integers(len(cands)))]
        return Action("click", target=Element(pick.pid))


class ObservationSpace(gym.Space):
    """Observations are :class:`Observation` objects."""

    def contains(self, x: Any) -> bool:  # noqa: D102 - Gymnasium's contract
        return isinstance(x, Observation)


class BrowserEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: WebTask | None = None, *, session: BrowserSession | None = None,
                 observe_axtree: bool = True, observe_dom: bool = True, observe_screenshot: bool = True,
                 screenshot_scale: str = "css", render_mode: str | None = None) -> None:
        if task is not None and not isinstance(task, WebTask):
            raise ConfigError(f"`task` must be a WebTask, got {type(task).__name__}")
        self.task = task
        self._own_session = session is None
        self.session = session
        if screenshot_scale not in ("css", "device"):
            raise ConfigError(f"`screenshot_scale` must be 'css' or 'device', got {screenshot_scale!r}")
        self.parts = {"axtree": observe_axtree, "dom": observe_dom, "screenshot": observe_screenshot}
        self.screenshot_scale = screenshot_scale
        self.render_mode = render_mode
        self.action_space = ActionSpace(self)
        self.observation_space = ObservationSpace()
        self.context = self.page = self.executor = self._cdp = None
        self.last_obs: Observation | None = None
        self.goal = ""
        self.steps = 0
        self._done = True
        self._status = TaskStatus()
        self.server = shared_server()

    # -- episode
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Observation, dict]:
        """Start an episode (``options={"task": WebTask}`` switches the task)."""
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            if not isinstance(options["task"], WebTask):
                raise ConfigError(f"`options['task']` must be a WebTask, got {type(options['task']).__name__}")
            self.task = options["task"]
        if self.task is None:
            raise ConfigError("reset() needs a task: BrowserEnv(task) or reset(options={'task': task})")
        task_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        if self.session is None:
            self.session = BrowserSession()
        self._close_context()
        phone = phone_profile(self.task.phone) if self.task.phone else None
        self.context = self.session.new_context(viewport=self.task.viewport, phone=phone)
        if self.task.freeze_time:
            self.context.add_init_script(VIRTUAL_CLOCK)
        self.context.add_init_script(_HIDE_STYLE % json.dumps(list(self.task.hidden)))
        self.page = self.context.new_page()
        self.page.set_default_timeout(10000)
        self._cdp = self.context.new_cdp_session(self.page)
        apps = {name.lower(): self.server.url(path) for name, path in self.task.apps.items()}
        self.executor = Executor(self.page, touch=phone is not None,
                                 advance=self.advance if self.task.freeze_time else None,
                                 home_url=self.server.url(self.task.home) if self.task.home else None, apps=apps)
        t0 = time.perf_counter()
        path = self.task.path()
        self.page.goto(path if path.startswith(("http://", "https://")) else self.server.url(path), wait_until="load")
        self.goal = self.task.setup(self.page, task_seed)
        self.advance(self.task.settle_ms)
        self.steps, self._done = 0, False
        self._status = self.task.status(self.page)
        obs = self._observe()
        info = {"task": self.task.id, "seed": task_seed, "goal": self.goal, "platform": self.task.platform,
                "reset_s": time.perf_counter() - t0, "state": self.task.state(self.page)}
        return obs, info

    def advance(self, ms: float) -> None:
        """Let ``ms`` milliseconds of page time pass (virtual clock; a real sleep without one)."""
        if self.page is None or ms <= 0:
            return
        if self.task is not None and self.task.freeze_time:
            try:
                self.page.evaluate("(ms) => window.__parsimonClock ? window.__parsimonClock.advance(ms) : 0", ms)
            except Exception:  # noqa: BLE001 - the page navigated while the clock ran; the new page has its own
                self.page.wait_for_load_state("load")
        else:
            time.sleep(min(ms, 2000) / 1000)

    def _observe(self) -> Observation:
        obs = observe(self.page, goal=self.goal, hidden=self.task.hidden, step=self.steps, cdp=self._cdp,
                      screenshot=self.parts["screenshot"], axtree=self.parts["axtree"], dom=self.parts["dom"],
                      scale=self.screenshot_scale)
        self.last_obs = obs
        return obs

    def step(self, action: Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Perform one action (see the module docstring for rewards and episode ends)."""
        if self._done or self.page is None:
            raise ResetNeeded("step() called on a finished or never-started episode; call reset() first")
        t0 = time.perf_counter()
        info: dict[str, Any] = {"valid": True, "error": None}
        self.steps += 1
        if not isinstance(action, Action):
            info.update(valid=False, error=f"not an Action: {type(action).__name__}")
        elif action.terminal:
            self._status = self.task.status(self.page, action.text if action.kind == "answer" else None, ended=True)
            self._done = True
        else:
            try:
                info["effect"] = self.executor.run(action)
            except InvalidAction as exc:
                info.update(valid=False, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a Playwright failure is the step's outcome, not a crash
                info.update(error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            # a wait is its own settle time: exactly the seconds asked for pass
            self._settle(0 if action.kind == "wait" else self.task.settle_ms)
            self._status = self.task.status(self.page)
            self._done = self._status.done
        truncated = not self._done and self.steps >= self.task.max_steps
        obs = self._observe()
        if truncated:
            self._done = True
        info.update(success=self._status.success, task=self.task.id, step=self.steps,
                    step_s=time.perf_counter() - t0, **self._status.info)
        reward = float(self._status.reward) if self._status.done else 0.0
        return obs, reward, bool(self._status.done), truncated, info

    def _settle(self, ms: float) -> None:
        try:
            self.page.wait_for_load_state("load", timeout=5000)
        except Exception:  # noqa: BLE001 - a slow page is observed as it is
            pass
        self.advance(ms)

    @property
    def status(self) -> TaskStatus:
        """The task's status after the last step."""
        return self._status

    def element_at(self, action: Action) -> Any:
        """The element an action targets (for irreversibility checks), if it names one."""
        if self.last_obs is not None and isinstance(action.target, Element):
            return self.last_obs.element(action.target.id)
        return None

    def render(self) -> Any:
        """The last screenshot as an RGB array (``render_mode="rgb_array"``)."""
        if self.last_obs is None or not self.last_obs.screenshot:
            return None
        import io

        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self.last_obs.screenshot)).convert("RGB"))

    def _close_context(self) -> None:
        if self.context is not None:
            try:
                self.context.close()
            except Exception:  # noqa: BLE001 - closing a crashed context
                pass
        self.context = self.page = self.executor = self._cdp = None

    def close(self) -> None:
        """Close the page and, if this environment started it, the browser."""
        self._close_context()
        if self._own_session and self.session is not None:
            self.session.close()
            self.session = None
        self._done = True
