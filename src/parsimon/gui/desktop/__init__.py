"""The desktop: a Tk application on a private X display, driven with ``computer_use`` actions."""

from __future__ import annotations

from parsimon.gui.desktop.env import DesktopEnv, DesktopSuite, DesktopTask, parse_notes_instruction

__all__ = ["DesktopEnv", "DesktopSuite", "DesktopTask", "parse_notes_instruction"]
