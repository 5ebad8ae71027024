from __future__ import annotations

from parsimon.progress import TaskBar, standard_progress


def test_disabled_bar_does_nothing():
    bar = TaskBar("x", 3, enabled=False)
    bar.update(advance=1, description="y")
    bar.close()
    assert bar._progress is None


def test_enabled_bar_tracks_progress_and_closes():
    with TaskBar("work", 4, completed=1) as bar:
        bar.update(advance=2, description="working")
        task = bar._progress.tasks[0]
        assert (task.completed, task.total, task.description) == (3, 4, "working")
    assert bar._progress is None
    bar.close()  # closing twice is harmless


def test_standard_progress_columns():
    prog = standard_progress(transient=False)
    assert len(prog.columns) == 4
