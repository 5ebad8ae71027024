from __future__ import annotations

import io

from rich.console import Console

from parsimon.progress import PlainProgress, TaskBar, standard_progress


def test_disabled_bar_does_nothing():
    bar = TaskBar("x", 3, enabled=False)
    bar.update(advance=1, description="y")
    bar.close()
    assert bar._progress is None


def test_enabled_bar_tracks_progress_and_closes(monkeypatch, capsys):
    monkeypatch.setenv("PARSIMON_PROGRESS_INTERVAL", "0")
    with TaskBar("work", 4, completed=1) as bar:
        bar.update(advance=2, description="working")
        task = bar._progress._tasks[0]
        assert (task.completed, task.total, task.description) == (3, 4, "working")
    assert bar._progress is None
    bar.close()  # closing twice is harmless
    assert "[progress] working: 3/4" in capsys.readouterr().err


def test_standard_progress_is_rich_on_a_terminal_and_plain_otherwise():
    prog = standard_progress(console=Console(file=io.StringIO(), force_terminal=True), transient=False)
    assert len(prog.columns) == 4
    assert isinstance(standard_progress(console=Console(file=io.StringIO(), force_terminal=False)), PlainProgress)
