"""Our own web apps as task suites: ``apps`` on a desktop browser, ``mobile`` on an emulated phone.

Five apps (to-do list, inbox, settings form, inventory table, checkout) keep their state in
``localStorage`` and expose it as ``window.__APP_STATE__``; tasks are synthesized by
:mod:`parsimon.gui.suites.synth` and judged by its ``check(goal, state)`` oracle. A task is a slot
``<app>-L<length>-<k>``; the episode seed picks the slot's instance (starting data and steps), so ten
seeds are ten different tasks of the same shape. Checkout's "Pay now" button is marked irreversible
(``data-irreversible``); paying ends the episode.

On the phone (``mobile``) an episode starts on the home screen: the agent opens the app by name
(``open``), and the apps answer the phone's gestures: a long press on a to-do item opens its
action sheet (the only way to delete one on a small screen), a left swipe on an inbox row archives the
message, the system Back button goes back, Home returns to the launcher, Menu opens the app menu.
"""

from __future__ import annotations

import random
import re
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.suites.base import SUITES, Suite, TaskStatus, WebTask
from parsimon.gui.suites.synth import APP_TITLES, APPS, SynthTask, check, synthesize

__all__ = ["AppTask", "AppsSuite", "MobileSuite", "slot_names"]

LENGTHS = range(1, 7)
PER_LENGTH = 8  # slots per app and length: 5 apps x 6 lengths x 8 - 8 (settings needs a save) = 232


def slot_names(per_length: int = PER_LENGTH) -> list[str]:
    """Every task slot: ``<app>-L<length>-<k>`` (settings tasks have at least two steps)."""
    return [f"{app}-L{n}-{k}" for app in APPS for n in LENGTHS for k in range(per_length)
            if not (app == "settings" and n == 1)]


_SLOT = re.compile(r"^(\w+)-L(\d+)-(\d+)$")


class AppTask(WebTask):
    """One slot of the apps suites (see the module docstring)."""

    suite = "apps"
    platform = "browser"
    viewport = (800, 600)
    max_steps = 40
    settle_ms = 300

    def __init__(self, name: str, *, mobile: bool = False) -> None:
        m = _SLOT.match(name)
        if not m or m.group(1) not in APPS:
            raise ConfigError(f"`task` must look like <app>-L<length>-<k> with app in {list(APPS)}, got {name!r}")
        self.name, self.app, self.length, self.k = name, m.group(1), int(m.group(2)), int(m.group(3))
        self.mobile = mobile
        if mobile:
            self.suite, self.platform, self.phone, self.home = "mobile", "mobile", "pixel5", "/apps/launcher.html"
            self.apps = {APP_TITLES[a]: f"/apps/{a}.html" for a in APPS}
        self.synth: SynthTask | None = None

    def instance(self, seed: int) -> SynthTask:
        """The synthesized task for episode seed ``seed`` (deterministic)."""
        return synthesize(self.app, self.length, random.Random(f"{self.name}:{seed}"))

    def path(self) -> str:  # noqa: D102
        return "/apps/launcher.html" if self.mobile else f"/apps/{self.app}.html"

    def setup(self, page: Any, seed: int) -> str:  # noqa: D102
        self.synth = self.instance(seed)
        page.wait_for_function("() => window.__APP_READY__ === true")
        page.evaluate("([k, s]) => localStorage.setItem(k, JSON.stringify(s))",
                      [f"parsimon.app.{self.app}", self.synth.state])
        if not self.mobile:
            page.evaluate("(s) => window.parsimonApp.load(s)", self.synth.state)
        return self.synth.instruction

    def state(self, page: Any) -> dict | None:  # noqa: D102
        return page.evaluate("(name) => JSON.parse(localStorage.getItem('parsimon.app.' + name) || 'null')",
                             self.app)

    def status(self, page: Any, answer: str | None = None, *, ended: bool = False) -> TaskStatus:  # noqa: D102
        state = self.state(page)
        ok = self.synth is not None and check(self.synth.goal, state)
        paid = bool(state and state.get("paid"))
        done = ended or paid
        return TaskStatus(1.0 if (ok and done) else 0.0, done, ok and done,
                          {"solved_now": ok, "paid": paid, "ops": len(self.synth.ops) if self.synth else 0})

    def irreversible(self, page: Any, action: Any, element: Any) -> bool:  # noqa: D102
        return bool(element is not None and getattr(element, "irreversible", False)
                    and action.kind in ("click", "double_click", "triple_click", "long_press"))

    def describe(self) -> dict[str, Any]:  # noqa: D102
        out = super().describe()
        if self.synth is not None:
            out.update(app=self.app, ops=[op.kind for op in self.synth.ops], edges=self.synth.edges,
                       goal=self.synth.goal)
        return out


class AppsSuite(Suite):
    """Our five apps in a desktop browser (800 x 600)."""

    name = "apps"
    mobile = False

    def task_names(self) -> list[str]:  # noqa: D102
        return slot_names()

    def task(self, name: str) -> AppTask:  # noqa: D102
        return AppTask(name, mobile=self.mobile)


class MobileSuite(AppsSuite):
    """The same apps on an emulated Pixel 5 (touch, 393 x 727 CSS px at scale 2.75), from the home screen."""

    name = "mobile"
    mobile = True


SUITES.register("apps", AppsSuite, describe="our five web apps, DAG-synthesized tasks (desktop browser)")
SUITES.register("mobile", MobileSuite, describe="the same apps on an emulated phone, from its home screen")
