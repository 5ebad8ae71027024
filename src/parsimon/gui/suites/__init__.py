"""Task suites: MiniWoB++, our own web apps (desktop and phone), the X desktop, and their registry."""

from __future__ import annotations

from parsimon.gui.suites.apps import AppsSuite, AppTask, MobileSuite
from parsimon.gui.suites.base import SUITES, Suite, TaskStatus, WebTask, shared_server
from parsimon.gui.suites.miniwob import MiniWoBSuite, MiniWoBTask, dom_tasks
from parsimon.gui.suites.synth import SynthTask, check, synthesize

__all__ = ["SUITES", "AppTask", "AppsSuite", "MiniWoBSuite", "MiniWoBTask", "MobileSuite", "Suite", "SynthTask",
           "TaskStatus", "WebTask", "check", "dom_tasks", "shared_server", "synthesize"]
