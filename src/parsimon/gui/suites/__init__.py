"""Task suites: MiniWoB++, our own web apps (desktop and phone), and their registry."""

from __future__ import annotations

from parsimon.gui.suites.base import SUITES, Suite, TaskStatus, WebTask, shared_server
from parsimon.gui.suites.miniwob import MiniWoBSuite, MiniWoBTask

__all__ = ["SUITES", "MiniWoBSuite", "MiniWoBTask", "Suite", "TaskStatus", "WebTask", "shared_server"]
