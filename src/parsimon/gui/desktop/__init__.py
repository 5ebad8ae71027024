"""The desktop: a Tk application on a private X display, driven with ``computer_use`` actions.

The environment itself is :class:`parsimon.gui.desktop.env.DesktopEnv` (imported on use: it needs
Gymnasium, Xvfb and xdotool).
"""

from __future__ import annotations

from parsimon.gui.desktop.suite import (
    DesktopSuite,
    DesktopTask,
    parse_notes_instruction,
    render_notes_instruction,
)

__all__ = ["DesktopSuite", "DesktopTask", "parse_notes_instruction", "render_notes_instruction"]
