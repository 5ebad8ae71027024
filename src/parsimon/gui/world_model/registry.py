"""Every world model of ``parsimon.gui.world_model``, registered: import ``WORLD_MODELS`` from here.

Each world-model module registers itself when imported (none starts a browser, loads a model or
imports scikit-learn on import); this module imports them all so the registry is complete.
"""

from __future__ import annotations

import parsimon.gui.world_model.learned  # noqa: F401 - registers "learned"
import parsimon.gui.world_model.llm  # noqa: F401 - registers "llm"
import parsimon.gui.world_model.oracle  # noqa: F401 - registers "oracle"
import parsimon.gui.world_model.rules  # noqa: F401 - registers "rule"
from parsimon.gui.world_model.base import WORLD_MODELS

__all__ = ["WORLD_MODELS"]
