"""The contract between a subpackage's ``reproduce.py`` and the report.

Every subpackage that reproduces a paper has ``parsimon/<name>/reproduce.py`` with one function::

    def reproduce(ctx: ReproContext) -> Section: ...

It runs the quick setting (``ctx.full`` False) within its share of the report's time budget, writes
its plots as PNG files under ``ctx.out_dir``, reports progress through ``ctx.progress`` and returns a
:class:`Section`.

The runner makes each section a :mod:`parsimon.run` run (``reproduce <name>``) in ``ctx.out_dir``: ``ctx.run``
is that run, so every ledger charge and audit record of the section carries its id, and the section can
log its numbers with ``ctx.log_metrics(...)`` (into the run's ``metrics.json``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Claim", "Figure", "ReproContext", "Section", "Table", "ProgressTask"]


@dataclass
class Claim:
    """A headline claim of a paper, the paper's number and ours, measured the same way where possible."""

    text: str  # the claim, in one sentence
    paper: str  # the paper's number, as text (units included)
    ours: str  # our number, as text
    reproduced: bool | None = None  # True / False, or None when not comparable
    note: str = ""  # how ours was measured, and how it differs from the paper's setting


@dataclass
class Table:
    """A table of results; cells are formatted with ``str`` (floats with 4 significant digits)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Figure:
    """A PNG written under the run's output folder."""

    path: Path
    caption: str


@dataclass
class Section:
    """What one subpackage contributes to the report."""

    name: str  # the subpackage, e.g. "games"
    paper: str  # title and arXiv id
    summary: str = ""  # one paragraph: what was run
    claims: list[Claim] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved configuration used
    not_reproduced: list[str] = field(default_factory=list)  # honest list: what and why
    seconds: float = 0.0  # filled in by the runner
    error: str = ""  # filled in by the runner when reproduce() raised
    run_dir: str = ""  # filled in by the runner: the section's run folder, relative to the report
    run_id: str = ""  # filled in by the runner: the section's run id (ledger and audit records carry it)


class ProgressTask:
    """A handle on one progress bar; ``advance`` moves it, ``update`` changes its text or total."""

    def __init__(self, progress: Any = None, task_id: Any = None):
        self._progress, self._task_id = progress, task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, n)

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        if self._progress is not None:
            kw: dict[str, Any] = {}
            if description is not None:
                kw["description"] = description
            if total is not None:
                kw["total"] = total
            self._progress.update(self._task_id, **kw)


@dataclass
class ReproContext:
    """What a ``reproduce`` function is given."""

    out_dir: Path  # write figures and raw JSON here (it exists)
    full: bool = False  # the larger settings (and GPU ones where a GPU exists)
    seed: int = 0
    progress_impl: Any = None  # a rich Progress, or None for silence
    started: float = field(default_factory=time.time)
    run: Any = None  # the section's parsimon.run.Run (None when a section is called outside the runner)

    def log_metrics(self, values: dict[str, Any] | None = None, /, **more: Any) -> None:
        """Merge numbers into the section run's ``metrics.json`` (nested dicts flattened with ``/``)."""
        if self.run is not None:
            self.run.set_metrics(values, **more)

    @contextlib.contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        """A progress bar for one stage: ``with ctx.progress("solving", total=n) as bar: bar.advance()``."""
        if self.progress_impl is None:
            yield ProgressTask()
            return
        task_id = self.progress_impl.add_task(description, total=total)
        try:
            yield ProgressTask(self.progress_impl, task_id)
        finally:
            self.progress_impl.update(task_id, visible=False)

    def path(self, name: str) -> Path:
        """A path for an output file inside ``out_dir``."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def save_figure(self, fig: Any, name: str, caption: str, *, dpi: int = 100) -> Figure:
        """Lay out, save as ``out_dir/name`` and close a matplotlib figure; return it as a report :class:`Figure`."""
        import matplotlib.pyplot as plt

        path = self.path(name)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        return Figure(path, caption)
