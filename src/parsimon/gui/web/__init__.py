"""The browser side: Chromium through Playwright, observations, the executor, ``BrowserEnv``."""

from __future__ import annotations

from parsimon.gui.web.browser import BrowserSession, chromium_path, phone_profile
from parsimon.gui.web.env import BrowserEnv
from parsimon.gui.web.observe import ElementInfo, Observation, observe
from parsimon.gui.web.server import StaticServer

__all__ = ["BrowserEnv", "BrowserSession", "ElementInfo", "Observation", "StaticServer", "chromium_path",
           "observe", "phone_profile"]
