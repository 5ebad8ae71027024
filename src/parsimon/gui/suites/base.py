"""The task contract of the browser suites, and the one static server that serves every suite's pages.

A :class:`WebTask` knows its page (a path on the server), how to start a seeded episode on it
(:meth:`~WebTask.setup` returns the instruction), how it is going (:meth:`~WebTask.status`: reward, done,
success), which actions it treats as irreversible, and, for our own apps, the app's state. Suites are
registered by name in :data:`SUITES` (``miniwob``, ``apps``, ``mobile``; ``desktop`` lives beside its
X display environment).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsimon.registry import Registry

__all__ = ["SUITES", "Suite", "TaskStatus", "WebTask", "shared_server"]

SUITES: Registry = Registry("suite")


@dataclass(frozen=True)
class TaskStatus:
    """How an episode stands: ``reward`` (the suite's own), ``done`` (the task ended), ``success``."""

    reward: float = 0.0
    done: bool = False
    success: bool = False
    info: dict = field(default_factory=dict)


class WebTask(ABC):
    """One task of a browser suite (see the module docstring).

    Attributes:
        suite: The suite's name.
        name: The task's name inside the suite.
        platform: The GUI-Owl tool a model should be given (``browser`` or ``mobile``).
        hidden: CSS selectors kept out of every observation.
        viewport: The desktop viewport (width, height).
        phone: A phone profile name (``pixel5``) for phone emulation, or None.
        max_steps: The step limit (reaching it truncates the episode).
        freeze_time: Run the page on the virtual clock.
        settle_ms: Virtual milliseconds that pass after each action.
        apps: App name → server path, for ``open``; ``home``: the launcher's path.
    """

    suite: str = ""
    name: str = ""
    platform: str = "browser"
    hidden: tuple[str, ...] = ()
    viewport: tuple[int, int] = (1280, 720)
    phone: str | None = None
    max_steps: int = 20
    freeze_time: bool = True
    settle_ms: int = 1000
    apps: dict[str, str] = {}
    home: str | None = None

    @property
    def id(self) -> str:
        """``suite/name``."""
        return f"{self.suite}/{self.name}"

    @abstractmethod
    def path(self) -> str:
        """The page's path on the shared server (or a full ``http://`` URL of another local server)."""

    @abstractmethod
    def setup(self, page: Any, seed: int) -> str:
        """Start the episode on the loaded page; return the instruction."""

    @abstractmethod
    def status(self, page: Any, answer: str | None = None, *, ended: bool = False) -> TaskStatus:
        """Reward, done and success now; ``ended``: the agent stopped (``answer`` holds its answer)."""

    def irreversible(self, page: Any, action: Any, element: Any) -> bool:
        """Whether the app marks this action as one that cannot be undone (default: nothing is)."""
        return False

    def state(self, page: Any) -> dict | None:
        """The app's state (our apps), or None."""
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for logs."""
        return {"id": self.id, "platform": self.platform}


class Suite(ABC):
    """A named set of tasks."""

    name: str = ""

    @abstractmethod
    def task_names(self) -> list[str]:
        """Every task's name."""

    @abstractmethod
    def task(self, name: str) -> WebTask:
        """The task called ``name`` (:class:`~parsimon.errors.ConfigError` listing the names otherwise)."""

    def default_tasks(self) -> list[str]:
        """The tasks evaluated when none are named."""
        return self.task_names()

    def make_env(self, **kwargs: Any) -> Any:
        """A fresh environment that can run every task of the suite (a browser one by default)."""
        from parsimon.gui.web.env import BrowserEnv

        return BrowserEnv(**kwargs)


_SERVER = None
_SERVER_LOCK = threading.Lock()


def _mounts() -> dict[str, Path]:
    mounts = {"/apps/": Path(__file__).resolve().parent / "apps"}
    try:
        import miniwob

        mounts["/miniwob/"] = Path(miniwob.__file__).resolve().parent / "html"
    except ImportError:
        pass
    return mounts


def shared_server():
    """The process's static server (MiniWoB's pages under ``/miniwob/``, our apps under ``/apps/``)."""
    global _SERVER
    from parsimon.gui.web.server import StaticServer

    with _SERVER_LOCK:
        if _SERVER is None:
            _SERVER = StaticServer(_mounts()).start()
        return _SERVER
