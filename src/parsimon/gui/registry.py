"""Every suite and policy of ``parsimon.gui``, registered: import ``SUITES`` and ``POLICIES`` from here.

Each suite or policy module registers itself when imported; this module imports them all (none starts a
browser or a model on import), so the two registries are complete wherever they are read from.
"""

from __future__ import annotations

import parsimon.gui.desktop.suite  # noqa: F401 - registers "desktop"
import parsimon.gui.policies  # noqa: F401 - registers every policy
import parsimon.gui.suites.apps  # noqa: F401 - registers "apps" and "mobile"
import parsimon.gui.suites.miniwob  # noqa: F401 - registers "miniwob"
from parsimon.gui.policies.base import POLICIES
from parsimon.gui.suites.base import SUITES

__all__ = ["POLICIES", "SUITES"]
