"""Progress bars shared by the commands and the long-running library functions (rich, on stderr)."""

from __future__ import annotations

from typing import Any

__all__ = ["TaskBar", "standard_progress"]


def standard_progress(*, console: Any = None, transient: bool = True):
    """A rich ``Progress`` with Parsimon's columns: description, bar, done/total, elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=transient)


class TaskBar:
    """One task's bar, or nothing when ``enabled`` is false (then ``update`` and ``close`` do nothing).

    Use it as a context manager, or call ``close()`` in a ``finally`` block.
    """

    def __init__(self, description: str, total: int, *, enabled: bool = True, transient: bool = True,
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

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> TaskBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
