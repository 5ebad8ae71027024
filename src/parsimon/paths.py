"""Where Parsimon keeps its state: ``$PARSIMON_HOME`` (default ``~/.parsimon``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home"]


def home() -> Path:
    """Return ``$PARSIMON_HOME`` (default ``~/.parsimon``), creating it if needed."""
    path = Path(os.environ.get("PARSIMON_HOME", Path.home() / ".parsimon")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
