"""Progress display shared by the commands and the long-running library functions.

On a terminal this is a rich progress bar on stderr. Without one (logs, CI, a pipe) a bar would show
nothing until the end, so :func:`standard_progress` returns a :class:`PlainProgress` instead: it prints
one plain-text line per task every ``PARSIMON_PROGRESS_INTERVAL`` seconds (default 10) and when a
task completes, e.g. ``[progress] cta eval pandora/oracle: 30/100 (12 s)``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from parsimon._closing import Closing

__all__ = ["PlainProgress", "TaskBar", "progress_interval", "standard_progress"]


def progress_interval() -> float:
    """Seconds between plain-text progress lines (``PARSIMON_PROGRESS_INTERVAL``, default 10)."""
    try:
        value = float(os.environ.get("PARSIMON_PROGRESS_INTERVAL", "10"))
    except ValueError:
        return 10.0
    return value if value >= 0 else 10.0


def _is_terminal(console: Any) -> bool:
    if console is not None:
        return bool(getattr(console, "is_terminal", False))
    return sys.stderr.isatty()


class _PlainTask:
    __slots__ = ("description", "total", "completed", "started", "last_print", "visible", "done_printed")

    def __init__(self, description: str, total: float | None, completed: float) -> None:
        self.description, self.total, self.completed = description, total, completed
        self.started = self.last_print = time.monotonic()
        self.visible, self.done_printed = True, False


class PlainProgress:
    """The subset of ``rich.progress.Progress`` Parsimon uses, printing periodic plain-text lines.

    Args:
        interval: Seconds between lines per task (default: :func:`progress_interval`).
        stream: Where to print (default ``sys.stderr``).
    """

    def __init__(self, *, interval: float | None = None, stream: Any = None, console: Any = None) -> None:
        self.interval = progress_interval() if interval is None else float(interval)
        self.stream = stream
        self.console = console
        self._tasks: dict[int, _PlainTask] = {}
        self._next = 0
        self._lock = threading.Lock()

    def _print(self, task: _PlainTask, final: bool = False) -> None:
        elapsed = time.monotonic() - task.started
        done = f"{task.completed:g}/{task.total:g}" if task.total is not None else f"{task.completed:g}"
        state = " done" if final else ""
        stream = self.stream or sys.stderr
        print(f"[progress] {task.description}: {done} ({elapsed:.0f} s){state}", file=stream, flush=True)
        task.last_print = time.monotonic()

    def _maybe_print(self, task: _PlainTask) -> None:
        if not task.visible:
            return
        finished = task.total is not None and task.completed >= task.total
        if finished and not task.done_printed:
            task.done_printed = True
            self._print(task, final=True)
        elif not finished and time.monotonic() - task.last_print >= self.interval:
            self._print(task)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: Any) -> int:
        """Register a task and print its first line; returns its id."""
        with self._lock:
            tid = self._next
            self._next += 1
            task = self._tasks[tid] = _PlainTask(description, total, completed)
            self._print(task)
            return tid

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               description: str | None = None, total: float | None = None, visible: bool | None = None,
               **_: Any) -> None:
        """Change a task (same keywords as rich's ``Progress.update``)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            if description is not None:
                task.description = description
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            if visible is not None:
                task.visible = visible
            self._maybe_print(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Move a task forward by ``advance``."""
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: int) -> None:
        """Forget a task."""
        with self._lock:
            self._tasks.pop(task_id, None)

    def start(self) -> None:
        """Nothing to start (for rich compatibility)."""

    def stop(self) -> None:
        """Nothing to stop (for rich compatibility)."""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def standard_progress(*, console: Any = None, transient: bool = True):
    """A rich ``Progress`` (description, bar, done/total, elapsed) on a terminal; a :class:`PlainProgress`
    printing periodic lines otherwise."""
    if not _is_terminal(console):
        return PlainProgress(console=console)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=transient)


class TaskBar(Closing):
    """One task's bar, or nothing when ``enabled`` is false (then ``update`` and ``close`` do nothing).

    Use it as a context manager, or call ``close()`` in a ``finally`` block.
    """

    def __init__(self, description: str, total: int | None, *, enabled: bool = True, transient: bool = True,
                 completed: int = 0) -> None:
        self._progress = None
        if enabled:
            self._progress = standard_progress(transient=transient)
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, completed=completed)

    def update(self, **fields: Any) -> None:
        """Forward to ``Progress.update`` (``advance=``, ``completed=``, ``description=``)."""
        if self._progress is not None:
            self._progress.update(self._task, **fields)

    def advance(self, n: float = 1) -> None:
        """Move the bar forward by ``n``."""
        self.update(advance=n)

    def close(self) -> None:
        """Stop the display."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
