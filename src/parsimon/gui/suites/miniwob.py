"""MiniWoB++ from the ``miniwob`` wheel's own HTML pages, driven by our browser environment.

The episode protocol is the pages' own (``core.js``), as the ``miniwob`` package and BrowserGym use it:
``Math.seedrandom(s); core.EPISODE_MAX_TIME = ...; core.startEpisodeReal()``, then the page sets
``WOB_DONE_GLOBAL``, ``WOB_REWARD_GLOBAL`` (discounted by time) and ``WOB_RAW_REWARD_GLOBAL``. The page
seed ``s`` is drawn from the episode seed the way BrowserGym draws it
(``numpy.random.RandomState(seed).randint(0, 1_000_000)``), so seed ``k`` is the same episode here and
in ``browsergym-miniwob``. The reward panel, the click visualiser and the start cover
(``#reward-display``, ``#click-canvas``, ``#sync-task-cover``) are hidden from every observation (they
show the last reward). Pages run on the virtual clock, so delays and animations are deterministic.

:data:`VISUAL_TASKS` need pixel geometry, canvas/SVG shapes, drawing or dragging, or timing that an
element-level agent cannot see; the others are DOM-solvable (:func:`dom_tasks`): the instruction can be
carried out from the element table and the accessibility tree with element-level clicks, typing, keys,
selects and scrolls. Success is ``raw reward > 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError, DependencyNotInstalled
from parsimon.gui.suites.base import SUITES, Suite, TaskStatus, WebTask

__all__ = ["HIDDEN", "VISUAL_TASKS", "MiniWoBSuite", "MiniWoBTask", "all_tasks", "dom_tasks", "page_seed"]

HIDDEN = ("#reward-display", "#click-canvas", "#sync-task-cover")
EPISODE_MAX_TIME_MS = 10_000_000  # virtual milliseconds; the page's default of 10 s is far too short for agents

# Need canvas/SVG shape perception, pointer geometry (drag, draw, hover, text selection) or watching the
# screen over time.
VISUAL_TASKS = frozenset({
    "ascending-numbers", "bisect-angle", "chase-circle", "circle-center", "click-pie", "click-pie-nodelay",
    "click-shape", "copy-paste", "copy-paste-2", "count-shape", "count-sides", "drag-box", "drag-circle",
    "drag-cube", "drag-items", "drag-items-grid", "drag-shapes", "drag-shapes-2", "drag-single-shape",
    "drag-sort-numbers", "draw-circle", "draw-line", "find-midpoint", "grid-coordinate", "highlight-text",
    "highlight-text-2", "hot-cold", "hover-shape", "identify-shape", "moving-items", "number-checkboxes",
    "resize-textarea", "right-angle", "simon-says", "stock-market", "use-colorwheel", "use-colorwheel-2",
    "visual-addition",
})


def _html_dir() -> Path:
    try:
        import miniwob
    except ImportError as exc:
        raise DependencyNotInstalled("miniwob", "gui", "the MiniWoB++ suite") from exc
    return Path(miniwob.__file__).resolve().parent / "html" / "miniwob"


def all_tasks() -> list[str]:
    """Every MiniWoB++ task shipped in the wheel (130)."""
    return sorted(p.stem for p in _html_dir().glob("*.html"))


def dom_tasks() -> list[str]:
    """The DOM-solvable tasks (all minus :data:`VISUAL_TASKS`)."""
    return [t for t in all_tasks() if t not in VISUAL_TASKS]


def page_seed(seed: int) -> int:
    """The page's ``Math.seedrandom`` seed for episode seed ``seed`` (BrowserGym's rule)."""
    import numpy as np

    return int(np.random.RandomState(seed).randint(0, 1_000_000))


class MiniWoBTask(WebTask):
    """One MiniWoB++ page (see the module docstring)."""

    suite = "miniwob"
    platform = "browser"
    hidden = HIDDEN
    viewport = (332, 214)  # BrowserGym's MiniWoB viewport: the 160 x 210 task area plus margin
    max_steps = 20

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def visual(self) -> bool:
        """Whether the task needs more than the DOM (see :data:`VISUAL_TASKS`)."""
        return self.name in VISUAL_TASKS

    def path(self) -> str:  # noqa: D102
        return f"/miniwob/miniwob/{self.name}.html"

    def setup(self, page: Any, seed: int) -> str:  # noqa: D102
        page.wait_for_function("() => typeof core !== 'undefined' && typeof genProblem === 'function'")
        page.evaluate(
            "([s, t]) => { Math.seedrandom(s); core.EPISODE_MAX_TIME = t; core.startEpisodeReal(); }",
            [page_seed(seed), EPISODE_MAX_TIME_MS])
        page.evaluate("() => window.__parsimonClock ? window.__parsimonClock.advance(50) : 0")
        page.wait_for_function("() => WOB_TASK_READY")
        goal = page.evaluate("() => core.getUtterance()")
        if isinstance(goal, dict):  # the *-nl tasks return {utterance, fields}
            goal = goal.get("utterance", "")
        return str(goal)

    def status(self, page: Any, answer: str | None = None, *, ended: bool = False) -> TaskStatus:  # noqa: D102
        done, reward, raw, reason = page.evaluate(
            "() => [WOB_DONE_GLOBAL, WOB_REWARD_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON]")
        info = {"raw_reward": float(raw), "reason": reason}
        if done:
            return TaskStatus(float(reward), True, float(raw) > 0, info)
        return TaskStatus(0.0, ended, False, info)


class MiniWoBSuite(Suite):
    """Every MiniWoB++ task; :meth:`default_tasks` are the DOM-solvable ones."""

    name = "miniwob"

    def task_names(self) -> list[str]:  # noqa: D102
        return all_tasks()

    def default_tasks(self) -> list[str]:  # noqa: D102
        return dom_tasks()

    def task(self, name: str) -> MiniWoBTask:  # noqa: D102
        names = all_tasks()
        if name not in names:
            raise ConfigError(f"`task` must be a MiniWoB++ task, one of {names}, got {name!r}")
        return MiniWoBTask(name)


SUITES.register("miniwob", MiniWoBSuite, describe="MiniWoB++ pages from the miniwob wheel")
